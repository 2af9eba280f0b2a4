package logistics

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/web/webtest"
)

// TestShipments: full and split shipments move the order and emit the
// events; refusals (unpaid, cancelled, fully shipped, too many units, a
// SKU not in the order, an unknown carrier or order, no permission) are
// the documented problems and write nothing.
func TestShipments(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		t.Run("full", func(t *testing.T) {
			id := e.paid(e.alice, "TEE", 2, "MUG", 1)
			f := e.op.Do("GET", "/api/v1/admin/orders/"+id+"/fulfilment", nil)
			f.WantStatus(t, http.StatusOK)
			if f.Field("status") != "open" || f.Field("pick_lists.0.location") != "default" || f.Field("pick_lists.0.lines.0.sku") != "MUG" ||
				f.Field("pick_lists.0.lines.1.quantity") != float64(2) {
				t.Fatalf("fulfilment: %s", f.Body)
			}
			r := e.op.Do("POST", "/api/v1/admin/orders/"+id+"/shipments", map[string]any{"carrier": "sandbox"})
			r.WantStatus(t, http.StatusCreated)
			tn, _ := r.Field("tracking_number").(string)
			if r.Field("order_id") != id || r.Field("carrier") != "sandbox" || len(tn) != 19 || r.Field("status") != "label_created" ||
				r.Field("lines.0.sku") != "MUG" || r.Field("lines.1.sku") != "TEE" || r.Field("lines.1.quantity") != float64(2) {
				t.Fatalf("shipment: %s", r.Body)
			}
			o := e.order(id)
			if o.Field("status") != "shipped" || o.Field("fulfillment_status") != "shipped" {
				t.Fatalf("order after a full shipment: %s", o.Body)
			}
			if got := e.types("order", id); !equal(got, []string{"order.placed", "order.paid", "order.shipped"}) {
				t.Errorf("order events %v", got)
			}
			sid := r.Field("id").(string)
			if got := e.types("shipment", sid); !equal(got, []string{"shipment.created"}) {
				t.Errorf("shipment events %v", got)
			}
			if d := e.data(sid, "shipment.created"); d["tracking_number"] != tn || d["order_id"] != id {
				t.Errorf("shipment.created %v", d)
			}
			if d := e.data(id, "order.shipped"); d["shipment_id"] != sid {
				t.Errorf("order.shipped %v", d)
			}
			// Shipped in full: another is 409 invalid_transition, with or without lines.
			webtest.AssertProblem(t, e.op.Do("POST", "/api/v1/admin/orders/"+id+"/shipments", map[string]any{"carrier": "sandbox"}),
				http.StatusConflict, "invalid_transition")
			webtest.AssertProblem(t, e.op.Do("POST", "/api/v1/admin/orders/"+id+"/shipments", map[string]any{"carrier": "sandbox",
				"lines": []map[string]any{{"sku": "TEE", "quantity": 1}}}), http.StatusConflict, "invalid_transition")
			if n := e.count(`SELECT count(*) FROM logistics_shipments WHERE order_id = $1`, id); n != 1 {
				t.Errorf("%d shipments, want 1", n)
			}
		})
		t.Run("split", func(t *testing.T) {
			id := e.paid(e.alice, "TEE", 2, "MUG", 1)
			first := e.op.Do("POST", "/api/v1/admin/orders/"+id+"/shipments", map[string]any{"carrier": "sandbox",
				"lines": []map[string]any{{"sku": "TEE", "quantity": 1}}})
			first.WantStatus(t, http.StatusCreated)
			if o := e.order(id); o.Field("status") != "partially_shipped" || o.Field("fulfillment_status") != "partially_shipped" {
				t.Fatalf("order after a part: %s", o.Body)
			}
			webtest.AssertProblem(t, e.op.Do("POST", "/api/v1/admin/orders/"+id+"/shipments", map[string]any{"carrier": "sandbox",
				"lines": []map[string]any{{"sku": "TEE", "quantity": 2}}}), http.StatusConflict, "already_shipped")
			second := e.op.Do("POST", "/api/v1/admin/orders/"+id+"/shipments", map[string]any{"carrier": "sandbox"}, "Idempotency-Key: ship-rest")
			second.WantStatus(t, http.StatusCreated)
			replay := e.op.Do("POST", "/api/v1/admin/orders/"+id+"/shipments", map[string]any{"carrier": "sandbox"}, "Idempotency-Key: ship-rest")
			if replay.Status != http.StatusCreated || string(replay.Body) != string(second.Body) || replay.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("replayed shipment: %d %s", replay.Status, replay.Body)
			}
			if n := e.count(`SELECT count(*) FROM logistics_shipments WHERE order_id = $1`, id); n != 2 {
				t.Fatalf("%d shipments after a replay, want 2", n)
			}
			if second.Field("lines.0.sku") != "MUG" || second.Field("lines.1.quantity") != float64(1) || second.Field("tracking_number") == first.Field("tracking_number") {
				t.Fatalf("second shipment: %s", second.Body)
			}
			if o := e.order(id); o.Field("status") != "shipped" {
				t.Fatalf("order after the rest: %s", o.Body)
			}
			if got := e.types("order", id); !equal(got, []string{"order.placed", "order.paid", "order.partially_shipped", "order.shipped"}) {
				t.Errorf("order events %v", got)
			}
			if d := e.data(id, "order.shipped"); d["shipment_id"] != second.Field("id") {
				t.Errorf("order.shipped names %v, want the second shipment", d["shipment_id"])
			}
		})
		t.Run("refused", func(t *testing.T) {
			unpaid := e.placed(e.alice, "TEE", 1)
			cancelled := e.paid(e.alice, "TEE", 1)
			e.alice.Do("POST", "/api/v1/orders/"+cancelled+"/cancel", nil).WantStatus(t, http.StatusOK)
			paid := e.paid(e.alice, "TEE", 1)
			before := e.count(`SELECT count(*) FROM logistics_shipments`)
			for _, c := range []struct {
				name   string
				who    *webtest.Client
				order  string
				body   map[string]any
				status int
				code   string
			}{
				{"unpaid", e.op, unpaid, map[string]any{"carrier": "sandbox"}, 409, "invalid_transition"},
				{"cancelled", e.op, cancelled, map[string]any{"carrier": "sandbox"}, 409, "invalid_transition"},
				{"too many", e.op, paid, map[string]any{"carrier": "sandbox", "lines": []map[string]any{{"sku": "TEE", "quantity": 2}}}, 409, "already_shipped"},
				{"not in the order", e.op, paid, map[string]any{"carrier": "sandbox", "lines": []map[string]any{{"sku": "MUG", "quantity": 1}}}, 422, "validation_failed"},
				{"zero units", e.op, paid, map[string]any{"carrier": "sandbox", "lines": []map[string]any{{"sku": "TEE", "quantity": 0}}}, 422, "validation_failed"},
				{"unknown carrier", e.op, paid, map[string]any{"carrier": "owl"}, 422, "validation_failed"},
				{"price sent", e.op, paid, map[string]any{"carrier": "sandbox", "price": 1}, 400, "malformed_request"},
				{"no such order", e.op, "nope", map[string]any{"carrier": "sandbox"}, 404, "not_found"},
				{"customer", e.alice, paid, map[string]any{"carrier": "sandbox"}, 403, "forbidden"},
				{"customer service", e.cs, paid, map[string]any{"carrier": "sandbox"}, 403, "forbidden"},
			} {
				webtest.AssertProblem(t, c.who.Do("POST", "/api/v1/admin/orders/"+c.order+"/shipments", c.body), c.status, c.code)
			}
			if n := e.count(`SELECT count(*) FROM logistics_shipments`); n != before {
				t.Errorf("refusals wrote %d shipments", n-before)
			}
			if o := e.order(paid); o.Field("status") != "paid" {
				t.Errorf("refusals moved the order: %s", o.Body)
			}
		})
	})
}

