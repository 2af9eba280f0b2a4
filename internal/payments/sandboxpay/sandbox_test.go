package sandboxpay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"mercato/internal/money"
	"mercato/internal/payments/paytest"
	"mercato/internal/payments/provider"
)

var secret = []byte("whsec_sandbox_test_secret")

func TestConformance(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	paytest.Run(t, paytest.Harness{
		New:     func(*testing.T) provider.Provider { return New(secret, clock) },
		Success: TokenSuccess, Decline: TokenDecline, ThreeDS: Token3DS,
		Event: func(id, ref, key string) []byte {
			b, _ := json.Marshal(wire{ID: id, Type: provider.EventCaptured, Ref: ref, Key: key})
			return b
		},
		Sign: func(body []byte, at time.Time, good bool) http.Header {
			s := secret
			if !good {
				s = []byte("not the secret")
			}
			return New(s, func() time.Time { return at }).Sign(body).Header
		},
		Now: clock, Tolerance: Tolerance,
	})
}

// TestTimeout: tok_timeout captures and loses the answer once; the retry
// under the key answers the capture; there is one capture.
func TestTimeout(t *testing.T) {
	s := New(secret, nil)
	r := provider.ChargeRequest{Key: "k", OrderID: "o", Amount: money.MustNew(100, "USD"), Token: TokenTimeout}
	if _, err := s.Charge(context.Background(), r); !errors.Is(err, provider.ErrAmbiguous) {
		t.Fatalf("first answer: %v, want ErrAmbiguous", err)
	}
	c, err := s.Charge(context.Background(), r)
	if err != nil || c.Status != provider.Captured {
		t.Fatalf("retry: %+v, %v", c, err)
	}
	if s.Captures() != 1 {
		t.Errorf("captures = %d, want 1", s.Captures())
	}
	if ds := s.Pending(); len(ds) != 1 {
		t.Errorf("%d webhooks, want 1 (the capture)", len(ds))
	}
}

// TestPendingIsBounded: a server that never takes its sandbox's webhooks
// keeps the last MaxPending of them, each signed when taken.
func TestPendingIsBounded(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := New(secret, func() time.Time { return now })
	const extra = 5
	var refs []string
	for i := range MaxPending + extra {
		c, err := s.Charge(context.Background(), provider.ChargeRequest{Key: fmt.Sprint("k", i), OrderID: "o",
			Amount: money.MustNew(100, "USD"), Token: TokenSuccess})
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, c.Ref)
	}
	now = now.Add(time.Hour) // signed when taken: verifiable an hour after the charges
	ds := s.Pending()
	if len(ds) != MaxPending {
		t.Fatalf("%d webhooks kept, want %d", len(ds), MaxPending)
	}
	for i, d := range []Delivery{ds[0], ds[len(ds)-1]} {
		ev, err := s.ParseWebhook(d.Body, d.Header)
		want := []string{refs[extra], refs[len(refs)-1]}[i]
		if err != nil || ev.Type != provider.EventCaptured || ev.Ref != want {
			t.Errorf("webhook %d: %+v, %v; want the capture of %s", i, ev, err, want)
		}
	}
	if len(s.Pending()) != 0 {
		t.Error("taken webhooks came back")
	}
}
