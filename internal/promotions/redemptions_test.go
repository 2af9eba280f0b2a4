package promotions

import (
	"context"
	"fmt"
	"testing"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/pricing"
)

// A transaction's redemptions are inserted by its flush in one statement:
// a batch of eight redemptions costs the writer as many statements as a
// batch of one. An order redeeming twice is already_redeemed alone, also
// when its first redemption committed earlier (the batch runs again and
// the others commit), and a release in the same transaction sees the
// redemptions still pending.
func TestRedemptionsInsertedByTheFlush(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := e.create(coupon("FLUSHED", Limits{}))
		redeem := func(order, customer string) sqldb.Unit {
			return sqldb.Unit{Run: func(tx *sqldb.Tx) error {
				return e.svc.RedeemTx(ctx, tx, order, customer, []pricing.AppliedPromotion{applied(p, 100)})
			}}
		}
		release := func(order string) sqldb.Unit {
			return sqldb.Unit{Run: func(tx *sqldb.Tx) error { return e.svc.ReleaseTx(ctx, tx, order) }}
		}
		run := func(units ...sqldb.Unit) (string, int64) {
			before := e.db.WriteStats()
			res := e.db.RunBatch(ctx, sqldb.Batch{Units: units})
			if res.Err != nil {
				t.Fatalf("batch: %v", res.Err)
			}
			var out []string
			for _, err := range res.Outcomes {
				if err == nil {
					out = append(out, "ok")
				} else {
					out = append(out, string(errs.CodeOf(err)))
				}
			}
			return fmt.Sprint(out), e.db.WriteStats().Sub(before).Statements
		}
		live := func(order string) (n int) {
			t.Helper()
			if err := e.db.Reader().QueryRow(`SELECT count(*) FROM promotions_redemptions
				WHERE order_ref = $1 AND released_at IS NULL`, order).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}

		_, one := run(redeem("o-1", "ann"))
		var eight []sqldb.Unit
		for i := range 8 {
			eight = append(eight, redeem(fmt.Sprintf("b-%d", i), fmt.Sprintf("c-%d", i)))
		}
		if got, n := run(eight...); got != "[ok ok ok ok ok ok ok ok]" || n != one {
			t.Errorf("eight redemptions: %s in %d statements, one in %d; want all ok in as many", got, n, one)
		}
		for _, tt := range []struct {
			name  string
			units []sqldb.Unit
			want  string
			uses  int64 // the counter after the batch
			live  map[string]int
		}{
			{"twice in one transaction", []sqldb.Unit{redeem("o-7", "fay"), redeem("o-7", "fay")}, "[ok already_redeemed]", 10,
				map[string]int{"o-7": 1}},
			{"committed earlier", []sqldb.Unit{redeem("o-8", "gus"), redeem("o-1", "ann"), redeem("o-9", "hal")}, "[ok already_redeemed ok]", 12,
				map[string]int{"o-1": 1, "o-8": 1, "o-9": 1}},
			{"released in the same transaction", []sqldb.Unit{redeem("o-10", "ida"), release("o-10")}, "[ok ok]", 12,
				map[string]int{"o-10": 0}},
			{"redeemed again after its release", []sqldb.Unit{release("o-1"), redeem("o-1", "ann")}, "[ok ok]", 12,
				map[string]int{"o-1": 1}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if got, _ := run(tt.units...); got != tt.want {
					t.Errorf("outcomes %s, want %s", got, tt.want)
				}
				if uses, _ := e.counter(p.ID); uses != tt.uses {
					t.Errorf("uses %d, want %d", uses, tt.uses)
				}
				for order, n := range tt.live {
					if got := live(order); got != n {
						t.Errorf("%s: %d live redemptions, want %d", order, got, n)
					}
				}
			})
		}
	})
}

