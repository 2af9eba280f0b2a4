package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"mercato/internal/logistics"
	"mercato/internal/platform/web/webtest"
)

// TestInboundJourney: on the real server, both engines, a warehouse staff
// registered ships a paid order and receives stock by signed updates (a
// redelivery changes nothing), and staff replay the fulfilment opener
// since an hour ago: the replay job of the process runs it to the end
// without a second fulfilment, and a consumer that moves stock refuses.
func TestInboundJourney(t *testing.T) {
	for name, args := range engines(t) {
		t.Run(name, func(t *testing.T) {
			c, admin := startShop(t, nil, args(t)...)
			stockProduct(t, admin, "Enamel mug", "MUG-1", 1200, 5)
			di, _ := registerCustomer(t, c, "di@example.com", "Di")
			id := checkout(t, di, "MUG-1", 2).Field("id").(string)
			di.Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"}).WantStatus(t, http.StatusOK)
			eventually(t, "fulfilment opened on order.paid", func() *webtest.Response {
				return admin.Do("GET", "/api/v1/admin/orders/"+id+"/fulfilment", nil)
			}, func(r *webtest.Response) bool { return r.Status == http.StatusOK })

			w := admin.Do("POST", "/api/v1/admin/warehouses", map[string]any{"code": "east", "name": "East DC", "location": "default"})
			w.WantStatus(t, http.StatusCreated)
			secret := w.Field("secret").(string)
			post := func(id string, body any) *webtest.Response {
				t.Helper()
				b, _ := json.Marshal(body)
				ts := time.Now().Unix()
				sig, err := logistics.SignWarehouseUpdate(secret, id, ts, b)
				if err != nil {
					t.Fatal(err)
				}
				return c.Do("POST", "/api/v1/logistics/warehouses/east/updates", b, "webhook-id: "+id,
					"webhook-timestamp: "+strconv.FormatInt(ts, 10), "webhook-signature: "+sig)
			}
			ship := map[string]any{"type": "shipped", "order_id": id, "carrier": "dhl", "tracking_number": "JD777"}
			first := post("upd-1", ship)
			first.WantStatus(t, http.StatusOK)
			if again := post("upd-1", ship); again.Status != http.StatusOK || string(again.Body) != string(first.Body) {
				t.Fatalf("redelivery: %d %s", again.Status, again.Body)
			}
			if o := di.Do("GET", "/api/v1/orders/"+id, nil); o.Field("status") != "shipped" {
				t.Fatalf("order after the warehouse shipped it: %s", o.Body)
			}
			if tr := di.Do("GET", "/api/v1/orders/"+id+"/tracking", nil); tr.Field("items.0.tracking_number") != "JD777" || tr.Field("items.1") != nil {
				t.Fatalf("tracking: %s", tr.Body)
			}
			post("upd-2", map[string]any{"type": "stock_received", "lines": []map[string]any{{"sku": "MUG-1", "quantity": 10}}}).WantStatus(t, http.StatusOK)
			if r := admin.Do("GET", "/api/v1/admin/inventory/MUG-1", nil); r.Field("on_hand") != float64(13) {
				t.Fatalf("stock after the receipt (5 - 2 sold + 10): %s", r.Body)
			}

			since := map[string]any{"since": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}
			webtest.AssertProblem(t, admin.Do("POST", "/api/v1/admin/sync/consumers/inventory_orders/replay", since),
				http.StatusConflict, "consumer_not_replayable")
			rep := admin.Do("POST", "/api/v1/admin/sync/consumers/logistics_orders/replay", since, "Idempotency-Key: replay-1")
			rep.WantStatus(t, http.StatusAccepted)
			if rep.Field("queued") != float64(1) { // the one order.paid
				t.Fatalf("replay: %s", rep.Body)
			}
			eventually(t, "the replay job finished", func() *webtest.Response {
				return admin.Do("GET", "/api/v1/admin/sync/replays/"+rep.Field("id").(string), nil)
			}, func(r *webtest.Response) bool { return r.Field("status") == "done" })
			if f := admin.Do("GET", "/api/v1/admin/orders/"+id+"/fulfilment", nil); f.Field("status") != "shipped" {
				t.Fatalf("fulfilment after the replay: %s", f.Body)
			}
			if a := admin.Do("GET", "/api/v1/admin/audit?action=consumer.replay_requested", nil); a.Field("items.0.target_id") != "logistics_orders" {
				t.Fatalf("audit: %s", a.Body)
			}
		})
	}
}
