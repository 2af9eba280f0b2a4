package stripepay

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"mercato/internal/money"
	"mercato/internal/payments/paytest"
	"mercato/internal/payments/provider"
)

const secret = "whsec_paytest_0123456789"

func eventBody(id, typ, ref, key string) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "api_version": stripe.APIVersion,
		"data": map[string]any{"object": map[string]any{"id": ref, "object": "payment_intent", "metadata": map[string]string{metaKey: key}}}})
	return b
}

func sign(body []byte, at time.Time, good bool) http.Header {
	s := secret
	if !good {
		s = "whsec_someone_else"
	}
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: s, Timestamp: at})
	h := http.Header{}
	h.Set(HeaderSignature, sp.Header)
	return h
}

// TestConformance runs the provider suite against stripe-mock (stateless:
// shapes and errors).
func TestConformance(t *testing.T) {
	url := os.Getenv("MERCATO_TEST_STRIPE_MOCK_URL")
	if url == "" {
		t.Skip("MERCATO_TEST_STRIPE_MOCK_URL is unset: start stripe-mock (see .ci/run) to test the Stripe adapter against it")
	}
	paytest.Run(t, paytest.Harness{
		New: func(*testing.T) provider.Provider {
			return New(Config{Key: "sk_test_123", URL: url, WebhookSecret: secret, Tolerance: 5 * time.Minute})
		},
		Stateless: true,
		Success:   "pm_card_visa", Decline: "pm_card_chargeDeclined", ThreeDS: "pm_card_threeDSecure2Required",
		Event: func(id, ref, key string) []byte { return eventBody(id, "payment_intent.succeeded", ref, key) },
		Sign:  sign, Tolerance: 5 * time.Minute,
	})
}

// TestStripeMockShapes: what stripe-mock answers goes through the
// adapter's mapping without error, and a refused connection is
// ErrAmbiguous (the outcome is unknown: retry under the same key).
func TestStripeMockShapes(t *testing.T) {
	url := os.Getenv("MERCATO_TEST_STRIPE_MOCK_URL")
	if url == "" {
		t.Skip("MERCATO_TEST_STRIPE_MOCK_URL is unset: start stripe-mock (see .ci/run) to test the Stripe adapter against it")
	}
	s := New(Config{Key: "sk_test_123", URL: url, WebhookSecret: secret})
	ctx := context.Background()
	r := provider.ChargeRequest{Key: "k-shapes", OrderID: "o", Amount: money.MustNew(2500, "USD"), Token: "pm_card_visa"}
	c, err := s.Charge(ctx, r)
	if err != nil || !strings.HasPrefix(c.Ref, "pi_") {
		t.Fatalf("charge = %+v, %v", c, err)
	}
	if d, err := s.Confirm(ctx, "k-shapes", c.Ref); err != nil || !strings.HasPrefix(d.Ref, "pi_") {
		t.Errorf("confirm = %+v, %v", d, err)
	}
	if _, _, err := s.Lookup(ctx, r); err != nil {
		t.Errorf("lookup: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	if _, err := New(Config{Key: "sk_test_123", URL: dead}).Charge(ctx, r); !errors.Is(err, provider.ErrAmbiguous) {
		t.Errorf("a refused connection: %v, want ErrAmbiguous", err)
	}
}

// TestMapping: Stripe's answers, served by a scripted server, map to the
// provider's outcomes.
func TestMapping(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   provider.Charge
		err    error
	}{
		{"succeeded", 200, `{"id":"pi_1","object":"payment_intent","status":"succeeded","currency":"usd","amount":2500,"amount_received":2500}`,
			provider.Charge{Ref: "pi_1", Status: provider.Captured, Amount: money.MustNew(2500, "USD")}, nil},
		{"3-D Secure", 200, `{"id":"pi_2","object":"payment_intent","status":"requires_action","currency":"usd","next_action":{"type":"redirect_to_url","redirect_to_url":{"url":"https://hooks.stripe.com/3ds/x"}}}`,
			provider.Charge{Ref: "pi_2", Status: provider.RequiresAction, Amount: money.MustNew(0, "USD"), NextActionURL: "https://hooks.stripe.com/3ds/x"}, nil},
		{"declined", 402, `{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"declined","payment_intent":{"id":"pi_3"}}}`,
			provider.Charge{Ref: "pi_3", Status: provider.Failed, DeclineReason: "insufficient_funds"}, nil},
		{"unknown payment method", 400, `{"error":{"type":"invalid_request_error","code":"resource_missing","param":"payment_method","message":"No such PaymentMethod"}}`,
			provider.Charge{}, provider.ErrUnknownToken},
		{"server error", 500, `{"error":{"type":"api_error","message":"boom"}}`, provider.Charge{}, provider.ErrAmbiguous},
		{"processing", 200, `{"id":"pi_4","object":"payment_intent","status":"processing","currency":"usd"}`, provider.Charge{}, provider.ErrAmbiguous},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotKey string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotKey = r.Header.Get("Idempotency-Key")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			s := New(Config{Key: "sk_test_123", URL: srv.URL})
			c, err := s.Charge(context.Background(), provider.ChargeRequest{Key: "mp_key", OrderID: "o", Amount: money.MustNew(2500, "USD"), Token: "pm_x"})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("err = %v, want %v", err, tc.err)
				}
			} else if err != nil || c != tc.want {
				t.Errorf("charge = %+v, %v; want %+v", c, err, tc.want)
			}
			if gotKey != "mp_key" {
				t.Errorf("Idempotency-Key sent = %q, want the provider key", gotKey)
			}
		})
	}
}

// TestWebhookTypes: payment_intent.payment_failed is a decline with its
// reason; other event types pass through unmapped.
func TestWebhookTypes(t *testing.T) {
	s := New(Config{WebhookSecret: secret})
	b, _ := json.Marshal(map[string]any{"id": "evt_f", "object": "event", "type": "payment_intent.payment_failed", "api_version": stripe.APIVersion,
		"data": map[string]any{"object": map[string]any{"id": "pi_9", "object": "payment_intent", "last_payment_error": map[string]any{"code": "card_declined"}}}})
	ev, err := s.ParseWebhook(b, sign(b, time.Now(), true))
	if err != nil || ev.Type != provider.EventFailed || ev.Ref != "pi_9" || ev.Reason != "card_declined" {
		t.Errorf("event = %+v, %v", ev, err)
	}
	b = eventBody("evt_c", "customer.created", "cus_1", "")
	if ev, err := s.ParseWebhook(b, sign(b, time.Now(), true)); err != nil || ev.Type != "customer.created" {
		t.Errorf("event = %+v, %v", ev, err)
	}
}