// A promotion without limits is redeemed without writing its counter (no
// counter UPDATE in any flush): its uses are its live redemptions, a
// release gives one back, and its first limit counts them — the total and
// each customer's — so that the limits hold from the uses made before.
func TestUncountedUntilLimited(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var flushes int
		e.svc.onFlush = func(string, int64, int64) { flushes++ } // batches run one at a time here
		p := e.create(coupon("FREE4ALL", Limits{}))
		redeem := func(order, customer string, version int64) error {
			a := applied(p, 100)
			a.Version = version
			return e.svc.Redeem(ctx, order, customer, []pricing.AppliedPromotion{a})
		}
		for i, c := range []string{"ann", "ann", "bob", "cy"} {
			if err := redeem(fmt.Sprintf("o-%d", i), c, 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.svc.Release(ctx, "o-3"); err != nil { // cy's
			t.Fatal(err)
		}
		if uses, spent := e.counter(p.ID); uses != 3 || spent != 300 || flushes != 0 {
			t.Errorf("uses (%d, %d) after %d counter writes, want (3, 300) after none", uses, spent, flushes)
		}
		if _, err := e.svc.Update(ctx, Actor{ID: "s-1"}, p.ID, Patch{Limits: &Limits{TotalUses: ptr[int64](2)}}); errs.CodeOf(err) != errs.CodeValidation {
			t.Fatalf("a limit below the 3 uses: %v, want validation_failed", err)
		}
		if _, err := e.svc.Update(ctx, Actor{ID: "s-1"}, p.ID, Patch{Limits: &Limits{TotalUses: ptr[int64](5), PerCustomer: ptr[int64](2)}}); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			order, customer string
			want            errs.Code
		}{
			{"o-10", "ann", pricing.CouponExhausted}, // her 2 uses counted
			{"o-11", "bob", ""},
			{"o-12", "cy", ""},                       // hers was released
			{"o-13", "dan", pricing.CouponExhausted}, // 5 in all
		} {
			if err := redeem(tt.order, tt.customer, 2); (err == nil) != (tt.want == "") || err != nil && errs.CodeOf(err) != tt.want {
				t.Errorf("%s by %s: %v, want %q", tt.order, tt.customer, err, tt.want)
			}
		}
		if uses, spent := e.counter(p.ID); uses != 5 || spent != 500 || flushes != 2 {
			t.Errorf("uses (%d, %d) after %d counter writes, want (5, 500) after 2", uses, spent, flushes)
		}
	})
}

// Batches redeeming a promotion without limits race a change giving it
// its first limit: every redemption committed is counted — on PostgreSQL
// the change waits for the batches that redeemed it uncounted, and a batch
// that comes after it fails the version it priced (promotion_changed).
func TestFirstLimitRacesRedemptions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := e.create(coupon("RACING", Limits{}))
		const n = 60
		got := parallel(t, n, func(i int) error {
			if i == n/2 {
				_, err := e.svc.Update(ctx, Actor{ID: "s-1"}, p.ID, Patch{Limits: &Limits{TotalUses: ptr[int64](1000)}})
				return err
			}
			return e.svc.Redeem(ctx, fmt.Sprintf("o-%03d", i), fmt.Sprintf("c-%d", i%7), []pricing.AppliedPromotion{applied(p, 100)})
		})
		for outcome := range got {
			if outcome != "" && outcome != string(CodePromotionChanged) {
				t.Errorf("outcomes %v: want only successes and promotion_changed", got)
			}
		}
		live := e.count("promotions_redemptions", "promotion_id = $1 AND released_at IS NULL", p.ID)
		if uses, spent := e.counter(p.ID); uses != int64(live) || spent != int64(live)*100 {
			t.Errorf("counter (%d, %d), want the %d live redemptions counted", uses, spent, live)
		}
		var sum int64
		if err := e.db.Reader().QueryRow(`SELECT COALESCE(SUM(uses), 0) FROM promotions_customer_uses
			WHERE promotion_id = $1`, p.ID).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		if sum != int64(live) {
			t.Errorf("customers' uses sum to %d, want %d", sum, live)
		}
	})
}
