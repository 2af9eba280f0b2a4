// Package stripepay is the Stripe payment provider, on stripe-go:
// PaymentIntents created and confirmed with the client's PaymentMethod
// (card entry is Stripe's hosted Elements or Checkout: mercato only ever
// sees a pm_… token), captured when Stripe holds them for capture,
// confirmed after 3-D Secure, refunded; every call carries the provider
// idempotency key the payments module derived from its own. Webhooks are
// verified on the Stripe-Signature header within a tolerance window.
//
// It is tested against stripe-mock (MERCATO_TEST_STRIPE_MOCK_URL), which is
// stateless: the tests check shapes and errors, not state machines.
package stripepay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	stripe "github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"mercato/internal/money"
	"mercato/internal/payments/provider"
)

// HeaderSignature is the header Stripe signs webhooks in.
const HeaderSignature = "Stripe-Signature"

// Config configures the adapter.
type Config struct {
	// Key is the secret API key (sk_…).
	Key string
	// URL is the API's base URL; empty: Stripe's (set for stripe-mock).
	URL string
	// WebhookSecret is the endpoint's signing secret (whsec_…).
	WebhookSecret string
	// Tolerance is how far a webhook's timestamp may be from now (default 5 minutes).
	Tolerance time.Duration
	// ReturnURL is where Stripe sends the customer back after 3-D Secure.
	ReturnURL string
	// HTTPClient carries the calls (nil: one with a 30s timeout).
	HTTPClient *http.Client
}

// Stripe is the provider "stripe". Safe for concurrent use.
type Stripe struct {
	c   *stripe.Client
	cfg Config
}

// New returns the Stripe provider for cfg.
func New(cfg Config) *Stripe {
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = webhook.DefaultTolerance
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	bc := &stripe.BackendConfig{HTTPClient: cfg.HTTPClient, MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}}
	if cfg.URL != "" {
		bc.URL = stripe.String(strings.TrimRight(cfg.URL, "/"))
	}
	return &Stripe{c: stripe.NewClient(cfg.Key, stripe.WithBackends(stripe.NewBackendsWithConfig(bc))), cfg: cfg}
}

// Name implements provider.Provider.
func (*Stripe) Name() string { return "stripe" }

// metaKey is the metadata entry that names the mercato provider key, so
// that reconciliation can find the PaymentIntent a lost answer created.
const metaKey = "mercato_key"

// Charge implements provider.Provider: create and confirm a PaymentIntent.
func (s *Stripe) Charge(ctx context.Context, r provider.ChargeRequest) (provider.Charge, error) {
	p := &stripe.PaymentIntentCreateParams{
		Amount:        stripe.Int64(r.Amount.Amount()),
		Currency:      stripe.String(strings.ToLower(r.Amount.Currency())),
		PaymentMethod: stripe.String(r.Token),
		Confirm:       stripe.Bool(true),
		Metadata:      map[string]string{metaKey: r.Key, "order_id": r.OrderID},
	}
	if s.cfg.ReturnURL != "" {
		p.ReturnURL = stripe.String(s.cfg.ReturnURL)
	}
	p.SetIdempotencyKey(r.Key)
	pi, err := s.c.V1PaymentIntents.Create(ctx, p)
	if err != nil {
		return s.failure(err)
	}
	return s.settle(ctx, r.Key, pi)
}

// settle captures a PaymentIntent Stripe holds for capture and maps it.
func (s *Stripe) settle(ctx context.Context, key string, pi *stripe.PaymentIntent) (provider.Charge, error) {
	if pi.Status == stripe.PaymentIntentStatusRequiresCapture {
		p := &stripe.PaymentIntentCaptureParams{}
		p.SetIdempotencyKey(key + "-capture")
		var err error
		if pi, err = s.c.V1PaymentIntents.Capture(ctx, pi.ID, p); err != nil {
			return s.failure(err)
		}
	}
	return toCharge(pi)
}

// toCharge maps a PaymentIntent to a provider.Charge.
func toCharge(pi *stripe.PaymentIntent) (provider.Charge, error) {
	cur := strings.ToUpper(string(pi.Currency))
	zero, err := money.New(0, cur)
	if err != nil {
		return provider.Charge{}, fmt.Errorf("stripe: payment intent %s in %q: %w", pi.ID, cur, err)
	}
	c := provider.Charge{Ref: pi.ID, Amount: zero}
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		c.Status, c.Amount = provider.Captured, money.MustNew(pi.AmountReceived, cur)
	case stripe.PaymentIntentStatusRequiresAction, stripe.PaymentIntentStatusRequiresConfirmation:
		c.Status = provider.RequiresAction
		if pi.NextAction != nil && pi.NextAction.RedirectToURL != nil {
			c.NextActionURL = pi.NextAction.RedirectToURL.URL
		}
	case stripe.PaymentIntentStatusProcessing:
		return provider.Charge{}, fmt.Errorf("stripe: payment intent %s is processing: %w", pi.ID, provider.ErrAmbiguous)
	default: // requires_payment_method (declined), canceled
		c.Status, c.DeclineReason = provider.Failed, string(pi.Status)
		if pi.LastPaymentError != nil && pi.LastPaymentError.Code != "" {
			c.DeclineReason = string(pi.LastPaymentError.Code)
		}
	}
	return c, nil
}

