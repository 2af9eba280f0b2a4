package promotions

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/pricing"
)

// parallel runs fn(0..n-1) at once (released together) and counts the
// outcomes by error code ("" for success).
func parallel(t *testing.T, n int, fn func(i int) error) map[string]int {
	t.Helper()
	start := make(chan struct{})
	out := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := fn(i)
			switch {
			case err == nil:
				out <- ""
			case errs.KindOf(err) == errs.Conflict:
				out <- string(errs.CodeOf(err))
			default:
				out <- "error: " + err.Error()
			}
		}()
	}
	close(start)
	wg.Wait()
	close(out)
	got := map[string]int{}
	for s := range out {
		got[s]++
	}
	return got
}

func wantOutcomes(t *testing.T, got map[string]int, want map[string]int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("outcomes %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("outcomes %v, want %v", got, want)
		}
	}
}

func coupon(code string, limits Limits) Rule {
	return Rule{Name: "coupon " + code, Kind: pricing.Percentage, PercentBP: 1000, Codes: []string{code}, Limits: limits}
}

// The limits hold under concurrency through the group-commit batcher, on
// both engines: each conditional write decides alone, so exactly the
// allowed redemptions succeed and the others are coupon_exhausted.
func TestLimitsUnderConcurrency(t *testing.T) {
	cases := []struct {
		name     string
		limits   Limits
		n        int
		customer func(i int) string
		amount   int64
		ok       int
	}{
		{"a coupon of 10 uses, 100 orders", Limits{TotalUses: ptr[int64](10)}, 100,
			func(i int) string { return fmt.Sprintf("c-%03d", i) }, 100, 10},
		{"a budget of 1000, 30 orders of 150", Limits{Budget: ptr(eur(1000))}, 30,
			func(i int) string { return fmt.Sprintf("c-%03d", i) }, 150, 6},
		{"once per customer, one customer, 20 orders", Limits{PerCustomer: ptr[int64](1)}, 20,
			func(int) string { return "ann" }, 100, 1},
		{"twice per customer and 7 in all, 3 customers, 30 orders", Limits{TotalUses: ptr[int64](7), PerCustomer: ptr[int64](2)}, 30,
			func(i int) string { return fmt.Sprintf("c-%d", i%3) }, 100, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, e *env) {
				p := e.create(coupon("RACE", tc.limits))
				got := parallel(t, tc.n, func(i int) error {
					return e.svc.Redeem(context.Background(), fmt.Sprintf("o-%03d", i), tc.customer(i),
						[]pricing.AppliedPromotion{applied(p, tc.amount)})
				})
				wantOutcomes(t, got, map[string]int{"": tc.ok, pricing.CouponExhausted: tc.n - tc.ok})
				uses, spent := e.counter(p.ID)
				if uses != int64(tc.ok) || spent != int64(tc.ok)*tc.amount {
					t.Errorf("counter (%d, %d), want (%d, %d)", uses, spent, tc.ok, int64(tc.ok)*tc.amount)
				}
				if n := e.count("promotions_redemptions", "promotion_id = $1", p.ID); n != tc.ok {
					t.Errorf("%d redemptions, want %d", n, tc.ok)
				}
				var sum int64
				if err := e.db.Reader().QueryRow(`SELECT COALESCE(SUM(uses), 0) FROM promotions_customer_uses
					WHERE promotion_id = $1`, p.ID).Scan(&sum); err != nil {
					t.Fatal(err)
				}
				if sum != int64(tc.ok) {
					t.Errorf("customers' uses sum to %d, want %d", sum, tc.ok)
				}
				// What is left, as the checkout reads it.
				ps := e.active([]string{"race"}, "someone-new")
				if len(ps) != 1 {
					t.Fatalf("Active = %+v", ps)
				}
				if l := tc.limits.TotalUses; l != nil && *ps[0].UsesLeft != *l-int64(tc.ok) {
					t.Errorf("uses left %d, want %d", *ps[0].UsesLeft, *l-int64(tc.ok))
				}
				if b := tc.limits.Budget; b != nil && ps[0].BudgetLeft.Amount() != b.Amount()-spent {
					t.Errorf("budget left %v, want %d", ps[0].BudgetLeft, b.Amount()-spent)
				}
			})
		})
	}
}

