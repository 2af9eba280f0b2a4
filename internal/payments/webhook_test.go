package payments

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"mercato/internal/payments/sandboxpay"
	"mercato/internal/platform/web/webtest"
)

func (e *env) deliver(d sandboxpay.Delivery) *webtest.Response {
	e.t.Helper()
	return e.c.Do("POST", "/api/v1/payments/webhooks/sandbox", d.Body, "Sandbox-Signature: "+d.Header.Get(sandboxpay.HeaderSignature))
}

// TestWebhook: a 3-D Secure payment completed at the provider arrives as
// a signed webhook: it records the capture and pays the order; its
// redelivery replays the first answer and changes nothing; a bad, stale or
// missing signature is 400 and changes nothing.
func TestWebhook(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.order(e.as("alice"), 1)
		webtest.AssertProblem(t, e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_3ds"}),
			http.StatusPaymentRequired, "payment_requires_action")
		var ref string
		e.db.Reader().QueryRow(`SELECT provider_ref FROM payments_attempts`).Scan(&ref)
		if _, err := e.sbx.Confirm(t.Context(), "", ref); err != nil { // the customer passes the challenge
			t.Fatal(err)
		}
		ds := e.sbx.Pending()
		if len(ds) != 1 {
			t.Fatalf("%d webhooks, want 1", len(ds))
		}
		d := ds[0]
		before := e.events(id)

		tampered := sandboxpay.Delivery{Body: bytes.Replace(d.Body, []byte(ref), []byte("sbx_other"), 1), Header: d.Header}
		for _, bad := range []struct {
			name string
			r    func() *webtest.Response
		}{
			{"tampered body", func() *webtest.Response { return e.deliver(tampered) }},
			{"no signature", func() *webtest.Response { return e.c.Do("POST", "/api/v1/payments/webhooks/sandbox", d.Body) }},
			{"wrong secret", func() *webtest.Response {
				return e.deliver(sandboxpay.New([]byte("another secret entirely"), e.clock.Now).Sign(d.Body))
			}},
			{"stale", func() *webtest.Response {
				old := sandboxpay.New(webhookSecret, func() time.Time { return e.clock.Now().Add(-sandboxpay.Tolerance - time.Second) })
				return e.deliver(old.Sign(d.Body))
			}},
		} {
			r := bad.r()
			webtest.AssertProblem(t, r, http.StatusBadRequest, "malformed_request")
			if got := e.events(id); !equal(got, before) {
				t.Errorf("%s: events %v, want %v", bad.name, got, before)
			}
		}
		if st, _ := e.orderStatus(id); st != "pending_payment" {
			t.Fatalf("after bad webhooks the order is %s", st)
		}
		want := []string{"order.placed", "payment.captured", "order.paid"}
		for i := range 3 {
			r := e.deliver(d)
			r.WantStatus(t, http.StatusOK)
			if r.Field("applied") != true || (r.Header.Get("Idempotent-Replayed") == "true") != (i > 0) {
				t.Errorf("delivery %d: %s replayed=%q", i, r.Body, r.Header.Get("Idempotent-Replayed"))
			}
			if got := e.events(id); !equal(got, want) {
				t.Errorf("delivery %d: events %v, want %v", i, got, want)
			}
		}
		if st, ps := e.orderStatus(id); st != "paid" || ps != "paid" {
			t.Errorf("order %s/%s, want paid/paid", st, ps)
		}
		webtest.AssertProblem(t, e.c.Do("POST", "/api/v1/payments/webhooks/nosuch", d.Body), http.StatusNotFound, "not_found")
	})
}

// TestWebhookAfterAnswer: the webhook of a capture the pay request already
// committed is received and changes nothing (applied false).
func TestWebhookAfterAnswer(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id, _ := e.paid(1)
		before := e.events(id)
		for _, d := range e.sbx.Pending() {
			r := e.deliver(d)
			r.WantStatus(t, http.StatusOK)
			if r.Field("applied") != false {
				t.Errorf("applied = %v, want false", r.Field("applied"))
			}
		}
		if got := e.events(id); !equal(got, before) {
			t.Errorf("events %v, want %v", got, before)
		}
	})
}