// failure maps a stripe-go error: a card error is a decline, an unknown
// PaymentMethod is ErrUnknownToken, any other API answer an error, and a
// call that got no answer (network, 5xx, 409 idempotency in flight)
// ErrAmbiguous.
func (s *Stripe) failure(err error) (provider.Charge, error) {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return provider.Charge{}, fmt.Errorf("stripe: %v: %w", err, provider.ErrAmbiguous)
	}
	switch {
	case se.Type == stripe.ErrorTypeCard:
		reason := string(se.DeclineCode)
		if reason == "" {
			reason = string(se.Code)
		}
		ref := ""
		if se.PaymentIntent != nil {
			ref = se.PaymentIntent.ID
		}
		return provider.Charge{Ref: ref, Status: provider.Failed, DeclineReason: reason}, nil
	case se.Code == stripe.ErrorCodeResourceMissing && se.Param == "payment_method":
		return provider.Charge{}, provider.ErrUnknownToken
	case se.HTTPStatusCode >= 500 || se.HTTPStatusCode == http.StatusConflict || se.HTTPStatusCode == 0:
		return provider.Charge{}, fmt.Errorf("stripe: %s: %w", se.Msg, provider.ErrAmbiguous)
	}
	return provider.Charge{}, fmt.Errorf("stripe: %d %s %s: %s", se.HTTPStatusCode, se.Type, se.Code, se.Msg)
}

// Confirm implements provider.Provider: after 3-D Secure the
// PaymentIntent has usually moved on by itself; one still waiting for
// confirmation is confirmed, one held for capture captured.
func (s *Stripe) Confirm(ctx context.Context, key, ref string) (provider.Charge, error) {
	pi, err := s.c.V1PaymentIntents.Retrieve(ctx, ref, nil)
	if err != nil {
		return s.failure(err)
	}
	if pi.Status == stripe.PaymentIntentStatusRequiresConfirmation {
		p := &stripe.PaymentIntentConfirmParams{}
		if s.cfg.ReturnURL != "" {
			p.ReturnURL = stripe.String(s.cfg.ReturnURL)
		}
		p.SetIdempotencyKey(key + "-confirm")
		if pi, err = s.c.V1PaymentIntents.Confirm(ctx, ref, p); err != nil {
			return s.failure(err)
		}
	}
	return s.settle(ctx, key, pi)
}

// Lookup implements provider.Provider: the PaymentIntent whose metadata
// names the key (Stripe's search; it may lag by up to a minute, which the
// reconciliation's ReconcileAfter covers).
func (s *Stripe) Lookup(ctx context.Context, r provider.ChargeRequest) (provider.Charge, bool, error) {
	p := &stripe.PaymentIntentSearchParams{}
	p.Query = fmt.Sprintf("metadata['%s']:'%s'", metaKey, r.Key)
	p.Limit = stripe.Int64(1)
	for pi, err := range s.c.V1PaymentIntents.Search(ctx, p).All(ctx) {
		if err != nil {
			_, err := s.failure(err)
			return provider.Charge{}, false, err
		}
		c, err := toCharge(pi)
		return c, err == nil, err
	}
	return provider.Charge{}, false, nil
}

// Refund implements provider.Provider.
func (s *Stripe) Refund(ctx context.Context, r provider.RefundRequest) (provider.Refund, error) {
	p := &stripe.RefundCreateParams{PaymentIntent: stripe.String(r.Ref), Amount: stripe.Int64(r.Amount.Amount())}
	p.SetIdempotencyKey(r.Key)
	rf, err := s.c.V1Refunds.Create(ctx, p)
	if err != nil {
		_, err := s.failure(err)
		return provider.Refund{}, err
	}
	return provider.Refund{Ref: rf.ID, Amount: r.Amount}, nil
}

// ParseWebhook implements provider.Provider: Stripe's signature scheme
// within Config.Tolerance; payment_intent.succeeded is a capture,
// payment_intent.payment_failed a decline, other types are passed on as
// they are (the module ignores them).
func (s *Stripe) ParseWebhook(body []byte, h http.Header) (provider.Event, error) {
	ev, err := webhook.ConstructEventWithOptions(body, h.Get(HeaderSignature), s.cfg.WebhookSecret,
		webhook.ConstructEventOptions{Tolerance: s.cfg.Tolerance, IgnoreAPIVersionMismatch: true})
	if err != nil {
		return provider.Event{}, fmt.Errorf("stripe: %v: %w", err, provider.ErrBadSignature)
	}
	out := provider.Event{ID: ev.ID, Type: string(ev.Type)}
	if ev.Data == nil || !strings.HasPrefix(string(ev.Type), "payment_intent.") {
		return out, nil
	}
	var pi stripe.PaymentIntent
	if err := json.Unmarshal(ev.Data.Raw, &pi); err != nil {
		return provider.Event{}, fmt.Errorf("stripe: event %s: %v: %w", ev.ID, err, provider.ErrBadSignature)
	}
	out.Ref, out.Key = pi.ID, pi.Metadata[metaKey]
	switch ev.Type {
	case "payment_intent.succeeded":
		out.Type = provider.EventCaptured
	case "payment_intent.payment_failed":
		out.Type = provider.EventFailed
		if pi.LastPaymentError != nil {
			out.Reason = string(pi.LastPaymentError.Code)
		}
	}
	return out, nil
}