// A redemption released (order cancelled or expired) gives its use back
// once: the next order may redeem, a second release changes nothing, and a
// failed checkout leaves nothing behind.
func TestReleaseThenRedeem(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := e.create(coupon("ONCE", Limits{TotalUses: ptr[int64](1), PerCustomer: ptr[int64](1), Budget: ptr(eur(500))}))
		other := e.create(coupon("OTHER", Limits{}))
		redeem := func(order, customer string, a ...pricing.AppliedPromotion) error {
			return e.svc.Redeem(ctx, order, customer, a)
		}
		if err := redeem("o-1", "ann", applied(p, 300)); err != nil {
			t.Fatal(err)
		}
		if err := redeem("o-2", "bob", applied(other, 10), applied(p, 100)); errs.CodeOf(err) != pricing.CouponExhausted {
			t.Fatalf("second use: %v, want coupon_exhausted", err)
		}
		// The failed unit left nothing, of the other promotion either.
		if uses, _ := e.counter(other.ID); uses != 0 || e.count("promotions_redemptions", "order_ref = 'o-2'") != 0 {
			t.Errorf("the failed redemption left uses %d", uses)
		}
		// The order is cancelled: the consumer releases it, twice delivered.
		cancelled := event.Envelope{ID: "ev-1", Type: EventOrderCancelled, AggregateType: "order", AggregateID: "o-1", OccurredAt: t0}
		for range 2 {
			if err := e.db.Do(ctx, func(tx *sqldb.Tx) error { return e.svc.HandleOrderEvent(ctx, tx, cancelled) }); err != nil {
				t.Fatal(err)
			}
			if uses, spent := e.counter(p.ID); uses != 0 || spent != 0 {
				t.Fatalf("after release: counter (%d, %d), want (0, 0)", uses, spent)
			}
		}
		if n := e.count("promotions_customer_uses", "customer_id = 'ann' AND uses = 0"); n != 1 {
			t.Errorf("ann's counter not given back")
		}
		// Ann may use it again, on another order; then it is exhausted again.
		if err := redeem("o-3", "ann", applied(p, 500)); err != nil {
			t.Fatalf("redeem after release: %v", err)
		}
		if err := redeem("o-4", "bob", applied(p, 1)); errs.CodeOf(err) != pricing.CouponExhausted {
			t.Fatalf("after re-redeem: %v, want coupon_exhausted", err)
		}
		// An expired order is released too; an unknown order is a no-op.
		expired := cancelled
		expired.Type, expired.AggregateID = EventOrderExpired, "o-3"
		if err := e.db.Do(ctx, func(tx *sqldb.Tx) error { return e.svc.HandleOrderEvent(ctx, tx, expired) }); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Release(ctx, "o-none"); err != nil {
			t.Fatal(err)
		}
		if uses, spent := e.counter(p.ID); uses != 0 || spent != 0 {
			t.Errorf("after expiry: counter (%d, %d)", uses, spent)
		}
		if n := e.count("promotions_redemptions", "promotion_id = $1 AND released_at IS NOT NULL", p.ID); n != 2 {
			t.Errorf("%d released redemptions, want 2", n)
		}
	})
}

