package orders

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/web/webtest"
	"mercato/internal/promotions"
)

// written is what a checkout may write: orders, events, stock, the
// promotions' redemptions, counters and customers' uses.
type written struct {
	orders, events, tee, mug, redemptions, counted, customerUses int
}

func (e *pricedEnv) written() written {
	e.t.Helper()
	var counted int
	if err := e.db.Reader().QueryRow(`SELECT coalesce(sum(uses), 0) FROM promotions_counters`).Scan(&counted); err != nil {
		e.t.Fatal(err)
	}
	return written{orders: e.count("orders_orders", ""), events: e.count("outbox", ""), tee: e.stock("TEE-M"), mug: e.stock("MUG"),
		redemptions: e.count("promotions_redemptions", ""), counted: counted, customerUses: e.count("promotions_customer_uses", "")}
}

// TestCheckoutCouponCodesBadInput: a checkout's coupon_codes that cannot
// apply, or are too many, too long or not a list of strings, are answered
// with the cart endpoint's status and code naming the field, and nothing is
// written: no order, no event, no stock taken, no redemption or use counted,
// the cart as it was. POST …/quote (the same body) answers the same.
func TestCheckoutCouponCodesBadInput(t *testing.T) {
	cases := []struct {
		name   string
		onCart string // a code entered on the cart first
		codes  any    // the body's coupon_codes
		status int
		code   string
		field  string
	}{
		{"unknown", "", []string{"NOPE"}, 422, "coupon_unknown", "coupon_codes.0"},
		{"expired", "", []string{"old"}, 422, "coupon_expired", "coupon_codes.0"},
		{"exhausted", "", []string{"ONCE"}, 422, "coupon_exhausted", "coupon_codes.0"},
		{"not applicable", "", []string{" big "}, 422, "coupon_not_applicable", "coupon_codes.0"},
		{"one good, one unknown", "", []string{"TEN", "NOPE"}, 422, "coupon_unknown", "coupon_codes.1"},
		{"good on the cart, unknown at checkout", "TEN", []string{"ten", "NOPE"}, 422, "coupon_unknown", "coupon_codes.1"},
		{"too many", "", []string{"A1", "A2", "A3", "A4", "A5", "A6"}, 422, "limit_exceeded", "coupon_codes"},
		{"too many with the cart's", "TEN", []string{"A1", "A2", "A3", "A4", "A5"}, 422, "limit_exceeded", "coupon_codes"},
		{"empty", "", []string{"TEN", "  "}, 422, "validation_failed", "coupon_codes.1"},
		{"too long", "", []string{strings.Repeat("X", 65)}, 422, "validation_failed", "coupon_codes.0"},
		{"too long in bytes", "", []string{strings.Repeat("é", 64)}, 422, "validation_failed", "coupon_codes.0"},
		{"a string, not a list", "", "TEN", 422, "validation_failed", "coupon_codes"},
		{"a number in the list", "", []any{10}, 422, "validation_failed", "coupon_codes.0"},
	}
	forEachPriced(t, func(t *testing.T, e *pricedEnv) {
		e.coupon("TEN", 1000, promotions.Limits{}, promotions.Window{})
		e.coupon("OLD", 1000, promotions.Limits{}, promotions.Window{EndsAt: e.clock.Now().Add(time.Hour)})
		e.coupon("ONCE", 1000, promotions.Limits{TotalUses: ptr(int64(1))}, promotions.Window{})
		big, err := e.promos.Create(context.Background(), staff, promotions.Rule{Name: "BIG", Kind: "percentage", PercentBP: 2000,
			Codes: []string{"BIG"}, Conditions: promotions.Conditions{MinSubtotal: ptr(money.MustNew(100000, "USD"))}})
		if err != nil || big.ID == "" {
			t.Fatal(err)
		}
		e.clock.Advance(2 * time.Hour)
		alice := e.as("alice")
		// ONCE's one use, given at checkout.
		first := alice.Do("POST", "/api/v1/carts/"+e.cartWith(alice, "MUG", 1)+"/checkout",
			map[string]any{"shipping_address": goodAddress, "coupon_codes": []string{"once"}})
		first.WantStatus(t, http.StatusCreated)
		if amount(first, "discount") != 90 {
			t.Fatalf("ONCE's first use: %s", first.Body)
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				cart := e.cartWith(alice, "TEE-M", 1)
				if tc.onCart != "" {
					alice.Do("POST", "/api/v1/carts/"+cart+"/coupons", map[string]any{"code": tc.onCart}).WantStatus(t, http.StatusOK)
				}
				before, was := alice.Do("GET", "/api/v1/carts/"+cart, nil), e.written()
				body := map[string]any{"shipping_address": goodAddress, "coupon_codes": tc.codes}
				for _, step := range []string{"quote", "checkout"} {
					r := alice.Do("POST", "/api/v1/carts/"+cart+"/"+step, body, "Idempotency-Key: bad-"+strconv.Itoa(i))
					p := webtest.AssertProblem(t, r, tc.status, tc.code)
					webtest.AssertFieldError(t, p, tc.field)
				}
				if now := e.written(); now != was {
					t.Errorf("something was written: %+v, before %+v", now, was)
				}
				if after := alice.Do("GET", "/api/v1/carts/"+cart, nil); string(after.Body) != string(before.Body) {
					t.Errorf("cart changed:\n%s\n%s", before.Body, after.Body)
				}
			})
		}
	})
}

