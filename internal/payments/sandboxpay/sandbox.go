// Package sandboxpay is the built-in sandbox payment provider: a PSP that
// lives in the process, for development and tests. It keeps its charges in
// memory, keyed by the provider idempotency key like a real PSP, and sends
// signed webhooks (Pending) that the payments module receives at
// POST /api/v1/payments/webhooks/sandbox.
//
// Nothing delivers the webhooks in a running server (they are the tests'
// to send): the sandbox keeps the last MaxPending unsent ones, and signs
// a webhook when it is taken (Pending), as a PSP signs what it sends.
//
// Tokens: tok_success captures; tok_decline is declined (card_declined);
// tok_3ds requires action (3-D Secure) until Confirm; tok_timeout captures
// but loses the answer (ErrAmbiguous) the first time — a retry with the
// same key answers the capture, never a second one.
package sandboxpay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"mercato/internal/money"
	"mercato/internal/payments/provider"
)

// The sandbox's tokens.
const (
	TokenSuccess = "tok_success"
	TokenDecline = "tok_decline"
	Token3DS     = "tok_3ds"
	TokenTimeout = "tok_timeout"
)

// HeaderSignature carries a sandbox webhook's signature (provider.Sign).
const HeaderSignature = "Sandbox-Signature"

// Tolerance is how far a webhook's timestamp may be from now.
const Tolerance = 5 * time.Minute

// MaxPending is how many unsent webhooks the sandbox keeps; older ones are
// dropped (a PSP gives up on an endpoint that never takes them).
const MaxPending = 1000

type charge struct {
	ref, key string
	status   provider.Status
	amount   money.Money
	captured money.Money
	refunded int64
	reason   string
	lost     bool // tok_timeout: the first answer is lost
}

// Sandbox is the sandbox provider. Safe for concurrent use.
type Sandbox struct {
	secret []byte
	now    func() time.Time

	mu       sync.Mutex
	byKey    map[string]*charge
	byRef    map[string]*charge
	refunds  map[string]provider.Refund
	captures int
	pending  []wire // unsent webhooks, oldest first, at most MaxPending
	seq      int
}

// Delivery is one webhook the sandbox would send: its body and headers.
type Delivery struct {
	Body   []byte
	Header http.Header
}

// New returns a sandbox signing webhooks with secret; now is its clock
// (nil: time.Now).
func New(secret []byte, now func() time.Time) *Sandbox {
	if now == nil {
		now = time.Now
	}
	return &Sandbox{secret: secret, now: now, byKey: map[string]*charge{}, byRef: map[string]*charge{},
		refunds: map[string]provider.Refund{}}
}

// Name implements provider.Provider.
func (*Sandbox) Name() string { return "sandbox" }

// Captures counts the distinct captures the sandbox made: what a PSP's
// statement would show.
func (s *Sandbox) Captures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.captures
}

