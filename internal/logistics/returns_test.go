package logistics

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/errs"

	"mercato/internal/platform/web/webtest"
)

// delivered returns an order of alice's, paid, shipped and delivered.
func (e *env) delivered(lines ...any) string {
	e.t.Helper()
	id := e.paid(e.alice, lines...)
	e.ship(id)
	e.deliverAll()
	if o := e.order(id); o.Field("status") != "delivered" {
		e.t.Fatalf("not delivered: %s", o.Body)
	}
	return id
}

func (e *env) onHand(sku string) float64 {
	e.t.Helper()
	r := e.op.Do("GET", "/api/v1/admin/inventory/"+sku, nil)
	r.WantStatus(e.t, http.StatusOK)
	return r.Field("on_hand").(float64)
}

// TestReturns: a return asked for in the window, approved and received:
// the restocked line is back on hand, the written-off one is not, the
// order is returned and return.received asks for the refund of both.
func TestReturns(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.delivered("TEE", 2, "MUG", 1)
		tees, mugs := e.onHand("TEE"), e.onHand("MUG")
		req := map[string]any{"reason": "  Too small  ", "lines": []map[string]any{{"sku": "TEE", "quantity": 1}, {"sku": "MUG", "quantity": 1}}}
		webtest.AssertProblem(t, e.bob.Do("POST", "/api/v1/orders/"+id+"/returns", req), http.StatusNotFound, "not_found")
		webtest.AssertProblem(t, e.op.Do("POST", "/api/v1/orders/"+id+"/returns", req), http.StatusNotFound, "not_found")
		r := e.alice.Do("POST", "/api/v1/orders/"+id+"/returns", req)
		r.WantStatus(t, http.StatusCreated)
		rid, _ := r.Field("id").(string)
		if r.Field("status") != "requested" || r.Field("reason") != "Too small" || r.Field("refund.amount") != float64(2400) ||
			r.Field("lines.0.sku") != "MUG" || r.Field("lines.1.unit_price.amount") != float64(1500) {
			t.Fatalf("return: %s", r.Body)
		}
		if o := e.order(id); o.Field("status") != "return_requested" {
			t.Fatalf("order: %s", o.Body)
		}
		webtest.AssertProblem(t, e.alice.Do("POST", "/api/v1/orders/"+id+"/returns", req), http.StatusConflict, "invalid_transition")
		webtest.AssertProblem(t, e.alice.Do("POST", "/api/v1/admin/returns/"+rid+"/approve", nil), http.StatusForbidden, "forbidden")
		webtest.AssertProblem(t, e.cs.Do("POST", "/api/v1/admin/returns/"+rid+"/receive", nil), http.StatusConflict, "invalid_transition")
		a := e.cs.Do("POST", "/api/v1/admin/returns/"+rid+"/approve", nil)
		a.WantStatus(t, http.StatusOK)
		if a.Field("status") != "approved" {
			t.Fatalf("approve: %s", a.Body)
		}
		webtest.AssertProblem(t, e.cs.Do("POST", "/api/v1/admin/returns/"+rid+"/approve", nil), http.StatusConflict, "invalid_transition")
		webtest.AssertProblem(t, e.cs.Do("POST", "/api/v1/admin/returns/"+rid+"/receive", map[string]any{"lines": []map[string]any{
			{"sku": "MUG", "disposition": "burn"}}}), http.StatusUnprocessableEntity, "validation_failed")
		got := e.cs.Do("POST", "/api/v1/admin/returns/"+rid+"/receive", map[string]any{"lines": []map[string]any{
			{"sku": "MUG", "disposition": "write_off"}}})
		got.WantStatus(t, http.StatusOK)
		if got.Field("status") != "received" || got.Field("lines.0.disposition") != "write_off" || got.Field("lines.1.disposition") != "restock" ||
			got.Field("lines.1.location") != "default" {
			t.Fatalf("receive: %s", got.Body)
		}
		if n := e.onHand("TEE"); n != tees+1 {
			t.Errorf("TEE on hand %v, want %v (restocked)", n, tees+1)
		}
		if n := e.onHand("MUG"); n != mugs {
			t.Errorf("MUG on hand %v, want %v (written off)", n, mugs)
		}
		if o := e.order(id); o.Field("status") != "returned" || o.Field("fulfillment_status") != "returned" {
			t.Fatalf("order: %s", o.Body)
		}
		if n := e.count(`SELECT count(*) FROM audit_log WHERE target_type = 'return' AND target_id = $1 AND actor_id = 'u-cs'`, rid); n != 2 {
			t.Errorf("%d audit entries of the return, want 2 (approved, received)", n)
		}
		if ev := e.types("return", rid); !equal(ev, []string{"return.requested", "return.approved", "return.received"}) {
			t.Errorf("return events %v", ev)
		}
		if d := e.data(rid, "return.received"); d["amount"] != float64(2400) || d["currency"] != "USD" || d["order_id"] != id {
			t.Errorf("return.received %v", d)
		}
		if ev := e.types("order", id); !equal(ev[len(ev)-2:], []string{"order.return_requested", "order.returned"}) {
			t.Errorf("order events %v", ev)
		}
		list := e.alice.Do("GET", "/api/v1/orders/"+id+"/returns", nil)
		if list.Field("items.0.id") != rid {
			t.Errorf("my returns: %s", list.Body)
		}
		if all := e.cs.Do("GET", "/api/v1/admin/returns?status=received", nil); all.Field("items.0.id") != rid {
			t.Errorf("admin returns: %s", all.Body)
		}
		webtest.AssertProblem(t, e.cs.Do("GET", "/api/v1/admin/returns?status=lost", nil), http.StatusUnprocessableEntity, "validation_failed")
	})
}

