package promotions

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/pricing"
)

// redeem64 makes n redemptions on 64 goroutines through svc's write path,
// worker w redeeming promo(w), each order by its own customer, and returns
// the rate.
func redeem64(b *testing.B, svc *Service, n int, seq *atomic.Int64, promo func(w int) Promotion) float64 {
	const workers = 64
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				i := seq.Add(1)
				a := []pricing.AppliedPromotion{applied(promo(w), 1)}
				if err := svc.Redeem(ctx, fmt.Sprint("o-", i), fmt.Sprint("c-", i), a); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkRedeemHot: redemptions per second through the group-commit
// write path by 64 concurrent checkouts that all redeem one promotion with
// a total-use limit and a budget (one hot counter row), against the
// reference measured in the same run: the same redemptions spread over 64
// promotions (no row shared). Run with e.g. -benchtime=5000x.
func BenchmarkRedeemHot(b *testing.B) {
	for _, eng := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		b.Run(string(eng), func(b *testing.B) {
			db := sqldbtest.Open(b, eng, sources()...)
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			write := groupcommit.New(db, groupcommit.Config{Logger: logger})
			b.Cleanup(write.Close)
			svc := New(module.Platform{DB: db, Write: write, Logger: logger}, Config{})
			limits := Limits{TotalUses: ptr[int64](1 << 40), Budget: ptr(eur(1 << 40))}
			mk := func(code string) Promotion {
				p, err := svc.Create(context.Background(), Actor{ID: "bench"}, coupon(code, limits))
				if err != nil {
					b.Fatal(err)
				}
				return p
			}
			hot := mk("HOT")
			spread := make([]Promotion, 64)
			for w := range spread {
				spread[w] = mk(fmt.Sprint("S", w))
			}
			var seq atomic.Int64
			redeem64(b, svc, 500, &seq, func(w int) Promotion { return spread[w] }) // warm-up
			refRate := redeem64(b, svc, max(b.N, 500), &seq, func(w int) Promotion { return spread[w] })
			b.ResetTimer()
			rate := redeem64(b, svc, b.N, &seq, func(int) Promotion { return hot })
			b.StopTimer()
			b.ReportMetric(refRate, "ref_spread_redemptions/s")
			b.ReportMetric(rate, "hot_redemptions/s")
			b.ReportMetric(rate/refRate, "ratio_x")
		})
	}
}
