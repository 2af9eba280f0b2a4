package promotions

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/pricing"
)

// The units of one transaction share a promotion's counter: each decides
// on its own, a failed unit gives its share back, and the transaction
// writes the counter once with the net change — also when it mixes
// redemptions, releases and a change of the limits.
func TestOneCounterUpdatePerTransaction(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var mu sync.Mutex
		var flushes []string
		e.svc.onFlush = func(id string, uses, spent int64) {
			mu.Lock()
			flushes = append(flushes, fmt.Sprintf("%d/%d", uses, spent))
			mu.Unlock()
		}
		takeFlushes := func() []string {
			mu.Lock()
			defer mu.Unlock()
			out := flushes
			flushes = nil
			return out
		}
		p := e.create(coupon("BATCH", Limits{TotalUses: ptr[int64](3), PerCustomer: ptr[int64](1)}))
		redeem := func(order, customer string) sqldb.Unit {
			return sqldb.Unit{Run: func(tx *sqldb.Tx) error {
				return e.svc.RedeemTx(ctx, tx, order, customer, []pricing.AppliedPromotion{applied(p, 100)})
			}}
		}
		outcome := func(err error) string {
			if err == nil {
				return "ok"
			}
			return string(errs.CodeOf(err))
		}
		run := func(units ...sqldb.Unit) string {
			res := e.db.RunBatch(ctx, sqldb.Batch{Units: units})
			if res.Err != nil {
				t.Fatalf("batch: %v", res.Err)
			}
			var out []string
			for _, err := range res.Outcomes {
				out = append(out, outcome(err))
			}
			return fmt.Sprint(out)
		}
		// ann twice (the second fails on her own limit, after taking a use
		// of the counter: given back), then bob, cy, dan: the limit of 3.
		got := run(redeem("o-1", "ann"), redeem("o-2", "ann"), redeem("o-3", "bob"), redeem("o-4", "cy"), redeem("o-5", "dan"))
		if want := "[ok coupon_exhausted ok ok coupon_exhausted]"; got != want {
			t.Errorf("outcomes %s, want %s", got, want)
		}
		if f := takeFlushes(); fmt.Sprint(f) != "[3/300]" {
			t.Errorf("flushes %v, want one of 3 uses", f)
		}
		// Two releases and a redemption, and a change of the limits that
		// counts the transaction's own redemption.
		lower := sqldb.Unit{Run: func(tx *sqldb.Tx) error {
			_, err := e.svc.UpdateTx(ctx, tx, Actor{ID: "s-1"}, p.ID, Patch{Limits: &Limits{TotalUses: ptr[int64](1)}})
			return err
		}}
		release := func(order string) sqldb.Unit {
			return sqldb.Unit{Run: func(tx *sqldb.Tx) error { return e.svc.ReleaseTx(ctx, tx, order) }}
		}
		got = run(release("o-1"), release("o-3"), redeem("o-6", "eve"), lower)
		if want := "[ok ok ok validation_failed]"; got != want {
			t.Errorf("outcomes %s, want %s", got, want)
		}
		if f := takeFlushes(); fmt.Sprint(f) != "[-1/-100]" {
			t.Errorf("flushes %v, want one of -1 use", f)
		}
		if uses, spent := e.counter(p.ID); uses != 2 || spent != 200 {
			t.Errorf("counter (%d, %d), want (2, 200)", uses, spent)
		}
		// ann's use was given back: she may again, and takes the last one.
		got = run(redeem("o-7", "ann"), redeem("o-8", "fay"), redeem("o-9", "gus"))
		if want := "[ok coupon_exhausted coupon_exhausted]"; got != want {
			t.Errorf("outcomes %s, want %s", got, want)
		}
		if f := takeFlushes(); fmt.Sprint(f) != "[1/100]" {
			t.Errorf("flushes %v", f)
		}
		// A transaction whose units change nothing writes nothing.
		got = run(redeem("o-10", "hal"))
		if f := takeFlushes(); got != "[coupon_exhausted]" || len(f) != 0 {
			t.Errorf("an exhausted redemption: %s, flushes %v", got, f)
		}
	})
}

