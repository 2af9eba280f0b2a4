package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"mercato/internal/logistics/carrier"
	"mercato/internal/platform/web/webtest"
)

// TestLogisticsJourney walks an order through logistics on the real
// server, both engines: paid (the logistics_orders consumer opens its
// fulfilment), shipped, delivered by a signed sandbox webhook (a bad
// signature changes nothing), tracked by its customer, returned within
// the window, approved and received by staff — the unit is back in stock.
// The sandbox's own clock is slowed to an hour a stage so that only the
// webhook moves the parcel.
func TestLogisticsJourney(t *testing.T) {
	const secret = "journey sandbox secret"
	for name, args := range engines(t) {
		t.Run(name, func(t *testing.T) {
			c, admin := startShop(t, map[string]string{"MERCATO_SANDBOX_CARRIER_SECRET": secret},
				append(args(t), "--sandbox-carrier-step", "1h")...)
			stockProduct(t, admin, "Canvas tote", "TOTE-1", 2500, 5)
			cy, _ := registerCustomer(t, c, "cy@example.com", "Cy")

			id := checkout(t, cy, "TOTE-1", 2).Field("id").(string)
			cy.Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"}).WantStatus(t, http.StatusOK)
			eventually(t, "fulfilment opened on order.paid", func() *webtest.Response {
				return admin.Do("GET", "/api/v1/admin/orders/"+id+"/fulfilment", nil)
			}, func(r *webtest.Response) bool {
				return r.Status == http.StatusOK && r.Field("pick_lists.0.location") == "default"
			})
			eventually(t, "stock committed on order.paid", func() *webtest.Response {
				return admin.Do("GET", "/api/v1/admin/inventory/TOTE-1", nil)
			}, func(r *webtest.Response) bool { return r.Field("on_hand") == float64(3) })

			sh := admin.Do("POST", "/api/v1/admin/orders/"+id+"/shipments", map[string]any{"carrier": "sandbox"}, "Idempotency-Key: ship-"+id)
			sh.WantStatus(t, http.StatusCreated)
			tn := sh.Field("tracking_number").(string)
			if o := cy.Do("GET", "/api/v1/orders/"+id, nil); o.Field("status") != "shipped" {
				t.Fatalf("order after shipping: %s", o.Body)
			}

			body, _ := json.Marshal(map[string]any{"id": "journey-evt-1", "tracking_number": tn, "status": "delivered",
				"occurred_at": time.Now().Add(time.Minute).UTC().Format(time.RFC3339), "location": "Front door"})
			webtest.AssertProblem(t, c.Do("POST", "/api/v1/logistics/webhooks/sandbox", body, "X-Carrier-Signature: "+carrier.Sign([]byte("wrong"), body)),
				http.StatusBadRequest, "invalid_signature")
			if o := cy.Do("GET", "/api/v1/orders/"+id, nil); o.Field("status") != "shipped" {
				t.Fatalf("a badly signed webhook moved the order: %s", o.Body)
			}
			c.Do("POST", "/api/v1/logistics/webhooks/sandbox", body, "X-Carrier-Signature: "+carrier.Sign([]byte(secret), body)).WantStatus(t, http.StatusOK)
			tr := cy.Do("GET", "/api/v1/orders/"+id+"/tracking", nil)
			tr.WantStatus(t, http.StatusOK)
			if tr.Field("items.0.status") != "delivered" || tr.Field("items.0.events.0.status") != "label_created" ||
				tr.Field("items.0.events.1.location") != "Front door" {
				t.Fatalf("tracking: %s", tr.Body)
			}
			if o := cy.Do("GET", "/api/v1/orders/"+id, nil); o.Field("status") != "delivered" {
				t.Fatalf("order after delivery: %s", o.Body)
			}

			ret := cy.Do("POST", "/api/v1/orders/"+id+"/returns", map[string]any{"reason": "Wrong colour", "lines": []map[string]any{{"sku": "TOTE-1", "quantity": 1}}})
			ret.WantStatus(t, http.StatusCreated)
			rid := ret.Field("id").(string)
			admin.Do("POST", "/api/v1/admin/returns/"+rid+"/approve", nil).WantStatus(t, http.StatusOK)
			rec := admin.Do("POST", "/api/v1/admin/returns/"+rid+"/receive", map[string]any{})
			rec.WantStatus(t, http.StatusOK)
			if rec.Field("refund.amount") != float64(2500) || rec.Field("lines.0.disposition") != "restock" {
				t.Fatalf("receive: %s", rec.Body)
			}
			if r := admin.Do("GET", "/api/v1/admin/inventory/TOTE-1", nil); r.Field("on_hand") != float64(4) {
				t.Fatalf("restock not visible: %s", r.Body)
			}
			o := cy.Do("GET", "/api/v1/orders/"+id, nil)
			if o.Field("status") != "returned" {
				t.Fatalf("order after the return: %s", o.Body)
			}
			evs := cy.Do("GET", "/api/v1/orders/"+id+"/events", nil)
			want := []string{"order.placed", "order.paid", "order.shipped", "order.delivered", "order.return_requested", "order.returned"}
			for i, w := range want {
				if got := evs.Field("items." + strconv.Itoa(i) + ".type"); got != w {
					t.Fatalf("order timeline %d: %v, want %s: %s", i, got, w, evs.Body)
				}
			}
		})
	}
}
