package searchtest

import (
	"context"
	"slices"
	"testing"
	"time"

	"mercato/internal/catalog/search"
)

// BenchTexts are the texts the search benchmarks cycle through: plain,
// misspelt, Chinese and mixed shoppers' queries.
var BenchTexts = []string{"bluetooth headphones", "cotton t-shirt", "蓝牙耳机", "coffee beans", "bluetoth headphnes",
	"standing desk", "纯棉T恤", "green tea", "wireless mouse", "phone case"}

// BenchQueries are a shopper's searches over BenchTexts: text, facets and a
// filter (in stock in electronics, or rated 3 and more); and, as the
// reference, the same texts alone.
func BenchQueries() (faceted, plain []search.Query) {
	in := true
	for i, t := range BenchTexts {
		q := search.Query{Text: t, Facets: true, CategoryID: "c-electronics", InStock: &in}
		if i%2 == 1 {
			q.CategoryID, q.InStock, q.MinRating = "", nil, 3
		}
		faceted = append(faceted, q)
		plain = append(plain, search.Query{Text: t})
	}
	return faceted, plain
}

// Latencies runs b.N searches cycling through qs and reports their p50 and
// p99 as name-p50-ms and name-p99-ms.
func Latencies(b *testing.B, idx search.Index, qs []search.Query, name string) {
	b.Helper()
	d := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := idx.Search(context.Background(), qs[i%len(qs)]); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	ms := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))]) / 1e6 }
	b.ReportMetric(ms(0.50), name+"-p50-ms")
	b.ReportMetric(ms(0.99), name+"-p99-ms")
}

// PutAll puts docs batch at a time.
func PutAll(idx search.Index, docs []search.Document, batch int) error {
	for len(docs) > 0 {
		n := min(batch, len(docs))
		if err := idx.Put(context.Background(), docs[:n]); err != nil {
			return err
		}
		docs = docs[n:]
	}
	return nil
}