func newRef(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Charge implements provider.Provider.
func (s *Sandbox) Charge(_ context.Context, r provider.ChargeRequest) (provider.Charge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.byKey[r.Key]; ok {
		c.lost = false
		return c.answer(), nil
	}
	c := &charge{ref: newRef("sbx_"), key: r.Key, amount: r.Amount}
	switch r.Token {
	case TokenSuccess, TokenTimeout:
		c.status, c.captured = provider.Captured, r.Amount
		c.lost = r.Token == TokenTimeout
		s.captures++
		s.queue(provider.EventCaptured, c)
	case TokenDecline:
		c.status, c.reason = provider.Failed, "card_declined"
		s.queue(provider.EventFailed, c)
	case Token3DS:
		c.status = provider.RequiresAction
	default:
		return provider.Charge{}, provider.ErrUnknownToken
	}
	s.byKey[r.Key], s.byRef[c.ref] = c, c
	if c.lost {
		return provider.Charge{}, fmt.Errorf("sandbox: the answer was lost: %w", provider.ErrAmbiguous)
	}
	return c.answer(), nil
}

func (c *charge) answer() provider.Charge {
	a := provider.Charge{Ref: c.ref, Status: c.status, DeclineReason: c.reason}
	if c.status == provider.Captured {
		a.Amount = c.captured
	} else {
		a.Amount = money.Zero(c.amount.Currency())
	}
	if c.status == provider.RequiresAction {
		a.NextActionURL = "https://sandbox.invalid/3ds/" + c.ref
	}
	return a
}

// Confirm implements provider.Provider: the customer passed the challenge.
func (s *Sandbox) Confirm(_ context.Context, _, ref string) (provider.Charge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.byRef[ref]
	if !ok {
		return provider.Charge{}, fmt.Errorf("sandbox: no payment %q", ref)
	}
	if c.status == provider.RequiresAction {
		c.status, c.captured = provider.Captured, c.amount
		s.captures++
		s.queue(provider.EventCaptured, c)
	}
	return c.answer(), nil
}

// Lookup implements provider.Provider.
func (s *Sandbox) Lookup(_ context.Context, r provider.ChargeRequest) (provider.Charge, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.byKey[r.Key]
	if !ok {
		return provider.Charge{}, false, nil
	}
	return c.answer(), true, nil
}

// Refund implements provider.Provider.
func (s *Sandbox) Refund(_ context.Context, r provider.RefundRequest) (provider.Refund, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rf, ok := s.refunds[r.Key]; ok {
		return rf, nil
	}
	c, ok := s.byRef[r.Ref]
	if !ok || c.status != provider.Captured {
		return provider.Refund{}, fmt.Errorf("sandbox: no capture %q", r.Ref)
	}
	if r.Amount.Amount() <= 0 || c.refunded+r.Amount.Amount() > c.captured.Amount() {
		return provider.Refund{}, fmt.Errorf("sandbox: refund of %d above the capture's remainder", r.Amount.Amount())
	}
	c.refunded += r.Amount.Amount()
	rf := provider.Refund{Ref: newRef("sbr_"), Amount: r.Amount}
	s.refunds[r.Key] = rf
	return rf, nil
}

// wire is a sandbox webhook's body.
type wire struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Ref    string `json:"payment"`
	Key    string `json:"idempotency_key,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// queue adds a webhook about c, dropping the oldest beyond MaxPending;
// s.mu is held.
func (s *Sandbox) queue(typ string, c *charge) {
	s.seq++
	if len(s.pending) == MaxPending {
		s.pending = append(s.pending[:0], s.pending[1:]...)
	}
	s.pending = append(s.pending, wire{ID: "evt_" + c.ref + "_" + strconv.Itoa(s.seq), Type: typ, Ref: c.ref, Key: c.key, Reason: c.reason})
}

// Sign returns body as a delivery signed now: how tests forge webhooks.
func (s *Sandbox) Sign(body []byte) Delivery {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(HeaderSignature, provider.Sign(s.secret, body, s.now()))
	return Delivery{Body: body, Header: h}
}

// Pending returns the webhooks sent since the last call (the last
// MaxPending of them), oldest first, each signed now.
func (s *Sandbox) Pending() []Delivery {
	s.mu.Lock()
	ws := s.pending
	s.pending = nil
	s.mu.Unlock()
	out := make([]Delivery, len(ws))
	for i, w := range ws {
		body, _ := json.Marshal(w)
		out[i] = s.Sign(body)
	}
	return out
}

// ParseWebhook implements provider.Provider.
func (s *Sandbox) ParseWebhook(body []byte, h http.Header) (provider.Event, error) {
	if err := provider.Verify(s.secret, body, h.Get(HeaderSignature), s.now(), Tolerance); err != nil {
		return provider.Event{}, err
	}
	var w wire
	if err := json.Unmarshal(body, &w); err != nil || w.ID == "" || w.Type == "" {
		return provider.Event{}, fmt.Errorf("sandbox: a webhook without id or type: %w", provider.ErrBadSignature)
	}
	return provider.Event{ID: w.ID, Type: w.Type, Ref: w.Ref, Key: w.Key, Reason: w.Reason}, nil
}
