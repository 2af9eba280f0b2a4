package payments

import (
	"net/http"
	"testing"

	"mercato/internal/platform/web/webtest"
)

// TestPay: the contract of POST /api/v1/orders/{id}/pay through the real
// server: status, body and the events appended, per token.
func TestPay(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		for _, tc := range []struct {
			name, token  string
			status       int
			code         string
			orderStatus  string
			intentStatus string
			events       []string
		}{
			{"success", "tok_success", 200, "", "paid", "captured", []string{"order.placed", "payment.captured", "order.paid"}},
			{"decline", "tok_decline", 402, "payment_declined", "pending_payment", "failed", []string{"order.placed", "payment.failed"}},
			{"3-D Secure", "tok_3ds", 402, "payment_requires_action", "pending_payment", "requires_action", []string{"order.placed"}},
			{"unknown token", "tok_nonsense", 422, "validation_failed", "pending_payment", "requires_action", []string{"order.placed"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id := e.order(e.as("alice"), 2)
				r := e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": tc.token},
					"Idempotency-Key: pay-"+tc.name)
				if tc.code != "" {
					p := webtest.AssertProblem(t, r, tc.status, tc.code)
					if tc.code == "validation_failed" {
						webtest.AssertFieldError(t, p, "token")
					}
				} else {
					r.WantStatus(t, tc.status)
					if got := r.Field("status"); got != "paid" {
						t.Errorf("order status in the answer = %v, want paid", got)
					}
					if got := r.Field("payment_status"); got != "paid" {
						t.Errorf("payment_status = %v, want paid", got)
					}
				}
				if st, _ := e.orderStatus(id); st != tc.orderStatus {
					t.Errorf("order status = %s, want %s", st, tc.orderStatus)
				}
				var status string
				e.db.Reader().QueryRow(`SELECT status FROM payments_intents WHERE order_id = $1`, id).Scan(&status)
				if status != tc.intentStatus {
					t.Errorf("intent status = %q, want %q", status, tc.intentStatus)
				}
				if got := e.events(id); !equal(got, tc.events) {
					t.Errorf("events = %v, want %v", got, tc.events)
				}
				// The same key replays the first answer, whatever happened since.
				again := e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": tc.token},
					"Idempotency-Key: pay-"+tc.name)
				if tc.status != 422 && (again.Status != tc.status || again.Header.Get("Idempotent-Replayed") != "true") {
					t.Errorf("retry with the key: %d replayed=%q, want %d replayed", again.Status, again.Header.Get("Idempotent-Replayed"), tc.status)
				}
				if got := e.events(id); !equal(got, tc.events) {
					t.Errorf("events after the retry = %v, want %v", got, tc.events)
				}
			})
		}
	})
}

// TestPayNotPending: paying a paid order with a new key is 409
// invalid_transition and charges nothing; another's order is 404.
func TestPayNotPending(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id, _ := e.paid(1)
		before := e.sbx.Captures()
		r := e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"}, "Idempotency-Key: second")
		webtest.AssertProblem(t, r, http.StatusConflict, "invalid_transition")
		r = e.as("bob").Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"})
		webtest.AssertProblem(t, r, http.StatusNotFound, "not_found")
		if got := e.sbx.Captures(); got != before {
			t.Errorf("captures = %d, want %d", got, before)
		}
		if n := e.count("payments_attempts", ""); n != 1 {
			t.Errorf("attempts = %d, want 1", n)
		}
	})
}

// TestThreeDSecure: tok_3ds answers 402 payment_requires_action naming
// the challenge; confirm then pays the order (payment.captured and
// order.paid in one unit); a second confirm is 409.
func TestThreeDSecure(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.order(e.as("alice"), 1)
		r := e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_3ds"})
		p := webtest.AssertProblem(t, r, http.StatusPaymentRequired, "payment_requires_action")
		if want := "https://sandbox.invalid/3ds/"; !contains(p.Detail, want) || !contains(p.Detail, "/pay/confirm") {
			t.Errorf("detail %q names no challenge or confirm", p.Detail)
		}
		webtest.AssertProblem(t, e.as("bob").Do("POST", "/api/v1/orders/"+id+"/pay/confirm", map[string]any{}), http.StatusNotFound, "not_found")
		r = e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay/confirm", map[string]any{})
		r.WantStatus(t, http.StatusOK)
		if r.Field("status") != "paid" {
			t.Errorf("status = %v, want paid", r.Field("status"))
		}
		if got, want := e.events(id), []string{"order.placed", "payment.captured", "order.paid"}; !equal(got, want) {
			t.Errorf("events = %v, want %v", got, want)
		}
		webtest.AssertProblem(t, e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay/confirm", map[string]any{}),
			http.StatusConflict, "invalid_transition")
		if e.sbx.Captures() != 1 {
			t.Errorf("captures = %d, want 1", e.sbx.Captures())
		}
	})
}

// TestAmbiguousTimeout: tok_timeout captures at the provider but loses
// the answer (503 payment_outcome_unknown, the order unpaid); the retry
// with the same Idempotency-Key sends the same provider key, gets the
// first capture back and pays the order — one capture in all.
func TestAmbiguousTimeout(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.order(e.as("alice"), 1)
		body := map[string]any{"method": "sandbox", "token": "tok_timeout"}
		r := e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay", body, "Idempotency-Key: k1")
		webtest.AssertProblem(t, r, http.StatusServiceUnavailable, "payment_outcome_unknown")
		if st, _ := e.orderStatus(id); st != "pending_payment" {
			t.Fatalf("after the lost answer the order is %s", st)
		}
		for i := range 3 {
			r = e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay", body, "Idempotency-Key: k1")
			r.WantStatus(t, http.StatusOK)
			if replayed := r.Header.Get("Idempotent-Replayed") == "true"; replayed != (i > 0) {
				t.Errorf("retry %d: replayed = %v", i, replayed)
			}
		}
		if got := e.sbx.Captures(); got != 1 {
			t.Errorf("the provider captured %d times, want 1", got)
		}
		if got, want := e.events(id), []string{"order.placed", "payment.captured", "order.paid"}; !equal(got, want) {
			t.Errorf("events = %v, want %v", got, want)
		}
		if n := e.count("payments_attempts", ""); n != 1 {
			t.Errorf("attempts = %d, want 1 (one provider key)", n)
		}
	})
}

func contains(s, sub string) bool { return len(sub) == 0 || len(s) >= len(sub) && indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
