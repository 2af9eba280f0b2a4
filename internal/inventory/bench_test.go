package inventory

import (
	"context"
	"errors"
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
)

// benchService is an inventory service on db whose write path is the
// group-commit batcher, and the same service committing each unit alone.
func benchService(b *testing.B, db *sqldb.DB) (batched, alone *Service) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	write := groupcommit.New(db, groupcommit.Config{Logger: logger})
	b.Cleanup(write.Close)
	batched = New(module.Platform{DB: db, Write: write, Logger: logger}, Config{})
	return batched, batched.withWrite(db)
}

// run64 makes n reservations of one unit on 64 goroutines, worker w
// reserving SKU sku(w), and returns the rate.
func run64(b *testing.B, svc *Service, n int, seq *atomic.Int64, sku func(w int) string) float64 {
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
				ref := fmt.Sprint("b", seq.Add(1))
				if _, err := svc.Reserve(ctx, ref, "", []Line{{SKU: sku(w), Quantity: 1}}, 0); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkReserve: reservations per second through the write path at 64
// concurrent units (64 SKUs, one each), against the reference measured in
// the same run: the same reservations, one commit each. Run with e.g.
// -benchtime=5000x.
func BenchmarkReserve(b *testing.B) {
	for _, e := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		b.Run(string(e), func(b *testing.B) {
			db := sqldbtest.Open(b, e, sources()...)
			batched, alone := benchService(b, db)
			for w := range 64 {
				if _, err := batched.SetStock(context.Background(), fmt.Sprint("B-", w), "", MaxOnHand, "bench"); err != nil {
					b.Fatal(err)
				}
			}
			sku := func(w int) string { return fmt.Sprint("B-", w) }
			var seq atomic.Int64
			refRate := run64(b, alone, max(b.N/5, 500), &seq, sku)
			b.ResetTimer()
			rate := run64(b, batched, b.N, &seq, sku)
			b.StopTimer()
			b.ReportMetric(refRate, "ref_reservations/s")
			b.ReportMetric(rate, "reservations/s")
			b.ReportMetric(rate/refRate, "ratio_x")
		})
	}
}

// hotRound races 1,000 reservations of one unit for 500 units of a fresh
// SKU and returns how many were reserved.
func hotRound(b *testing.B, svc *Service, round string, seq *atomic.Int64) int {
	ctx := context.Background()
	if _, err := svc.SetStock(ctx, round, "", 500, "bench"); err != nil {
		b.Fatal(err)
	}
	var won atomic.Int64
	errs := parallel(1000, func(int) error {
		_, err := svc.Reserve(ctx, fmt.Sprint("h", seq.Add(1)), "", []Line{{SKU: round, Quantity: 1}}, 0)
		if err == nil {
			won.Add(1)
		}
		return err
	})
	for _, err := range errs {
		if err != nil && !errors.Is(err, ErrOutOfStock) {
			b.Fatal(err)
		}
	}
	if won.Load() != 500 {
		b.Fatalf("%d reserved of 500", won.Load())
	}
	return int(won.Load())
}

// BenchmarkHotSKU: 1,000 attempts racing for 500 units of one SKU, each
// op one such round; attempts decided per second through the batcher
// (merged UPDATE, sold-out door), against the same rounds with one commit
// per attempt, measured in the same run.
func BenchmarkHotSKU(b *testing.B) {
	for _, e := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		b.Run(string(e), func(b *testing.B) {
			db := sqldbtest.Open(b, e, sources()...)
			batched, alone := benchService(b, db)
			var seq atomic.Int64
			refRounds := max(b.N/5, 2)
			start := time.Now()
			for i := range refRounds {
				hotRound(b, alone, fmt.Sprint("REF-", i), &seq)
			}
			refRate := float64(1000*refRounds) / time.Since(start).Seconds()
			b.ResetTimer()
			start = time.Now()
			for i := range b.N {
				hotRound(b, batched, fmt.Sprint("HOT-", i), &seq)
			}
			rate := float64(1000*b.N) / time.Since(start).Seconds()
			b.StopTimer()
			b.ReportMetric(refRate, "ref_attempts/s")
			b.ReportMetric(rate, "attempts/s")
			b.ReportMetric(rate/refRate, "ratio_x")
		})
	}
}