// TestReturnRules: the window (422 return_window_closed outside it), the
// order's status (409 before delivery), the lines (422 for more than was
// delivered), the reason; a rejection gives the order back and allows
// another request.
func TestReturnRules(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		shippedOnly := e.paid(e.alice, "TEE", 1)
		e.ship(shippedOnly)
		webtest.AssertProblem(t, e.alice.Do("POST", "/api/v1/orders/"+shippedOnly+"/returns", map[string]any{"reason": "x"}),
			http.StatusConflict, "invalid_transition")

		id := e.delivered("TEE", 2)
		for name, body := range map[string]map[string]any{
			"no reason":     {"reason": "  "},
			"too many":      {"reason": "x", "lines": []map[string]any{{"sku": "TEE", "quantity": 3}}},
			"not in order":  {"reason": "x", "lines": []map[string]any{{"sku": "CAP", "quantity": 1}}},
			"zero":          {"reason": "x", "lines": []map[string]any{{"sku": "TEE", "quantity": 0}}},
			"long reason":   {"reason": string(make([]rune, 501))},
			"twice the sku": {"reason": "x", "lines": []map[string]any{{"sku": "TEE", "quantity": 1}, {"sku": "TEE", "quantity": 1}}},
		} {
			r := e.alice.Do("POST", "/api/v1/orders/"+id+"/returns", body)
			if r.Status != http.StatusUnprocessableEntity || r.Problem == nil || r.Problem.Code != "validation_failed" {
				t.Errorf("%s: %d %s", name, r.Status, r.Body)
			}
		}
		r := e.alice.Do("POST", "/api/v1/orders/"+id+"/returns", map[string]any{"reason": "changed my mind"})
		r.WantStatus(t, http.StatusCreated)
		rid := r.Field("id").(string)
		if r.Field("lines.0.quantity") != float64(2) {
			t.Fatalf("a return without lines takes every unit: %s", r.Body)
		}
		webtest.AssertProblem(t, e.cs.Do("POST", "/api/v1/admin/returns/"+rid+"/reject", map[string]any{"note": ""}),
			http.StatusUnprocessableEntity, "validation_failed")
		rej := e.cs.Do("POST", "/api/v1/admin/returns/"+rid+"/reject", map[string]any{"note": "worn"})
		rej.WantStatus(t, http.StatusOK)
		if rej.Field("status") != "rejected" || rej.Field("note") != "worn" {
			t.Fatalf("reject: %s", rej.Body)
		}
		if o := e.order(id); o.Field("status") != "delivered" {
			t.Fatalf("order after a rejection: %s", o.Body)
		}
		if ev := e.types("return", rid); !equal(ev, []string{"return.requested", "return.rejected"}) {
			t.Errorf("return events %v", ev)
		}
		// Asked again, on the window's last day, then after it.
		e.clock.Advance(14*24*time.Hour - time.Hour)
		e.alice.Do("POST", "/api/v1/orders/"+id+"/returns", map[string]any{"reason": "again", "lines": []map[string]any{{"sku": "TEE", "quantity": 1}}}).
			WantStatus(t, http.StatusCreated)
		late := e.delivered("MUG", 1)
		e.clock.Advance(14*24*time.Hour + time.Second)
		webtest.AssertProblem(t, e.alice.Do("POST", "/api/v1/orders/"+late+"/returns", map[string]any{"reason": "late"}),
			http.StatusUnprocessableEntity, "return_window_closed")
		if o := e.order(late); o.Field("status") != "delivered" {
			t.Errorf("a refused return moved the order: %s", o.Body)
		}
	})
}