// RedeemTx's refusals: a changed or deactivated promotion, a guest on a
// per-customer promotion, a second redemption by one order, bad input.
func TestRedeemRefusals(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := e.create(coupon("SPRING", Limits{PerCustomer: ptr[int64](3)}))
		free := e.create(Rule{Name: "free for all", Kind: pricing.FreeShipping})
		stale := applied(p, 10)
		if _, err := e.svc.Update(ctx, Actor{ID: "s-1"}, p.ID, Patch{PercentBP: ptr[int64](1500)}); err != nil {
			t.Fatal(err)
		}
		fresh := stale
		fresh.Version = 2
		cases := []struct {
			name, order, customer string
			applied               []pricing.AppliedPromotion
			kind                  errs.Kind
			code                  errs.Code
		}{
			{"an old version", "o-1", "ann", []pricing.AppliedPromotion{stale}, errs.Conflict, CodePromotionChanged},
			{"an unknown promotion", "o-1", "ann", []pricing.AppliedPromotion{{ID: "nope", Version: 1}}, errs.Conflict, CodePromotionChanged},
			{"a guest, limited per customer", "o-1", "", []pricing.AppliedPromotion{fresh}, errs.Conflict, pricing.CouponExhausted},
			{"twice in one order", "o-1", "ann", []pricing.AppliedPromotion{fresh, fresh}, errs.Invalid, errs.CodeValidation},
			{"a negative discount", "o-1", "ann", []pricing.AppliedPromotion{{ID: p.ID, Version: 2, Amount: eur(-1)}}, errs.Invalid, errs.CodeValidation},
			{"no order", "", "ann", []pricing.AppliedPromotion{fresh}, errs.Invalid, errs.CodeValidation},
		}
		for _, tc := range cases {
			err := e.svc.Redeem(ctx, tc.order, tc.customer, tc.applied)
			if errs.KindOf(err) != tc.kind || errs.CodeOf(err) != tc.code {
				t.Errorf("%s: %v, want %v %s", tc.name, err, tc.kind, tc.code)
			}
		}
		if err := e.svc.Redeem(ctx, "o-1", "", []pricing.AppliedPromotion{{ID: free.ID, Version: 1, Shipping: eur(490)}}); err != nil {
			t.Fatalf("a guest's free shipping: %v", err)
		}
		if err := e.svc.Redeem(ctx, "o-1", "", []pricing.AppliedPromotion{{ID: free.ID, Version: 1, Shipping: eur(490)}}); errs.CodeOf(err) != "already_redeemed" {
			t.Errorf("the same order again: %v, want already_redeemed", err)
		}
		if _, err := e.svc.Deactivate(ctx, Actor{ID: "s-1"}, free.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Redeem(ctx, "o-2", "", []pricing.AppliedPromotion{{ID: free.ID, Version: 1}}); errs.CodeOf(err) != CodePromotionChanged {
			t.Errorf("a deactivated promotion: %v, want promotion_changed", err)
		}
		if uses, spent := e.counter(free.ID); uses != 1 || spent != 490 {
			t.Errorf("free shipping counter (%d, %d), want (1, 490)", uses, spent)
		}
		if uses, _ := e.counter(p.ID); uses != 0 {
			t.Errorf("refused redemptions counted %d uses", uses)
		}
	})
}

