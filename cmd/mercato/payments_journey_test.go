package main

import (
	"net/http"
	"testing"

	"mercato/internal/platform/web/webtest"
)

// TestPaymentsJourney walks payments through the real server on both
// engines: a 3-D Secure payment confirmed, refunded in part and then in
// full (the paid, unshipped order is cancelled);
// a payment whose answer was lost, retried with its key (one capture); a
// paid order cancelled by its customer, whose refund the payments
// consumer reserves from order.cancelled.
func TestPaymentsJourney(t *testing.T) {
	for name, args := range engines(t) {
		t.Run(name, func(t *testing.T) {
			c, admin := startShop(t, nil, args(t)...)
			stockProduct(t, admin, "Desk lamp", "LAMP-1", 6000, 10)
			cat, _ := registerCustomer(t, c, "cat@example.com", "Cat")

			// 3-D Secure, then confirm.
			a := checkout(t, cat, "LAMP-1", 1).Field("id").(string)
			webtest.AssertProblem(t, cat.Do("POST", "/api/v1/orders/"+a+"/pay", map[string]any{"method": "sandbox", "token": "tok_3ds"}),
				http.StatusPaymentRequired, "payment_requires_action")
			conf := cat.Do("POST", "/api/v1/orders/"+a+"/pay/confirm", map[string]any{})
			conf.WantStatus(t, http.StatusOK)
			if conf.Field("status") != "paid" {
				t.Fatalf("confirm: %s", conf.Body)
			}
			pay := admin.Do("GET", "/api/v1/admin/orders/"+a+"/payment", nil)
			pay.WantStatus(t, http.StatusOK)
			if pay.Field("status") != "captured" || pay.Field("captured.amount") != float64(6000) {
				t.Fatalf("payment: %s", pay.Body)
			}

			// Refunds: part, above what is left (422), the rest (cancels).
			money := func(n int) map[string]any {
				return map[string]any{"amount": map[string]any{"amount": n, "currency": "USD"}, "reason": "scratched"}
			}
			admin.Do("POST", "/api/v1/admin/orders/"+a+"/refunds", money(1000)).WantStatus(t, http.StatusCreated)
			webtest.AssertProblem(t, admin.Do("POST", "/api/v1/admin/orders/"+a+"/refunds", money(5001)), http.StatusUnprocessableEntity, "validation_failed")
			webtest.AssertProblem(t, cat.Do("POST", "/api/v1/admin/orders/"+a+"/refunds", money(1)), http.StatusForbidden, "forbidden")
			admin.Do("POST", "/api/v1/admin/orders/"+a+"/refunds", money(5000)).WantStatus(t, http.StatusCreated)
			o := cat.Do("GET", "/api/v1/orders/"+a, nil)
			if o.Field("status") != "cancelled" || o.Field("payment_status") != "refunded" {
				t.Fatalf("after the full refund: %s", o.Body)
			}
			tl := cat.Do("GET", "/api/v1/orders/"+a+"/events", nil)
			if tl.Field("items.1.type") != "order.paid" || tl.Field("items.2.type") != "order.cancelled" || tl.Field("items.2.data.by") != "staff" {
				t.Errorf("timeline: %s", tl.Body)
			}

			// The ambiguous timeout: 503, then the retry with the key pays.
			b := checkout(t, cat, "LAMP-1", 1).Field("id").(string)
			body := map[string]any{"method": "sandbox", "token": "tok_timeout"}
			webtest.AssertProblem(t, cat.Do("POST", "/api/v1/orders/"+b+"/pay", body, "Idempotency-Key: pay-b"),
				http.StatusServiceUnavailable, "payment_outcome_unknown")
			cat.Do("POST", "/api/v1/orders/"+b+"/pay", body, "Idempotency-Key: pay-b").WantStatus(t, http.StatusOK)
			if p := admin.Do("GET", "/api/v1/admin/orders/"+b+"/payment", nil); p.Field("status") != "captured" || len(p.Field("attempts").([]any)) != 1 {
				t.Errorf("payment after the retry: %s", p.Body)
			}

			// The customer cancels a paid order: a full refund is reserved.
			cat.Do("POST", "/api/v1/orders/"+b+"/cancel", nil).WantStatus(t, http.StatusOK)
			eventually(t, "refund reserved on order.cancelled", func() *webtest.Response {
				return admin.Do("GET", "/api/v1/admin/orders/"+b+"/payment", nil)
			}, func(r *webtest.Response) bool {
				return r.Field("refunded.amount") == float64(6000) && r.Field("refunds.0.status") == "pending"
			})
			admin.Do("GET", "/api/v1/admin/sync/issues", nil).WantStatus(t, http.StatusOK)
		})
	}
}