// The order consumer releases on order.cancelled and order.expired only,
// and an aggregate id that can be no order reference is applied with no
// effect (not retried forever).
func TestOrderConsumerIgnores(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := e.create(coupon("KEEP", Limits{}))
		if err := e.svc.Redeem(ctx, "o-1", "ann", []pricing.AppliedPromotion{applied(p, 100)}); err != nil {
			t.Fatal(err)
		}
		for _, ev := range []event.Envelope{
			{ID: "1", Type: "order.paid", AggregateType: "order", AggregateID: "o-1"},
			{ID: "2", Type: "order.placed", AggregateType: "order", AggregateID: "o-1"},
			{ID: "3", Type: EventOrderCancelled, AggregateType: "order", AggregateID: strings.Repeat("x", MaxOrderRef+1)},
			{ID: "4", Type: EventOrderExpired, AggregateType: "order", AggregateID: ""},
		} {
			if err := e.db.Do(ctx, func(tx *sqldb.Tx) error { return e.svc.HandleOrderEvent(ctx, tx, ev) }); err != nil {
				t.Errorf("%s %q: %v", ev.Type, ev.AggregateID, err)
			}
		}
		if uses, spent := e.counter(p.ID); uses != 1 || spent != 100 {
			t.Errorf("counter (%d, %d), want (1, 100): an event released what it should not", uses, spent)
		}
		c := e.svc.OrderConsumer()
		if c.Name != "promotions_orders" || fmt.Sprint(c.Events) != "[order.cancelled order.expired]" {
			t.Errorf("consumer %s on %v", c.Name, c.Events)
		}
	})
}

// Many units of one batch and several batches at once: 4 batches of 30
// redemptions by 6 customers race for a coupon of 10 uses, at most 2 per
// customer. The batches read the counter without a lock, so on PostgreSQL
// one that read it stale loses at its flush and runs again; whatever the
// interleaving exactly 10 redemptions commit, no customer has more than 2,
// and each committed transaction wrote the counter once.
func TestManyUnitsManyBatches(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := e.create(coupon("MIX", Limits{TotalUses: ptr[int64](10), PerCustomer: ptr[int64](2)}))
		var mu sync.Mutex
		flushes := 0
		e.svc.onFlush = func(string, int64, int64) { mu.Lock(); flushes++; mu.Unlock() }
		const batches, units = 4, 30
		results := make([]sqldb.BatchResult, batches)
		var wg sync.WaitGroup
		for b := range batches {
			wg.Go(func() {
				var us []sqldb.Unit
				for i := range units {
					order, customer := fmt.Sprintf("o-%d-%02d", b, i), fmt.Sprintf("c-%d", (b+i)%6)
					us = append(us, sqldb.Unit{Run: func(tx *sqldb.Tx) error {
						return e.svc.RedeemTx(ctx, tx, order, customer, []pricing.AppliedPromotion{applied(p, 100)})
					}})
				}
				results[b] = e.db.RunBatch(ctx, sqldb.Batch{Units: us})
			})
		}
		wg.Wait()
		ok, tries := 0, 0
		for _, r := range results {
			if r.Err != nil {
				t.Fatalf("batch: %v", r.Err)
			}
			tries += r.Tries
			for _, err := range r.Outcomes {
				switch code := errs.CodeOf(err); {
				case err == nil:
					ok++
				case code != pricing.CouponExhausted:
					t.Errorf("outcome %v", err)
				}
			}
		}
		if ok != 10 {
			t.Errorf("%d redemptions succeeded, want 10", ok)
		}
		if uses, spent := e.counter(p.ID); uses != 10 || spent != 1000 {
			t.Errorf("counter (%d, %d), want (10, 1000)", uses, spent)
		}
		if n := e.count("promotions_redemptions", "promotion_id = $1", p.ID); n != 10 {
			t.Errorf("%d redemptions recorded, want 10", n)
		}
		if n := e.count("promotions_customer_uses", "promotion_id = $1 AND uses > 2", p.ID); n != 0 {
			t.Errorf("%d customers over their limit of 2", n)
		}
		var sum int64
		if err := e.db.Reader().QueryRow(`SELECT COALESCE(SUM(uses), 0) FROM promotions_customer_uses WHERE promotion_id = $1`,
			p.ID).Scan(&sum); err != nil || sum != 10 {
			t.Errorf("customers' uses sum to %d (%v), want 10", sum, err)
		}
		mu.Lock()
		defer mu.Unlock()
		// One flush per try that redeemed anything: never one per unit.
		if flushes < 1 || flushes > tries {
			t.Errorf("%d counter flushes in %d tries of %d batches", flushes, tries, batches)
		}
	})
}
