// Package paytest is the conformance suite every payment provider passes
// (provider.Provider): Run it from the provider's own tests with a Harness.
//
// A provider that keeps state (the sandbox, a real PSP's test mode) runs
// every check. A stateless double (stripe-mock answers fixtures, whatever
// came before) declares Stateless: it then runs the checks of shapes and
// errors only — a charge answers a reference and a known status, refunds
// answer a reference, webhooks verify and refuse bad signatures — and the
// checks of state (a decline, replay under one key, 3-D Secure then
// confirm, refund limits, lookup) are not registered for it.
package paytest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"mercato/internal/money"
	"mercato/internal/payments/provider"
)

// Harness describes a provider to the suite.
type Harness struct {
	// New returns a fresh provider.
	New func(t *testing.T) provider.Provider
	// Stateless: the provider is a fixture server (see the package doc).
	Stateless bool
	// Tokens: one that captures, one declined, one needing 3-D Secure.
	Success, Decline, ThreeDS string
	// Event returns a webhook body of the provider's shape: a capture of
	// ref made under key, with event id id.
	Event func(id, ref, key string) []byte
	// Sign signs body as the provider does at t, with the right secret
	// (good) or another one.
	Sign func(body []byte, t time.Time, good bool) http.Header
	// Now is the provider's clock for webhook tolerance (nil: time.Now).
	Now func() time.Time
	// Tolerance is the provider's webhook tolerance window.
	Tolerance time.Duration
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	seq := 0
	// key is a provider key no earlier run used (a real PSP's test mode
	// remembers keys for a day).
	key := func(t *testing.T) string {
		seq++
		return fmt.Sprintf("paytest-%s-%d-%d", t.Name(), time.Now().UnixNano(), seq)
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	ctx := context.Background()
	usd := func(n int64) money.Money { return money.MustNew(n, "USD") }
	known := map[provider.Status]bool{provider.Captured: true, provider.RequiresAction: true, provider.Failed: true}

	t.Run("name", func(t *testing.T) {
		if h.New(t).Name() == "" {
			t.Error("empty name")
		}
	})
	t.Run("charge answers a reference and a known status", func(t *testing.T) {
		c, err := h.New(t).Charge(ctx, provider.ChargeRequest{Key: key(t), OrderID: "o-1", Amount: usd(2500), Token: h.Success})
		if err != nil {
			t.Fatal(err)
		}
		if c.Ref == "" || !known[c.Status] {
			t.Errorf("charge = %+v", c)
		}
		if c.Amount.Currency() != "USD" {
			t.Errorf("currency = %q, want USD", c.Amount.Currency())
		}
	})
	t.Run("refund answers a reference", func(t *testing.T) {
		p := h.New(t)
		c, err := p.Charge(ctx, provider.ChargeRequest{Key: key(t), OrderID: "o-2", Amount: usd(2500), Token: h.Success})
		if err != nil {
			t.Fatal(err)
		}
		rf, err := p.Refund(ctx, provider.RefundRequest{Key: key(t), Ref: c.Ref, Amount: usd(1000)})
		if err != nil {
			t.Fatal(err)
		}
		if rf.Ref == "" || rf.Amount != usd(1000) {
			t.Errorf("refund = %+v", rf)
		}
	})
	t.Run("webhooks verify and refuse bad signatures", func(t *testing.T) {
		p := h.New(t)
		body := h.Event("evt_paytest_1", "ref_1", "key_1")
		ev, err := p.ParseWebhook(body, h.Sign(body, h.Now(), true))
		if err != nil {
			t.Fatal(err)
		}
		if ev.ID != "evt_paytest_1" || ev.Type != provider.EventCaptured || ev.Ref != "ref_1" || ev.Key != "key_1" {
			t.Errorf("event = %+v", ev)
		}
		tampered := append([]byte(nil), body...)
		tampered[len(tampered)/2] ^= 1
		for name, hd := range map[string]struct {
			body []byte
			h    http.Header
		}{
			"tampered":     {tampered, h.Sign(body, h.Now(), true)},
			"wrong secret": {body, h.Sign(body, h.Now(), false)},
			"stale":        {body, h.Sign(body, h.Now().Add(-h.Tolerance-time.Minute), true)},
			"unsigned":     {body, http.Header{}},
		} {
			if _, err := p.ParseWebhook(hd.body, hd.h); !errors.Is(err, provider.ErrBadSignature) {
				t.Errorf("%s: err = %v, want ErrBadSignature", name, err)
			}
		}
	})
	if h.Stateless {
		return
	}

	t.Run("success captures the amount", func(t *testing.T) {
		c, err := h.New(t).Charge(ctx, provider.ChargeRequest{Key: key(t), OrderID: "o-3", Amount: usd(2500), Token: h.Success})
		if err != nil || c.Status != provider.Captured || c.Amount != usd(2500) {
			t.Errorf("charge = %+v, %v; want captured 2500", c, err)
		}
	})
	t.Run("decline is a failed charge, not an error", func(t *testing.T) {
		c, err := h.New(t).Charge(ctx, provider.ChargeRequest{Key: key(t), OrderID: "o-4", Amount: usd(2500), Token: h.Decline})
		if err != nil || c.Status != provider.Failed || c.DeclineReason == "" || !c.Amount.IsZero() {
			t.Errorf("charge = %+v, %v; want failed with a reason", c, err)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		_, err := h.New(t).Charge(ctx, provider.ChargeRequest{Key: key(t), OrderID: "o-5", Amount: usd(2500), Token: "tok_nobody_knows"})
		if !errors.Is(err, provider.ErrUnknownToken) {
			t.Errorf("err = %v, want ErrUnknownToken", err)
		}
	})
	t.Run("one key never charges twice", func(t *testing.T) {
		p := h.New(t)
		r := provider.ChargeRequest{Key: key(t), OrderID: "o-6", Amount: usd(2500), Token: h.Success}
		a, err1 := p.Charge(ctx, r)
		b, err2 := p.Charge(ctx, r)
		if err1 != nil || err2 != nil || a.Ref != b.Ref || a != b {
			t.Errorf("two charges under one key: %+v / %+v (%v, %v)", a, b, err1, err2)
		}
	})
	t.Run("3-D Secure requires action, then confirm captures", func(t *testing.T) {
		p := h.New(t)
		k := key(t)
		c, err := p.Charge(ctx, provider.ChargeRequest{Key: k, OrderID: "o-7", Amount: usd(2500), Token: h.ThreeDS})
		if err != nil || c.Status != provider.RequiresAction || c.NextActionURL == "" {
			t.Fatalf("charge = %+v, %v; want requires_action with a URL", c, err)
		}
		d, err := p.Confirm(ctx, k, c.Ref)
		if err != nil || d.Status != provider.Captured || d.Ref != c.Ref || d.Amount != usd(2500) {
			t.Errorf("confirm = %+v, %v", d, err)
		}
	})
	t.Run("lookup finds what a key did", func(t *testing.T) {
		p := h.New(t)
		r := provider.ChargeRequest{Key: key(t), OrderID: "o-8", Amount: usd(2500), Token: h.Success}
		if _, found, err := p.Lookup(ctx, r); found || err != nil {
			t.Errorf("lookup before charging: found=%v err=%v", found, err)
		}
		c, _ := p.Charge(ctx, r)
		got, found, err := p.Lookup(ctx, r)
		if !found || err != nil || got.Ref != c.Ref || got.Status != provider.Captured {
			t.Errorf("lookup = %+v found=%v err=%v; want %+v", got, found, err, c)
		}
	})
	t.Run("refunds never exceed the capture; one key refunds once", func(t *testing.T) {
		p := h.New(t)
		c, _ := p.Charge(ctx, provider.ChargeRequest{Key: key(t), OrderID: "o-9", Amount: usd(2500), Token: h.Success})
		k := key(t)
		a, err1 := p.Refund(ctx, provider.RefundRequest{Key: k, Ref: c.Ref, Amount: usd(2000)})
		b, err2 := p.Refund(ctx, provider.RefundRequest{Key: k, Ref: c.Ref, Amount: usd(2000)})
		if err1 != nil || err2 != nil || a != b {
			t.Errorf("one key: %+v / %+v (%v, %v)", a, b, err1, err2)
		}
		if _, err := p.Refund(ctx, provider.RefundRequest{Key: key(t), Ref: c.Ref, Amount: usd(501)}); err == nil {
			t.Error("a refund above the remainder passed")
		}
		if _, err := p.Refund(ctx, provider.RefundRequest{Key: key(t), Ref: c.Ref, Amount: usd(500)}); err != nil {
			t.Errorf("the remainder: %v", err)
		}
	})
}
