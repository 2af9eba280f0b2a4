// Package provider is the payments module's port to payment service
// providers (PSPs): the Provider interface every adapter implements (the
// sandbox, Stripe), the values it exchanges, and the helpers adapters share
// (webhook signatures with a tolerance window). The conformance suite that
// every Provider passes is package paytest.
package provider

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"mercato/internal/money"
)

// Status is where a charge stands at the provider.
type Status string

// The charge statuses.
const (
	Captured       Status = "captured"        // the money is taken
	RequiresAction Status = "requires_action" // the customer must act (3-D Secure), then Confirm
	Failed         Status = "failed"          // declined: nothing taken
)

// ChargeRequest asks for amount against token. Key is the provider's
// idempotency key: two calls with one key never charge twice; the second
// answers what the first did.
type ChargeRequest struct {
	Key     string
	OrderID string
	Amount  money.Money
	Token   string
}

// Charge is a provider's answer to a charge, a confirm or a lookup.
type Charge struct {
	Ref           string // the provider's id of the payment
	Status        Status
	Amount        money.Money // what was captured (zero unless Captured)
	NextActionURL string      // RequiresAction: where the customer completes the challenge
	DeclineReason string      // Failed: the provider's reason code
}

// RefundRequest refunds amount of the capture ref, under idempotency Key.
type RefundRequest struct {
	Key    string
	Ref    string
	Amount money.Money
}

// Refund is a provider's answer to a refund.
type Refund struct {
	Ref    string
	Amount money.Money
}

// Event is a verified inbound webhook.
type Event struct {
	ID     string // the provider's event id: a redelivery carries the same
	Type   string // EventCaptured, EventFailed, or another the module ignores
	Ref    string // the payment it is about
	Key    string // the idempotency key it was created under, when the provider says
	Reason string // EventFailed: the decline reason
}

// The webhook event types the payments module acts on.
const (
	EventCaptured = "payment.captured"
	EventFailed   = "payment.failed"
)

var (
	// ErrAmbiguous: the provider may have acted but its answer was lost
	// (a timeout, a dropped connection). Retry with the same key: the
	// provider then answers what it did.
	ErrAmbiguous = errors.New("provider: the outcome is unknown")
	// ErrBadSignature: a webhook whose signature is missing, wrong or outside
	// the tolerance window.
	ErrBadSignature = errors.New("provider: bad webhook signature")
	// ErrUnknownToken: the provider does not know the token (422).
	ErrUnknownToken = errors.New("provider: unknown payment token")
)

// Provider is one payment service provider. Every method may talk over the
// network: callers run them outside any database transaction. Safe for
// concurrent use.
type Provider interface {
	// Name is the method clients name in a pay request ("sandbox", "stripe").
	Name() string
	// Charge creates and confirms a payment. A decline is a Charge with
	// status Failed (not an error); an error is ErrUnknownToken,
	// ErrAmbiguous or a transport failure.
	Charge(ctx context.Context, r ChargeRequest) (Charge, error)
	// Confirm completes a RequiresAction payment once the customer has acted.
	Confirm(ctx context.Context, key, ref string) (Charge, error)
	// Lookup reports what the provider did under r.Key, found false when it
	// never charged under it (reconciliation after a crash).
	Lookup(ctx context.Context, r ChargeRequest) (c Charge, found bool, err error)
	// Refund refunds part or all of a capture, once per key.
	Refund(ctx context.Context, r RefundRequest) (Refund, error)
	// ParseWebhook verifies an inbound webhook's signature (ErrBadSignature)
	// and decodes it.
	ParseWebhook(body []byte, h http.Header) (Event, error)
}

// Sign is the signature header value of body at t under secret:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">" (Stripe's scheme).
func Sign(secret []byte, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks header (Sign's format; several v1 entries allowed, for
// secret rotation) against body and secret at now: the timestamp must be
// within tolerance of now. It returns ErrBadSignature otherwise.
func Verify(secret []byte, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrBadSignature
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return ErrBadSignature
}