// TestCheckoutCouponCodesScenario, through the HTTP server: a coupon on the
// cart and two at checkout (one of them the cart's again, in other case)
// apply once each; the order records them, carries both discounts and the
// free shipping, and emits order.placed with its total; each promotion is
// redeemed once. The same key and body replays the order; the same key
// with another body is idempotency_key_reused, and nothing more is written.
func TestCheckoutCouponCodesScenario(t *testing.T) {
	forEachPriced(t, func(t *testing.T, e *pricedEnv) {
		ten := e.coupon("TEN", 1000, promotions.Limits{}, promotions.Window{})
		ship, err := e.promos.Create(context.Background(), staff, promotions.Rule{Name: "SHIP", Kind: "free_shipping", Codes: []string{"SHIP"},
			Limits: promotions.Limits{PerCustomer: ptr(int64(1))}})
		if err != nil {
			t.Fatal(err)
		}
		alice := e.as("alice")
		cart := e.cartWith(alice, "TEE-M", 2, "MUG", 1) // 3900
		alice.Do("POST", "/api/v1/carts/"+cart+"/coupons", map[string]any{"code": "ten"}).WantStatus(t, http.StatusOK)
		body := map[string]any{"shipping_address": goodAddress, "coupon_codes": []string{" Ten ", "ship"}}

		q := alice.Do("POST", "/api/v1/carts/"+cart+"/quote", body)
		q.WantStatus(t, http.StatusOK)
		r := alice.Do("POST", "/api/v1/carts/"+cart+"/checkout", body, "Idempotency-Key: co-1")
		r.WantStatus(t, http.StatusCreated)
		id := fieldStr(r, "id")
		// 3900 − 390 = 3510 < 5000: the flat 500, waived by SHIP.
		for path, want := range map[string]int64{"subtotal": 3900, "discount": 390, "shipping": 0, "tax": 0, "total": 3510} {
			if got, quoted := amount(r, path), amount(q, path); got != want || quoted != want {
				t.Errorf("%s = %d (quoted %d), want %d", path, got, quoted, want)
			}
		}
		if got := fieldStr(r, "priced_with.coupons"); got != "[TEN SHIP]" {
			t.Errorf("priced with coupons %s, want [TEN SHIP]", got)
		}
		if got := fieldStr(r, "priced_with.shipping_discount"); got != "500" {
			t.Errorf("shipping discount %s, want 500", got)
		}
		applied := map[string]string{}
		for _, it := range r.Field("priced_with.promotions").([]any) {
			m := it.(map[string]any)
			applied[m["id"].(string)] = m["code"].(string)
		}
		if len(applied) != 2 || applied[ten.ID] != "TEN" || applied[ship.ID] != "SHIP" {
			t.Errorf("promotions applied %v, want TEN %s and SHIP %s", applied, ten.ID, ship.ID)
		}
		if got := e.outboxTypes(id); len(got) != 1 || got[0] != "order.placed" {
			t.Errorf("events %v, want [order.placed]", got)
		}
		if d := e.outboxData(id, "order.placed"); d["total"] != float64(3510) || d["customer_id"] != "u-alice" {
			t.Errorf("order.placed %v", d)
		}
		for _, p := range []promotions.Promotion{ten, ship} {
			if n := e.count("promotions_redemptions", "order_ref = $1 AND promotion_id = $2 AND customer_id = 'u-alice'", id, p.ID); n != 1 {
				t.Errorf("%s: %d redemptions, want 1", p.ID, n)
			}
		}
		if n := e.count("promotions_customer_uses", "promotion_id = $1 AND customer_id = 'u-alice' AND uses = 1", ship.ID); n != 1 {
			t.Errorf("SHIP's use by alice not counted once")
		}
		got := alice.Do("GET", "/api/v1/orders/"+id, nil)
		got.WantStatus(t, http.StatusOK)
		if amount(got, "discount") != 390 || amount(got, "total") != 3510 || fieldStr(got, "priced_with.coupons") != "[TEN SHIP]" {
			t.Errorf("the stored order lost its coupons: %s", got.Body)
		}

		was := e.written()
		again := alice.Do("POST", "/api/v1/carts/"+cart+"/checkout", body, "Idempotency-Key: co-1")
		again.WantStatus(t, http.StatusCreated)
		if fieldStr(again, "id") != id || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay: %s %v", again.Body, again.Header)
		}
		other := alice.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": goodAddress}, "Idempotency-Key: co-1")
		webtest.AssertProblem(t, other, http.StatusUnprocessableEntity, string(errs.CodeIdemReused))
		if now := e.written(); now != was {
			t.Errorf("the replays wrote: %+v, before %+v", now, was)
		}

		// SHIP is once per customer: alice's next checkout giving it is refused whole.
		next := e.cartWith(alice, "MUG", 1)
		webtest.AssertProblem(t, alice.Do("POST", "/api/v1/carts/"+next+"/checkout",
			map[string]any{"shipping_address": goodAddress, "coupon_codes": []string{"SHIP"}}), 422, "coupon_exhausted")
		if now := e.written(); now != was {
			t.Errorf("the refused checkout wrote: %+v, before %+v", now, was)
		}
	})
}

// TestCheckoutCouponLimitUnderConcurrency: the coupon limited to 10 uses
// given in the coupon_codes of 100 concurrent checkouts (none entered on a
// cart) is redeemed exactly 10 times, on both engines.
func TestCheckoutCouponLimitUnderConcurrency(t *testing.T) {
	forEachPriced(t, func(t *testing.T, e *pricedEnv) { e.raceLimitedCoupon(t, true) })
}
