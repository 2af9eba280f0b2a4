package groupcommit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// BenchmarkGroupCommit measures, in the same run and on the same database,
// the reference (one writer, one row per durable transaction) and the
// batcher under 64 concurrent writers (one row per unit), and reports both
// rates and their ratio. Run with e.g. -benchtime=20000x.
func BenchmarkGroupCommit(b *testing.B) {
	for _, e := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		b.Run(string(e), func(b *testing.B) {
			db := sqldbtest.Open(b, e, source())
			ctx := context.Background()
			var seq atomic.Int64
			insert := func(tx *sqldb.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO units (name, payload) VALUES ($1, $2)`,
					fmt.Sprint("n", seq.Add(1)), "payload-of-a-typical-small-row")
				return err
			}
			// Reference: the disk's single-writer commit rate, same durability.
			refN := max(b.N/10, 500)
			start := time.Now()
			for range refN {
				if err := db.InTx(ctx, insert); err != nil {
					b.Fatal(err)
				}
			}
			refRate := float64(refN) / time.Since(start).Seconds()

			batcher := groupcommit.New(db, groupcommit.Config{})
			defer batcher.Close()
			const writers = 64
			b.ResetTimer()
			start = time.Now()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := batcher.Do(ctx, insert); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			rate := float64(b.N) / time.Since(start).Seconds()
			b.StopTimer()
			b.ReportMetric(refRate, "ref_commits/s")
			b.ReportMetric(rate, "units/s")
			b.ReportMetric(rate/refRate, "ratio_x")
		})
	}
}
