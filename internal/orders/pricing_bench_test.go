package orders

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/promotions"
	"mercato/internal/rates"
)

// BenchmarkPlaceCoupon: placements per second through a real group-commit
// batcher with the real promotions and rates modules, of carts with a
// coupon entered (quoted, redeemed in the unit) next to carts without one,
// measured in the same run on each engine (target: ratio ≥ 0.9).
func BenchmarkPlaceCoupon(b *testing.B) {
	for _, eng := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		b.Run(string(eng), func(b *testing.B) {
			db := sqldbtest.Open(b, eng, pricedSources()...)
			e := newEnv(b, db)
			db.SetClock(time.Now)
			gc := groupcommit.New(db, groupcommit.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			defer gc.Close()
			p := module.Platform{DB: db, Write: gc, Idem: e.svc.idem, Logger: e.svc.logger}
			promos := promotions.New(p, promotions.Config{})
			e.svc.promos, e.svc.rates = promos, testRates{rates.New(p, rates.Config{})}
			if _, err := promos.Create(context.Background(), staff, promotions.Rule{Name: "bench", Kind: "percentage",
				PercentBP: 1000, Codes: []string{"BENCH"}}); err != nil {
				b.Fatal(err)
			}
			n := max(b.N, 64)
			with, without := e.benchCarts(n, 64), e.benchCarts(n, 64)
			if _, err := db.Writer().Exec(`UPDATE orders_carts SET coupons = '["BENCH"]' WHERE id IN (` + inList(with) + `)`); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			couponed := e.place(b, gc, with)
			b.StopTimer()
			plain := e.place(b, gc, without)
			b.ReportMetric(couponed, "placements/s")
			b.ReportMetric(plain, "ref_no_coupon/s")
			b.ReportMetric(couponed/plain, "ratio")
		})
	}
}

func inList(ids []string) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ", "
		}
		s += "'" + id + "'"
	}
	return s
}