// ActiveTx: automatic promotions in their window, the entered codes'
// whatever their window (case-insensitive, unknown ones left out), each
// with what is left for this customer.
func TestActive(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := e.clock.Now()
		auto := e.create(Rule{Name: "winter", Kind: pricing.Percentage, PercentBP: 500, Priority: 3})
		e.create(Rule{Name: "later", Kind: pricing.Percentage, PercentBP: 500, Window: Window{StartsAt: now.Add(time.Hour)}})
		e.create(Rule{Name: "over", Kind: pricing.Percentage, PercentBP: 500, Window: Window{EndsAt: now}})
		gone := e.create(Rule{Name: "gone", Kind: pricing.FreeShipping})
		if _, err := e.svc.Deactivate(ctx, Actor{ID: "s-1"}, gone.ID); err != nil {
			t.Fatal(err)
		}
		limited := e.create(Rule{Name: "ten off", Kind: pricing.Fixed, Amount: ptr(eur(1000)), Codes: []string{"TEN", "Tenner"},
			Limits: Limits{TotalUses: ptr[int64](5), PerCustomer: ptr[int64](2), Budget: ptr(eur(3000))}})
		expired := e.create(Rule{Name: "old", Kind: pricing.Percentage, PercentBP: 100, Codes: []string{"OLD"},
			Window: Window{StartsAt: now.Add(-48 * time.Hour), EndsAt: now.Add(-time.Hour)}})
		if err := e.svc.Redeem(ctx, "o-1", "ann", []pricing.AppliedPromotion{applied(limited, 1000)}); err != nil {
			t.Fatal(err)
		}
		ids := func(ps []pricing.Promotion) map[string]string {
			m := map[string]string{}
			for _, p := range ps {
				m[p.ID] = p.Code
			}
			return m
		}
		// Only the automatic one in its window, without codes.
		if got := ids(e.active(nil, "ann")); len(got) != 1 || got[auto.ID] != "" {
			t.Errorf("no codes: %v, want only %s", got, auto.ID)
		}
		ps := e.active([]string{" tenner ", "TEN", "nope", "old", "x y"}, "ann")
		got := ids(ps)
		if len(got) != 3 || got[limited.ID] != "TENNER" || got[expired.ID] != "OLD" {
			t.Fatalf("with codes: %v", got)
		}
		for _, p := range ps {
			switch p.ID {
			case limited.ID:
				// ann used 1 of 2; 4 of 5 left in all; 2000 of 3000.
				if *p.UsesLeft != 1 || p.BudgetLeft.Amount() != 2000 || p.Version != 1 || p.Amount.Amount() != 1000 {
					t.Errorf("ten off for ann: uses left %d, budget left %v", *p.UsesLeft, p.BudgetLeft)
				}
			case auto.ID:
				if p.UsesLeft != nil || p.BudgetLeft != nil || p.Priority != 3 {
					t.Errorf("automatic: %+v", p)
				}
			}
		}
		for _, tc := range []struct {
			customer string
			left     int64
		}{{"bob", 2}, {"", 0}} {
			for _, p := range e.active([]string{"ten"}, tc.customer) {
				if p.ID == limited.ID && *p.UsesLeft != tc.left {
					t.Errorf("uses left for %q: %d, want %d", tc.customer, *p.UsesLeft, tc.left)
				}
			}
		}
		// The engine answers the missing code coupon_unknown and the
		// expired one coupon_expired.
		in := pricing.Input{Currency: "EUR", Now: now, Coupons: []string{"nope"}, Promotions: e.active([]string{"nope"}, "ann"),
			Lines: []pricing.Line{{SKU: "s", Quantity: 1, UnitPrice: eur(5000)}}}
		if _, err := pricing.Quote(in); errs.CodeOf(err) != pricing.CouponUnknown {
			t.Errorf("unknown code: %v", err)
		}
		in.Coupons, in.Promotions = []string{"old"}, e.active([]string{"old"}, "ann")
		if _, err := pricing.Quote(in); errs.CodeOf(err) != pricing.CouponExpired {
			t.Errorf("expired code: %v", err)
		}
		in.Coupons, in.Promotions = []string{"ten"}, e.active([]string{"ten"}, "ann")
		q, err := pricing.Quote(in)
		if err != nil || q.Discount.Amount() != 250+1000 { // priority 3 first: 5 % of 50 €, then 10 € off
			t.Errorf("quote: %+v, %v", q.Discount, err)
		}
		// Inside a unit, ActiveTx reads the same.
		var inUnit []pricing.Promotion
		if err := e.db.Do(ctx, func(tx *sqldb.Tx) (err error) {
			inUnit, err = e.svc.ActiveTx(ctx, tx, now, []string{"ten", "old"}, "ann")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if a, b := mustJSON(t, inUnit), mustJSON(t, e.active([]string{"ten", "old"}, "ann")); a != b || len(inUnit) != 3 {
			t.Errorf("ActiveTx %s, Active %s", a, b)
		}
		// Too many codes.
		if _, err := e.svc.Active(ctx, now, make([]string, MaxCoupons+1), "ann"); errs.KindOf(err) != errs.Invalid {
			t.Errorf("too many codes: %v", err)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
