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
