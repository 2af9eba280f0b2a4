package pgsearch

import (
	"context"
	"testing"
	"time"

	"mercato/internal/catalog/search"
	"mercato/internal/catalog/search/searchtest"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// BenchmarkSearch100k: the Bleve benchmark's queries on 100,000 documents
// in PostgreSQL (built once per run in the benchmark's own schema; the
// build rate is reported as build-docs/s).
func BenchmarkSearch100k(b *testing.B) {
	db := sqldbtest.Open(b, sqldb.Postgres, Migrations())
	idx, err := New(context.Background(), db)
	if err != nil {
		b.Fatal(err)
	}
	const n = 100_000
	start := time.Now()
	if err := searchtest.PutAll(idx, searchtest.Synthetic(n, 1), search.RebuildBatch); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	if _, err := db.Writer().Exec(`ANALYZE search_documents`); err != nil {
		b.Fatal(err)
	}
	full, plain := searchtest.BenchQueries()
	b.Run("faceted", func(b *testing.B) {
		searchtest.Latencies(b, idx, full, "search")
		b.ReportMetric(n/took.Seconds(), "build-docs/s")
	})
	b.Run("reference", func(b *testing.B) { searchtest.Latencies(b, idx, plain, "plain") })
}
