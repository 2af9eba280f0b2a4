package payments

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/web/webtest"
)

func usdBody(amount int64, reason string) map[string]any {
	return map[string]any{"amount": map[string]any{"amount": amount, "currency": "USD"}, "reason": reason}
}

// TestRefunds: partial, then the rest (a full refund of a paid, unshipped
// order cancels it), then above what is captured (422); the events, the
// order's payment_status and the audit log follow.
func TestRefunds(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id, total := e.paid(2)
		path := "/api/v1/admin/orders/" + id + "/refunds"
		steps := []struct {
			name          string
			who           string
			amount        int64
			status        int
			code          string
			field         string
			orderStatus   string
			paymentStatus string
		}{
			{"a customer may not", "alice", 100, 403, "forbidden", "", "paid", "paid"},
			{"zero", "cs", 0, 422, "validation_failed", "amount", "paid", "paid"},
			{"above captured", "cs", total + 1, 422, "validation_failed", "amount", "paid", "paid"},
			{"partial", "cs", 500, 201, "", "", "paid", "partially_refunded"},
			{"the rest plus one", "op", total - 500 + 1, 422, "validation_failed", "amount", "paid", "partially_refunded"},
			{"the rest", "op", total - 500, 201, "", "", "cancelled", "refunded"},
			{"anything more", "op", 1, 422, "validation_failed", "amount", "cancelled", "refunded"},
		}
		for _, st := range steps {
			r := e.as(st.who).Do("POST", path, usdBody(st.amount, "damaged in transit"))
			if st.code != "" {
				p := webtest.AssertProblem(t, r, st.status, st.code)
				if st.field != "" {
					webtest.AssertFieldError(t, p, st.field)
				}
			} else {
				r.WantStatus(t, st.status)
				if got := int64(r.Field("amount.amount").(float64)); got != st.amount {
					t.Errorf("%s: refund amount = %d, want %d", st.name, got, st.amount)
				}
				if r.Field("status") != "succeeded" || r.Field("order_id") != id {
					t.Errorf("%s: refund = %s", st.name, r.Body)
				}
			}
			if gs, gp := e.orderStatus(id); gs != st.orderStatus || gp != st.paymentStatus {
				t.Errorf("%s: order %s/%s, want %s/%s", st.name, gs, gp, st.orderStatus, st.paymentStatus)
			}
		}
		want := []string{"order.placed", "payment.captured", "order.paid", "payment.refunded", "payment.refunded", "order.cancelled"}
		if got := e.events(id); !equal(got, want) {
			t.Errorf("events = %v, want %v", got, want)
		}
		if n := e.count("audit_log", "action = 'payment.refunded' AND target_id = $1", id); n != 2 {
			t.Errorf("audit entries = %d, want 2", n)
		}
		var refunded, captured int64
		var status string
		e.db.Reader().QueryRow(`SELECT refunded, captured, status FROM payments_intents WHERE order_id = $1`, id).Scan(&refunded, &captured, &status)
		if refunded != total || captured != total || status != "refunded" {
			t.Errorf("intent refunded %d of %d (%s), want all of %d (refunded)", refunded, captured, status, total)
		}
		g := e.as("cs").Do("GET", "/api/v1/admin/orders/"+id+"/payment", nil)
		g.WantStatus(t, http.StatusOK)
		if rs, _ := g.Field("refunds").([]any); len(rs) != 2 {
			t.Errorf("the payment lists %d refunds, want 2", len(rs))
		}
		webtest.AssertProblem(t, e.as("cs").Do("POST", "/api/v1/admin/orders/nope/refunds", usdBody(1, "x")), http.StatusNotFound, "not_found")
	})
}

// TestRefundIdempotent: a retry with the refund's key replays the 201 and
// refunds nothing more.
func TestRefundIdempotent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id, _ := e.paid(1)
		for i := range 2 {
			r := e.as("cs").Do("POST", "/api/v1/admin/orders/"+id+"/refunds", usdBody(300, "goodwill"), "Idempotency-Key: r1")
			r.WantStatus(t, http.StatusCreated)
			if (r.Header.Get("Idempotent-Replayed") == "true") != (i == 1) {
				t.Errorf("call %d: replayed = %q", i, r.Header.Get("Idempotent-Replayed"))
			}
		}
		if n := e.count("payments_refunds", ""); n != 1 {
			t.Errorf("refunds = %d, want 1", n)
		}
		var refunded int64
		e.db.Reader().QueryRow(`SELECT refunded FROM payments_intents WHERE order_id = $1`, id).Scan(&refunded)
		if refunded != 300 {
			t.Errorf("refunded = %d, want 300", refunded)
		}
	})
}