// TestNoCardNumbers: mercato never receives a card number. A card field
// is 400 (strict decoding: unknown field); a card-number-shaped token or
// refund reason is 422; nothing of it is stored.
func TestNoCardNumbers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.order(e.as("alice"), 1)
		pay := "/api/v1/orders/" + id + "/pay"
		for _, tc := range []struct {
			name   string
			body   map[string]any
			status int
			code   string
		}{
			{"card_number field", map[string]any{"method": "sandbox", "token": "tok_success", "card_number": "4242424242424242"}, 400, "malformed_request"},
			{"card object", map[string]any{"method": "sandbox", "card": map[string]any{"number": "4242424242424242"}}, 400, "malformed_request"},
			{"token is a card number", map[string]any{"method": "sandbox", "token": "4242424242424242"}, 422, "validation_failed"},
			{"spaced card number", map[string]any{"method": "sandbox", "token": "4000 0566 5566 5556"}, 422, "validation_failed"},
			{"dashed card number", map[string]any{"method": "sandbox", "token": "tok-5555-5555-5555-4444"}, 422, "validation_failed"},
		} {
			r := e.as("alice").Do("POST", pay, tc.body)
			webtest.AssertProblem(t, r, tc.status, tc.code)
			if strings.Contains(string(r.Body), "4242424242424242") {
				t.Errorf("%s: the answer echoes the number", tc.name)
			}
		}
		if n := e.count("payments_attempts", ""); n != 0 {
			t.Errorf("attempts = %d, want 0", n)
		}
		paidID, _ := e.paid(1)
		r := e.as("cs").Do("POST", "/api/v1/admin/orders/"+paidID+"/refunds", usdBody(100, "card 4111 1111 1111 1111 was stolen"))
		webtest.AssertFieldError(t, webtest.AssertProblem(t, r, 422, "validation_failed"), "reason")
		for _, q := range []string{`SELECT count(*) FROM payments_attempts WHERE token LIKE '%4242%' OR token LIKE '%5556%'`,
			`SELECT count(*) FROM payments_refunds WHERE reason LIKE '%1111%'`} {
			var n int
			e.db.Reader().QueryRow(q).Scan(&n)
			if n != 0 {
				t.Errorf("%s = %d, want 0", q, n)
			}
		}
	})
}

func TestCardLike(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"4242424242424242", true},
		{"4242 4242 4242 4242", true},
		{"x5555-5555-5555-4444y", true},
		{"378282246310005", true},   // Amex, 15 digits
		{"4242424242424241", false}, // fails Luhn
		{"tok_success", false},
		{"pm_1234567890", false}, // 10 digits
		{"order 20301231 refund", false},
		{"", false},
	} {
		if got := cardLike(tc.in); got != tc.want {
			t.Errorf("cardLike(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestNoEndpointTakesACard: every POST route of orders and payments that
// reads a body, sent a card number (as a field of its own, and as each
// string a client might type), refuses it (4xx, never 2xx or 5xx); those
// that read none ignore it; and the number is stored nowhere.
func TestNoEndpointTakesACard(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		const pan = "4242424242424242"
		paid, _ := e.paid(1)
		open := e.order(e.as("alice"), 1)
		routes := append(e.ord.Module().Routes, e.svc.Module().Routes...)
		bodies := []map[string]any{
			{"card_number": pan},
			{"card": map[string]any{"number": pan, "exp_month": 12, "exp_year": 2031, "cvc": "123"}},
			{"method": "sandbox", "token": pan},
			{"amount": map[string]any{"amount": 100, "currency": "USD"}, "reason": pan},
			{"sku": pan, "quantity": 1},
		}
		tried := 0
		for _, rt := range routes {
			if rt.Method != "POST" {
				continue
			}
			for _, orderID := range []string{paid, open} {
				path := strings.ReplaceAll(rt.Path, "{id}", orderID)
				path = strings.ReplaceAll(path, "{provider}", "sandbox")
				for _, who := range []string{"alice", "cs"} {
					for _, b := range bodies {
						r := e.as(who).Do("POST", path, b)
						tried++
						// A route that reads no body (cancel, create a cart)
						// ignores it: it must only not fail or store it.
						refused := r.Status >= 400 && r.Status < 500
						if r.Status >= 500 || rt.Request != nil && !refused {
							t.Errorf("%s %v as %s: %d %s", path, b, who, r.Status, r.Body)
						}
						if strings.Contains(string(r.Body), pan) {
							t.Errorf("%s echoes the number", path)
						}
					}
				}
			}
		}
		if tried < 50 {
			t.Fatalf("only %d requests tried", tried)
		}
		for _, q := range []string{
			`SELECT count(*) FROM payments_attempts WHERE token LIKE '%4242%'`,
			`SELECT count(*) FROM payments_refunds WHERE reason LIKE '%4242%'`,
			`SELECT count(*) FROM orders_cart_lines WHERE sku LIKE '%4242%'`,
			`SELECT count(*) FROM outbox WHERE data LIKE '%4242424242%'`,
			`SELECT count(*) FROM audit_log WHERE after_json LIKE '%4242424242%'`,
		} {
			var n int
			if err := e.db.Reader().QueryRow(q).Scan(&n); err != nil || n != 0 {
				t.Errorf("%s = %d, %v", q, n, err)
			}
		}
	})
}
