package blevesearch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"mercato/internal/catalog/search"
	"mercato/internal/catalog/search/searchtest"
)

// The benchmarks share one 100,000-document index, built on first use in a
// temporary directory that TestMain removes. Nothing builds it unless a
// benchmark runs (-bench).
const benchDocs = 100_000

var big struct {
	once sync.Once
	dir  string
	idx  *Index
	err  error
	took time.Duration
}

func TestMain(m *testing.M) {
	code := m.Run()
	if big.idx != nil {
		big.idx.Close()
	}
	if big.dir != "" {
		os.RemoveAll(big.dir)
	}
	os.Exit(code)
}

// bigIndex is the shared index of benchDocs synthetic documents.
func bigIndex(b *testing.B) *Index {
	b.Helper()
	big.once.Do(func() {
		if big.dir, big.err = os.MkdirTemp("", "mercato-search-bench-"); big.err != nil {
			return
		}
		if big.idx, big.err = Open(filepath.Join(big.dir, "search")); big.err != nil {
			return
		}
		start := time.Now()
		if big.err = searchtest.PutAll(big.idx, searchtest.Synthetic(benchDocs, 1), search.RebuildBatch); big.err != nil {
			return
		}
		big.took = time.Since(start)
		big.err = big.idx.Compact(context.Background())
	})
	if big.err != nil {
		b.Fatal(big.err)
	}
	return big.idx
}

// BenchmarkSearch100k: a shopper's query — text, a category filter, an
// in-stock filter and facets — on 100,000 documents, with the p50/p99 of a
// plain one-word query without facets measured in the same run as the
// reference.
func BenchmarkSearch100k(b *testing.B) {
	idx := bigIndex(b)
	full, plain := searchtest.BenchQueries()
	idx.Search(context.Background(), full[0]) // the first search loads the doc values
	b.Run("faceted", func(b *testing.B) { searchtest.Latencies(b, idx, full, "search") })
	b.Run("reference", func(b *testing.B) { searchtest.Latencies(b, idx, plain, "plain") })
	b.Run("worst", func(b *testing.B) {
		// twelve long misspelt words, each fuzzy (distance 2)
		w := search.Query{Text: "headphnoes bluetoothh wirelesss cottonn shirtts coffeee standingg deskks " +
			"keyboardd monitorr chargerr speakerr", Facets: true}
		searchtest.Latencies(b, idx, []search.Query{w}, "worst")
	})
}

// BenchmarkIndexBuild: documents per second put in batches of
// search.RebuildBatch into a fresh index, next to one document per Put
// (the cost of a batch is per call) measured in the same run.
func BenchmarkIndexBuild(b *testing.B) {
	docs := searchtest.Synthetic(20_000, 2)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		idx, err := Open(filepath.Join(b.TempDir(), "search"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if err := searchtest.PutAll(idx, docs, search.RebuildBatch); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(docs))/time.Since(start).Seconds(), "batched-docs/s")
		single := docs[:100]
		start = time.Now()
		if err := searchtest.PutAll(idx, single, 1); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(single))/time.Since(start).Seconds(), "one-per-put-docs/s")
		b.StopTimer()
		idx.Close()
		b.StartTimer()
	}
	if big.took > 0 {
		b.ReportMetric(benchDocs/big.took.Seconds(), "100k-build-docs/s")
	}
}

// BenchmarkRebuild: search.Rebuild of the 100,000-document index from a
// source of the same documents less 1% (which Rebuild deletes), docs/s; the
// reference is the build of the same index by plain batched Puts (the
// first-use build, when this run made it).
func BenchmarkRebuild(b *testing.B) {
	idx := bigIndex(b)
	docs := searchtest.Synthetic(benchDocs, 1)
	src := &searchtest.CountedSource{Source: searchtest.Source{Docs: docs[:benchDocs-benchDocs/100]}}
	for i := 0; i < b.N; i++ {
		start := time.Now()
		var last int
		if err := search.Rebuild(context.Background(), idx, src, func(done, total int) { last = done }); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(last)/time.Since(start).Seconds(), "rebuild-docs/s")
		b.StopTimer()
		// put the 1% back for the next round
		if err := searchtest.PutAll(idx, docs[benchDocs-benchDocs/100:], search.RebuildBatch); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	if big.took > 0 {
		b.ReportMetric(benchDocs/big.took.Seconds(), "build-docs/s")
	}
	if n, _ := idx.Count(context.Background()); n != benchDocs {
		b.Fatal(fmt.Sprintf("Count = %d, want %d", n, benchDocs))
	}
}