// TestRefundRace: refunds racing for one capture never exceed it: of
// eight parallel refunds of 40% each, exactly two pass (both engines).
func TestRefundRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id, total := e.paid(4)
		part := total * 4 / 10
		const n = 8
		statuses := make([]int, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				statuses[i] = e.as("cs").Do("POST", "/api/v1/admin/orders/"+id+"/refunds", usdBody(part, "race")).Status
			}()
		}
		close(start)
		wg.Wait()
		var ok, refused int
		for _, s := range statuses {
			switch s {
			case http.StatusCreated:
				ok++
			case http.StatusUnprocessableEntity:
				refused++
			default:
				t.Errorf("unexpected status %d", s)
			}
		}
		if ok != 2 || refused != n-2 {
			t.Errorf("%d refunds passed and %d were refused, want 2 and %d", ok, refused, n-2)
		}
		var refunded, captured int64
		e.db.Reader().QueryRow(`SELECT refunded, captured FROM payments_intents WHERE order_id = $1`, id).Scan(&refunded, &captured)
		if refunded != 2*part || refunded > captured {
			t.Errorf("refunded %d of %d, want %d", refunded, captured, 2*part)
		}
		if n := e.count("payments_refunds", "status = 'succeeded'"); n != 2 {
			t.Errorf("succeeded refunds = %d, want 2", n)
		}
		var evs int
		for _, ty := range e.events(id) {
			if ty == "payment.refunded" {
				evs++
			}
		}
		if evs != 2 {
			t.Errorf("payment.refunded events = %d, want 2", evs)
		}
		if _, ps := e.orderStatus(id); ps != "partially_refunded" {
			t.Errorf("payment_status = %s, want partially_refunded", ps)
		}
	})
}

// TestRefundShipped: a full refund of a shipped order changes its
// payment_status only; the lifecycle stays (no cancellation).
func TestRefundShipped(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id, total := e.paid(1)
		// Shipping is the logistics module's; here the row says shipped.
		if _, err := e.db.Writer().Exec(`UPDATE orders_orders SET status = 'shipped', fulfillment_status = 'shipped' WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		e.as("op").Do("POST", "/api/v1/admin/orders/"+id+"/refunds", usdBody(total, "lost in transit")).WantStatus(t, http.StatusCreated)
		if st, ps := e.orderStatus(id); st != "shipped" || ps != "refunded" {
			t.Errorf("order %s/%s, want shipped/refunded", st, ps)
		}
		for _, ty := range e.events(id) {
			if ty == "order.cancelled" {
				t.Error("a shipped order was cancelled by its refund")
			}
		}
	})
}

// TestRefundAnswerLost: the provider refunds but its answer is lost: 503
// payment_outcome_unknown, the amount stays reserved (no other refund may
// take it). A retry with the same key asks the provider under the same
// provider key and commits the one refund; without a retry,
// reconciliation does.
func TestRefundAnswerLost(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		for _, retry := range []bool{true, false} {
			id, total := e.paid(1)
			path := "/api/v1/admin/orders/" + id + "/refunds"
			e.flaky.loseRefunds(1)
			key := fmt.Sprintf("Idempotency-Key: lost-%v", retry)
			webtest.AssertProblem(t, e.as("cs").Do("POST", path, usdBody(total, "broken"), key), http.StatusServiceUnavailable, "payment_outcome_unknown")
			webtest.AssertProblem(t, e.as("cs").Do("POST", path, usdBody(1, "another"), "Idempotency-Key: other-"+id),
				http.StatusUnprocessableEntity, "validation_failed")
			if _, ps := e.orderStatus(id); ps != "paid" {
				t.Errorf("retry=%v: payment_status %s before the refund commits", retry, ps)
			}
			if retry {
				e.as("cs").Do("POST", path, usdBody(total, "broken"), key).WantStatus(t, http.StatusCreated)
			} else {
				e.clock.Advance(3 * time.Minute)
				if rep := e.reconcile(); rep.Fixed != 1 {
					t.Errorf("report %+v, want the pending refund sent", rep)
				}
			}
			if st, ps := e.orderStatus(id); st != "cancelled" || ps != "refunded" {
				t.Errorf("retry=%v: order %s/%s, want cancelled/refunded", retry, st, ps)
			}
			var n int
			e.db.Reader().QueryRow(`SELECT count(*) FROM payments_refunds r JOIN payments_intents i ON i.id = r.intent_id
				WHERE i.order_id = $1 AND r.status = 'succeeded'`, id).Scan(&n)
			if n != 1 {
				t.Errorf("retry=%v: %d succeeded refunds, want 1", retry, n)
			}
			var ref string
			e.db.Reader().QueryRow(`SELECT provider_ref FROM payments_intents WHERE order_id = $1`, id).Scan(&ref)
			if _, err := e.sbx.Refund(context.Background(), refundOf(ref, 1)); err == nil {
				t.Errorf("retry=%v: the provider holds money after a full refund", retry)
			}
			refunded := 0
			for _, ty := range e.events(id) {
				if ty == "payment.refunded" {
					refunded++
				}
			}
			if refunded != 1 {
				t.Errorf("retry=%v: %d payment.refunded, want 1", retry, refunded)
			}
		}
	})
}
