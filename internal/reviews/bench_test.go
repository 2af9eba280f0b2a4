package reviews

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// benchEngines are the engines a benchmark runs on: SQLite, and PostgreSQL
// when MERCATO_TEST_POSTGRES_URL is set.
func benchEngines() []sqldb.Engine {
	if os.Getenv(sqldbtest.EnvPostgres) == "" {
		return []sqldb.Engine{sqldb.SQLite}
	}
	return []sqldb.Engine{sqldb.SQLite, sqldb.Postgres}
}

// BenchmarkCreateOneProduct is concurrent reviews of ONE product (every
// unit updates the same rating row) through the group-commit write path,
// next to the reference measured in the same run: as many concurrent
// reviews each of its own product. The figure to read is hot/spread: what
// the contended rating row costs.
func BenchmarkCreateOneProduct(b *testing.B) {
	for _, eng := range benchEngines() {
		b.Run(string(eng), func(b *testing.B) {
			e := newEnv(b, sqldbtest.Open(b, eng, sources()...))
			ctx := context.Background()
			var seq atomic.Int64
			b.SetParallelism(16) // 16 writers per CPU: batches of many units
			run := func(product func(i int64) string) time.Duration {
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := seq.Add(1)
						if _, err := e.svc.Create(ctx, fmt.Sprint("c-", i), product(i),
							CreateRequest{Rating: int(i%5) + 1, Title: "bench"}); err != nil {
							b.Error(err)
							return
						}
					}
				})
				return time.Since(start)
			}
			e.products.set("hot", true)
			spreadIDs := func(i int64) string { id := fmt.Sprint("p-", i); e.products.set(id, true); return id }
			for i := range 64 { // warm both paths up before either is timed
				for _, p := range []string{"warm", fmt.Sprint("warm-", i)} {
					e.products.set(p, true)
					if _, err := e.svc.Create(ctx, fmt.Sprint("w-", i), p, CreateRequest{Rating: 3, Title: "warm"}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ResetTimer()
			hot := run(func(int64) string { return "hot" })
			b.StopTimer()
			spread := run(spreadIDs)
			n := float64(b.N)
			b.ReportMetric(float64(hot.Nanoseconds())/n, "ns/review-one-product")
			b.ReportMetric(float64(spread.Nanoseconds())/n, "ns/review-own-product")
			b.ReportMetric(float64(hot)/float64(spread), "hot/spread")
			if r := e.rating("hot"); r.Count != b.N {
				b.Errorf("hot product counts %d reviews, want %d", r.Count, b.N)
			}
		})
	}
}

// BenchmarkRatings reads the ratings of 100 products with one Ratings call,
// next to the reference of 100 single-product calls in the same run.
func BenchmarkRatings(b *testing.B) {
	for _, eng := range benchEngines() {
		b.Run(string(eng), func(b *testing.B) {
			e := newEnv(b, sqldbtest.Open(b, eng, sources()...))
			ctx := context.Background()
			ids := make([]string, 100)
			for i := range ids {
				ids[i] = fmt.Sprintf("p-%03d", i)
				e.products.set(ids[i], true)
				if _, err := e.svc.Create(ctx, "c-1", ids[i], CreateRequest{Rating: i%5 + 1, Title: "t"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if m, err := e.svc.Ratings(ctx, ids); err != nil || len(m) != 100 {
					b.Fatal(m, err)
				}
			}
			batch := time.Since(start)
			b.StopTimer()
			start = time.Now()
			for range b.N {
				for _, id := range ids {
					if _, err := e.svc.Ratings(ctx, []string{id}); err != nil {
						b.Fatal(err)
					}
				}
			}
			single := time.Since(start)
			n := float64(b.N)
			b.ReportMetric(float64(batch.Nanoseconds())/n, "ns/100-in-one-query")
			b.ReportMetric(float64(single.Nanoseconds())/n, "ns/100-one-by-one")
			b.ReportMetric(float64(single)/float64(batch), "speedup")
		})
	}
}
