package orders

import (
	"net/http"
	"slices"
	"testing"

	"mercato/internal/platform/web/webtest"
)

// TestJourney: cart → items → checkout → a declined and a good payment →
// cancel, through the HTTP server, asserting statuses, bodies, stock and
// the events appended to the outbox; others get 404, staff may read.
func TestJourney(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		alice, bob := e.as("alice"), e.as("bob")
		cart := e.cartWith(alice, "TEE-M", 2, "MUG", 1)
		r := alice.Do("GET", "/api/v1/carts/"+cart, nil)
		r.WantStatus(t, http.StatusOK)
		if amount(r, "subtotal") != 3900 || amount(r, "shipping") != 500 || amount(r, "total") != 4400 || amount(r, "lines.1.unit_price") != 1500 {
			t.Fatalf("cart quote: %s", r.Body)
		}
		bob.Do("GET", "/api/v1/carts/"+cart, nil).WantStatus(t, http.StatusNotFound)
		bob.Do("POST", "/api/v1/carts/"+cart+"/items", map[string]any{"sku": "MUG", "quantity": 1}).WantStatus(t, http.StatusNotFound)
		webtest.AssertProblem(t, bob.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": goodAddress}), http.StatusNotFound, "not_found")

		r = alice.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": goodAddress}, "Idempotency-Key: co-1")
		r.WantStatus(t, http.StatusCreated)
		id := r.Field("id").(string)
		for path, want := range map[string]string{"status": "pending_payment", "payment_status": "unpaid",
			"fulfillment_status": "unfulfilled", "channel": "web", "customer_id": "u-alice", "lines.0.sku": "MUG",
			"lines.1.title": "Tee, M", "shipping_address.city": "Springfield", "total.currency": "USD"} {
			if got := fieldStr(r, path); got != want {
				t.Errorf("order %s = %q, want %q", path, got, want)
			}
		}
		if amount(r, "total") != 4400 || r.Field("number") == nil || r.Field("expires_at") == nil {
			t.Fatalf("order: %s", r.Body)
		}
		if e.stock("TEE-M") != 8 || e.stock("MUG") != 2 {
			t.Fatalf("stock after checkout: %d, %d", e.stock("TEE-M"), e.stock("MUG"))
		}
		if got := e.outboxTypes(id); !slices.Equal(got, []string{"order.placed"}) {
			t.Fatalf("events after checkout: %v", got)
		}
		if d := e.outboxData(id, "order.placed"); d["total"].(float64) != 4400 || d["customer_id"] != "u-alice" {
			t.Fatalf("order.placed: %v", d)
		}
		webtest.AssertProblem(t, alice.Do("POST", "/api/v1/carts/"+cart+"/items", map[string]any{"sku": "MUG", "quantity": 1}), http.StatusConflict, "cart_checked_out")

		webtest.AssertProblem(t, bob.Do("GET", "/api/v1/orders/"+id, nil), http.StatusNotFound, "not_found")
		webtest.AssertProblem(t, bob.Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"}), http.StatusNotFound, "not_found")
		webtest.AssertProblem(t, alice.Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_decline"}), http.StatusPaymentRequired, "payment_declined")
		if r := alice.Do("GET", "/api/v1/orders/"+id, nil); fieldStr(r, "status") != "pending_payment" || fieldStr(r, "payment_status") != "unpaid" {
			t.Fatalf("after a decline: %s", r.Body)
		}
		if got := e.outboxTypes(id); len(got) != 1 {
			t.Fatalf("a decline appended events: %v", got)
		}
		decline := map[string]any{"method": "sandbox", "token": "tok_decline"}
		first := alice.Do("POST", "/api/v1/orders/"+id+"/pay", decline, "Idempotency-Key: dec-1")
		replay := alice.Do("POST", "/api/v1/orders/"+id+"/pay", decline, "Idempotency-Key: dec-1")
		webtest.AssertProblem(t, replay, http.StatusPaymentRequired, "payment_declined")
		if replay.Header.Get("Idempotent-Replayed") != "true" || string(replay.Body) != string(first.Body) {
			t.Fatalf("a decline is not replayed for its key: %s", replay.Body)
		}

		pay := map[string]any{"method": "sandbox", "token": "tok_success"}
		r = alice.Do("POST", "/api/v1/orders/"+id+"/pay", pay, "Idempotency-Key: pay-1")
		r.WantStatus(t, http.StatusOK)
		if fieldStr(r, "status") != "paid" || fieldStr(r, "payment_status") != "paid" || r.Field("expires_at") != nil {
			t.Fatalf("paid: %s", r.Body)
		}
		again := alice.Do("POST", "/api/v1/orders/"+id+"/pay", pay, "Idempotency-Key: pay-1")
		if again.Status != http.StatusOK || string(again.Body) != string(r.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %d %s", again.Status, again.Body)
		}
		webtest.AssertProblem(t, alice.Do("POST", "/api/v1/orders/"+id+"/pay", pay, "Idempotency-Key: pay-2"), http.StatusConflict, "invalid_transition")

		r = alice.Do("POST", "/api/v1/orders/"+id+"/cancel", nil)
		r.WantStatus(t, http.StatusOK)
		if fieldStr(r, "status") != "cancelled" || fieldStr(r, "payment_status") != "paid" {
			t.Fatalf("cancelled: %s", r.Body)
		}
		if got := e.outboxTypes(id); !slices.Equal(got, []string{"order.placed", "order.paid", "order.cancelled"}) {
			t.Fatalf("events: %v", got)
		}
		if d := e.outboxData(id, "order.cancelled"); d["was_paid"] != true || d["refund_total"].(float64) != 4400 || d["by"] != "customer" {
			t.Fatalf("order.cancelled: %v", d)
		}
		webtest.AssertProblem(t, alice.Do("POST", "/api/v1/orders/"+id+"/cancel", nil), http.StatusConflict, "invalid_transition")

		r = alice.Do("GET", "/api/v1/orders/"+id+"/events", nil)
		r.WantStatus(t, http.StatusOK)
		if fieldStr(r, "items.0.type") != "order.placed" || fieldStr(r, "items.2.type") != "order.cancelled" || r.Field("items.3") != nil {
			t.Fatalf("timeline: %s", r.Body)
		}
		bob.Do("GET", "/api/v1/orders/"+id+"/events", nil).WantStatus(t, http.StatusNotFound)

		r = alice.Do("GET", "/api/v1/orders", nil)
		if fieldStr(r, "items.0.id") != id || r.Field("items.1") != nil {
			t.Fatalf("mine: %s", r.Body)
		}
		if r := bob.Do("GET", "/api/v1/orders", nil); r.Field("items.0") != nil {
			t.Fatalf("bob's list holds alice's order: %s", r.Body)
		}
		e.as("cs").Do("GET", "/api/v1/orders/"+id, nil).WantStatus(t, http.StatusOK)
		r = e.as("cs").Do("GET", "/api/v1/admin/orders?status=cancelled&customer=u-alice", nil)
		if fieldStr(r, "items.0.id") != id || fieldStr(r, "items.0.lines.1.sku") != "TEE-M" {
			t.Fatalf("admin list: %s", r.Body)
		}
		if r := e.as("cs").Do("GET", "/api/v1/admin/orders?status=paid", nil); r.Field("items.0") != nil {
			t.Fatalf("status filter: %s", r.Body)
		}
		webtest.AssertProblem(t, e.as("cs").Do("GET", "/api/v1/admin/orders?status=lost", nil), http.StatusUnprocessableEntity, "validation_failed")
		bob.Do("GET", "/api/v1/admin/orders", nil).WantStatus(t, http.StatusForbidden)
		webtest.AssertProblem(t, e.as("cs").Do("POST", "/api/v1/admin/orders/"+id+"/cancel", nil), http.StatusForbidden, "forbidden")
	})
}

// TestGuestCart: a guest's cart answers to its token only; the guest
// checks out and reads the order with it; a claimed cart is the
// customer's and its token stops working.
func TestGuestCart(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		r := e.c.Do("POST", "/api/v1/carts", nil)
		r.WantStatus(t, http.StatusCreated)
		id, tok := r.Field("id").(string), fieldStr(r, "token")
		if len(tok) < 20 || e.count("orders_carts", "token_hash = $1", tok) != 0 {
			t.Fatalf("token %q (stored in clear?)", tok)
		}
		guest := e.c.With(HeaderCartToken + ": " + tok)
		e.c.Do("POST", "/api/v1/carts/"+id+"/items", map[string]any{"sku": "MUG", "quantity": 1}).WantStatus(t, http.StatusNotFound)
		e.c.With(HeaderCartToken+": wrong").Do("GET", "/api/v1/carts/"+id, nil).WantStatus(t, http.StatusNotFound)
		guest.Do("POST", "/api/v1/carts/"+id+"/items", map[string]any{"sku": "MUG", "quantity": 2}).WantStatus(t, http.StatusOK)
		if r := guest.Do("DELETE", "/api/v1/carts/"+id+"/items/MUG", nil); r.Status != http.StatusOK || r.Field("lines.0") != nil {
			t.Fatalf("remove: %d %s", r.Status, r.Body)
		}
		guest.Do("POST", "/api/v1/carts/"+id+"/items", map[string]any{"sku": "MUG", "quantity": 2}).WantStatus(t, http.StatusOK)
		order := e.placed(guest, id)
		if r := guest.Do("GET", "/api/v1/orders/"+order, nil); r.Status != http.StatusOK || r.Field("customer_id") != nil {
			t.Fatalf("guest order: %d %s", r.Status, r.Body)
		}
		e.c.Do("GET", "/api/v1/orders/"+order, nil).WantStatus(t, http.StatusNotFound)
		e.as("alice").Do("GET", "/api/v1/orders/"+order, nil).WantStatus(t, http.StatusNotFound)
		guest.Do("POST", "/api/v1/orders/"+order+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"}).WantStatus(t, http.StatusOK)
		if got := e.outboxTypes(order); !slices.Equal(got, []string{"order.placed", "order.paid"}) {
			t.Fatalf("guest events: %v", got)
		}

		r = e.c.Do("POST", "/api/v1/carts", nil)
		id2, tok2 := r.Field("id").(string), fieldStr(r, "token")
		guest2 := e.c.With(HeaderCartToken + ": " + tok2)
		guest2.Do("POST", "/api/v1/carts/"+id2+"/items", map[string]any{"sku": "TEE-M", "quantity": 1}).WantStatus(t, http.StatusOK)
		e.as("bob").Do("POST", "/api/v1/carts/"+id2+"/claim", nil).WantStatus(t, http.StatusNotFound)
		r = e.as("alice").Do("POST", "/api/v1/carts/"+id2+"/claim", nil, HeaderCartToken+": "+tok2)
		if r.Status != http.StatusOK || fieldStr(r, "customer_id") != "u-alice" || fieldStr(r, "lines.0.sku") != "TEE-M" {
			t.Fatalf("claim: %d %s", r.Status, r.Body)
		}
		guest2.Do("GET", "/api/v1/carts/"+id2, nil).WantStatus(t, http.StatusNotFound)
		e.as("alice").Do("GET", "/api/v1/carts/"+id2, nil).WantStatus(t, http.StatusOK)
	})
}
