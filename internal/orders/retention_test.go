package orders

import (
	"context"
	"net/http"
	"testing"
	"time"

	"mercato/internal/money"
	"mercato/internal/platform/sqldb"
	"mercato/internal/promotions"
)

// TestRetention: a closed order's address and identity are anonymised once
// it is older than RetainFor, audited; open orders and younger ones stay.
func TestRetention(t *testing.T) {
	forEachPriced(t, func(t *testing.T, e *pricedEnv) {
		ctx := context.Background()
		alice := e.as("alice")
		id := map[string]any{"type": "passport", "number": "E12345678", "name": "Alice A"}
		placed := func() string {
			cart := e.cartWith(alice, "MUG", 1)
			r := alice.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": goodAddress, "identity": id})
			r.WantStatus(t, http.StatusCreated)
			if fieldStr(r, "identity.masked") != "*****5678" {
				t.Fatalf("masked: %s", r.Body)
			}
			return fieldStr(r, "id")
		}
		closed, open := placed(), placed()
		alice.Do("POST", "/api/v1/orders/"+closed+"/cancel", nil).WantStatus(t, http.StatusOK)
		e.clock.Advance(e.svc.cfg.RetainFor - time.Hour)
		if n, err := e.svc.AnonymiseDue(ctx); err != nil || n != 0 {
			t.Fatalf("before the period: %d, %v", n, err)
		}
		e.clock.Advance(2 * time.Hour)
		if n, err := e.svc.AnonymiseDue(ctx); err != nil || n != 1 {
			t.Fatalf("after the period: %d, %v", n, err)
		}
		if n, err := e.svc.AnonymiseDue(ctx); err != nil || n != 0 {
			t.Fatalf("a second run: %d, %v", n, err)
		}
		r := alice.Do("GET", "/api/v1/orders/"+closed, nil)
		if fieldStr(r, "shipping_address.line1") != "" || fieldStr(r, "shipping_address.name") != erasedName ||
			fieldStr(r, "shipping_address.country") != "US" || r.Field("identity") != nil || amount(r, "total") != 1400 {
			t.Errorf("closed order after retention: %s", r.Body)
		}
		if r := alice.Do("GET", "/api/v1/orders/"+open, nil); fieldStr(r, "shipping_address.line1") != "1 Main St" || r.Field("identity") == nil {
			t.Errorf("an open order was anonymised: %s", r.Body)
		}
		if n := e.count("audit_log", "action = 'order.anonymised' AND target_id = $1", closed); n != 1 {
			t.Errorf("%d audit entries", n)
		}
		// Erasure drops the identity of every order of the customer.
		if err := e.svc.write.Do(ctx, func(tx *sqldb.Tx) error { return e.svc.eraseAll(ctx, tx, "u-alice") }); err != nil {
			t.Fatal(err)
		}
		if n := e.count("orders_orders", "identity IS NOT NULL OR identity_hash IS NOT NULL"); n != 0 {
			t.Errorf("%d identities left after erasure", n)
		}
	})
}

// TestDiscountBudgetUnderConcurrency: an automatic 10% promotion with a
// budget of 1000 under 100 concurrent checkouts of 900: the discounts given
// never sum above the budget; a checkout priced with budget another took is
// refused whole (coupon_exhausted), nothing reserved.
func TestDiscountBudgetUnderConcurrency(t *testing.T) {
	forEachPriced(t, func(t *testing.T, e *pricedEnv) {
		ctx := context.Background()
		budget := money.MustNew(1000, "USD")
		if _, err := e.promos.Create(ctx, staff, promotions.Rule{Name: "budget", Kind: "percentage", PercentBP: 1000,
			Limits: promotions.Limits{Budget: &budget}}); err != nil {
			t.Fatal(err)
		}
		e.setStock("MUG", 1000)
		ok := e.raceCheckouts(t, 100, "MUG", customerN, nil, CheckoutRequest{ShippingAddress: &usAddress}, "coupon_exhausted")
		var given int64
		e.db.Reader().QueryRow(`SELECT COALESCE(SUM(discount), 0) FROM orders_orders`).Scan(&given)
		if given > 1000 || given < 990 {
			t.Errorf("discounts given %d, want within (990, 1000]", given)
		}
		if got := e.stock("MUG"); got != 1000-ok || e.count("orders_orders", "") != ok {
			t.Errorf("stock %d, %d orders; %d placed", got, e.count("orders_orders", ""), ok)
		}
	})
}
