package orders

import (
	"net/http"
	"testing"
	"time"

	"mercato/internal/platform/web/webtest"
)

// TestStaffAndPages: staff cancel any order (the event says by staff);
// once shipped an order cannot be cancelled; lists page newest first.
func TestStaffAndPages(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		var ids []string
		for range 3 {
			ids = append(ids, e.placeGo(1).ID)
			e.clock.Advance(time.Millisecond)
		}
		alice := e.as("alice")
		r := alice.Do("GET", "/api/v1/orders?limit=2", nil)
		cur, _ := r.Field("next_cursor").(string)
		if fieldStr(r, "items.0.id") != ids[2] || fieldStr(r, "items.1.id") != ids[1] || cur == "" {
			t.Fatalf("page 1: %s", r.Body)
		}
		r = alice.Do("GET", "/api/v1/orders?limit=2&cursor="+cur, nil)
		if fieldStr(r, "items.0.id") != ids[0] || r.Field("items.1") != nil || r.Field("next_cursor") != nil {
			t.Fatalf("page 2: %s", r.Body)
		}
		webtest.AssertProblem(t, alice.Do("GET", "/api/v1/orders?cursor=bogus", nil), http.StatusUnprocessableEntity, "validation_failed")

		webtest.AssertProblem(t, e.as("bob").Do("POST", "/api/v1/orders/"+ids[0]+"/cancel", nil), http.StatusNotFound, "not_found")
		r = e.as("op").Do("POST", "/api/v1/admin/orders/"+ids[0]+"/cancel", nil)
		if r.Status != http.StatusOK || fieldStr(r, "status") != "cancelled" {
			t.Fatalf("staff cancel: %d %s", r.Status, r.Body)
		}
		if d := e.outboxData(ids[0], "order.cancelled"); d["by"] != "staff" || d["was_paid"] != false {
			t.Fatalf("order.cancelled: %v", d)
		}
		if _, err := e.db.Writer().Exec(`UPDATE orders_orders SET status = 'shipped', fulfillment_status = 'shipped' WHERE id = $1`, ids[1]); err != nil {
			t.Fatal(err)
		}
		webtest.AssertProblem(t, alice.Do("POST", "/api/v1/orders/"+ids[1]+"/cancel", nil), http.StatusConflict, "invalid_transition")
		webtest.AssertProblem(t, e.as("op").Do("POST", "/api/v1/admin/orders/"+ids[1]+"/cancel", nil), http.StatusConflict, "invalid_transition")
		e.as("op").Do("GET", "/api/v1/admin/orders/"+ids[1], nil).WantStatus(t, http.StatusOK)
		webtest.AssertProblem(t, e.as("op").Do("GET", "/api/v1/admin/orders/nope", nil), http.StatusNotFound, "not_found")
	})
}