// TestShipmentRace: shipments of the same last units at once — with
// lines and without — exactly one wins, the others are 409, and the units
// are shipped once (both engines, through group commit).
func TestShipmentRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		for _, lines := range [][]Line{nil, {{SKU: "TEE", Quantity: 2}}} {
			id := e.paid(e.alice, "TEE", 2)
			const n = 8
			var wg sync.WaitGroup
			errsOut := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errsOut[i] = e.svc.CreateShipment(context.Background(), id, ShipmentRequest{Carrier: "sandbox", Lines: lines})
				}()
			}
			wg.Wait()
			won := 0
			for _, err := range errsOut {
				switch {
				case err == nil:
					won++
				case errs.KindOf(err) != errs.Conflict:
					t.Errorf("loser: %v, want a conflict", err)
				}
			}
			if won != 1 {
				t.Fatalf("lines %v: %d shipments won, want 1", lines, won)
			}
			if got := e.count(`SELECT shipped FROM logistics_order_lines WHERE order_id = $1 AND sku = 'TEE'`, id); got != 2 {
				t.Errorf("shipped %d, want 2", got)
			}
			if got := e.count(`SELECT count(*) FROM logistics_shipments WHERE order_id = $1`, id); got != 1 {
				t.Errorf("%d shipments, want 1", got)
			}
			if got := e.types("order", id); !equal(got, []string{"order.placed", "order.paid", "order.shipped"}) {
				t.Errorf("order events %v", got)
			}
		}
	})
}

// TestSplitShipmentRace: two shipments of different lines of one order at
// once — the order ends shipped, with one order.shipped, whichever commits
// last (both engines).
func TestSplitShipmentRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		for range 3 {
			id := e.paid(e.alice, "TEE", 1, "MUG", 1, "CAP", 1)
			var wg sync.WaitGroup
			errsOut := make([]error, 3)
			for i, sku := range []string{"TEE", "MUG", "CAP"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errsOut[i] = e.svc.CreateShipment(context.Background(), id, ShipmentRequest{Carrier: "sandbox", Lines: []Line{{SKU: sku, Quantity: 1}}})
				}()
			}
			wg.Wait()
			for _, err := range errsOut {
				if err != nil {
					t.Fatalf("a shipment of its own line failed: %v", err)
				}
			}
			if o := e.order(id); o.Field("status") != "shipped" {
				t.Fatalf("order after three racing shipments: %s", o.Body)
			}
			if got := e.types("order", id); !equal(got, []string{"order.placed", "order.paid", "order.partially_shipped", "order.partially_shipped", "order.shipped"}) {
				t.Errorf("order events %v", got)
			}
		}
	})
}