// TestCompleteDue: the logistics.complete job completes orders delivered
// CompleteAfter ago (order.completed), not sooner; returns stay possible
// within the window.
func TestCompleteDue(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.delivered("CAP", 1)
		ctx := context.Background()
		e.clock.Advance(13 * 24 * time.Hour)
		if n, err := e.svc.CompleteDue(ctx); err != nil || n != 0 {
			t.Fatalf("early: %d, %v", n, err)
		}
		e.clock.Advance(24 * time.Hour)
		if n, err := e.svc.CompleteDue(ctx); err != nil || n != 1 {
			t.Fatalf("due: %d, %v", n, err)
		}
		if o := e.order(id); o.Field("status") != "completed" {
			t.Fatalf("order: %s", o.Body)
		}
		if ev := e.types("order", id); ev[len(ev)-1] != "order.completed" {
			t.Errorf("order events %v", ev)
		}
		if n, err := e.svc.CompleteDue(ctx); err != nil || n != 0 {
			t.Fatalf("again: %d, %v", n, err)
		}
		webtest.AssertProblem(t, e.op.Do("POST", "/api/v1/admin/orders/"+id+"/complete", nil), http.StatusConflict, "invalid_transition")
	})
}

// TestCompleteByStaff: staff complete a delivered order at once; a shipped
// one is 409; customers may not.
func TestCompleteByStaff(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		shipped := e.paid(e.alice, "TEE", 1)
		e.ship(shipped)
		webtest.AssertProblem(t, e.op.Do("POST", "/api/v1/admin/orders/"+shipped+"/complete", nil), http.StatusConflict, "invalid_transition")
		id := e.delivered("MUG", 1)
		webtest.AssertProblem(t, e.alice.Do("POST", "/api/v1/admin/orders/"+id+"/complete", nil), http.StatusForbidden, "forbidden")
		r := e.op.Do("POST", "/api/v1/admin/orders/"+id+"/complete", nil)
		r.WantStatus(t, http.StatusOK)
		if o := e.order(id); o.Field("status") != "completed" {
			t.Fatalf("order: %s", o.Body)
		}
		if f := e.op.Do("GET", "/api/v1/admin/orders/"+id+"/fulfilment", nil); f.Field("status") != "completed" {
			t.Errorf("fulfilment: %s", f.Body)
		}
		if ev := e.types("order", id); ev[len(ev)-1] != "order.completed" {
			t.Errorf("order events %v", ev)
		}
		// Returns stay open within the window after completion.
		e.alice.Do("POST", "/api/v1/orders/"+id+"/returns", map[string]any{"reason": "late doubts"}).WantStatus(t, http.StatusCreated)
	})
}

// TestReturnRace: requests to return the same delivered units at once —
// one wins, the others are 409 and take nothing (both engines).
func TestReturnRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.delivered("TEE", 1)
		const n = 6
		var wg sync.WaitGroup
		out := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, out[i] = e.svc.RequestReturn(context.Background(), id, "u-alice", ReturnRequest{Reason: "race"})
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range out {
			switch {
			case err == nil:
				won++
			case errs.KindOf(err) != errs.Conflict:
				t.Errorf("loser: %v, want a conflict", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d returns won, want 1", won)
		}
		if got := e.count(`SELECT returned FROM logistics_order_lines WHERE order_id = $1`, id); got != 1 {
			t.Errorf("returned %d, want 1", got)
		}
		if got := e.count(`SELECT count(*) FROM logistics_returns WHERE order_id = $1`, id); got != 1 {
			t.Errorf("%d returns, want 1", got)
		}
	})
}
