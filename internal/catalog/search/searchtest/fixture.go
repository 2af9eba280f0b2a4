// Package searchtest is the conformance suite every search.Index passes
// (Run), the fixture catalogue it runs on (Fixture: 231 products in English
// and Chinese, testdata/products.json), the relevance expectations
// (RunRelevance) and a generator of synthetic catalogues for benchmarks
// (Synthetic).
package searchtest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"mercato/internal/catalog/search"
)

//go:embed testdata/products.json
var productsJSON []byte

type product struct {
	ID            string    `json:"id"`
	Title         string    `json:"title"`
	Description   string    `json:"description"`
	CategoryIDs   []string  `json:"category_ids"`
	CategoryNames []string  `json:"category_names"`
	Attributes    []string  `json:"attributes"`
	SKUs          []string  `json:"skus"`
	PriceMin      int64     `json:"price_min"`
	PriceMax      int64     `json:"price_max"`
	Currency      string    `json:"currency"`
	Rating        float64   `json:"rating"`
	RatingCount   int       `json:"rating_count"`
	InStock       bool      `json:"in_stock"`
	Channels      []string  `json:"channels"`
	CreatedAt     time.Time `json:"created_at"`
}

// Fixture is the fixture catalogue, in id order: electronics, clothing,
// home, books and food, each base product three times (as is, with a brand
// in front, with a colour after), titles in English, Chinese or both.
func Fixture() []search.Document {
	var ps []product
	if err := json.Unmarshal(productsJSON, &ps); err != nil {
		panic(fmt.Sprintf("searchtest: testdata/products.json: %v", err)) // a broken fixture is a broken build
	}
	docs := make([]search.Document, len(ps))
	for i, p := range ps {
		docs[i] = search.Document{
			ID: p.ID, Title: p.Title, Description: p.Description,
			CategoryIDs: p.CategoryIDs, CategoryNames: p.CategoryNames,
			Attributes: p.Attributes, SKUs: p.SKUs,
			PriceMin: p.PriceMin, PriceMax: p.PriceMax, Currency: p.Currency,
			Rating: p.Rating, RatingCount: p.RatingCount, InStock: p.InStock,
			Channels: p.Channels, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.CreatedAt.UTC(),
		}
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].ID < docs[j].ID })
	return docs
}

// Synthetic returns n documents made from the fixture's vocabulary: each
// takes a fixture product's categories and description, a title of its
// words with one from another product and a model number, and random
// price, rating, stock and date. The same seed gives the same documents.
func Synthetic(n int, seed uint64) []search.Document {
	fx := Fixture()
	var vocab []string
	for _, d := range fx {
		vocab = append(vocab, strings.Fields(d.Title)...)
	}
	r := rand.New(rand.NewPCG(seed, 14))
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	docs := make([]search.Document, n)
	for i := range docs {
		b := fx[r.IntN(len(fx))]
		d := b
		d.ID = fmt.Sprintf("s%07d", i)
		d.Title = fmt.Sprintf("%s %s %d", b.Title, vocab[r.IntN(len(vocab))], r.IntN(1000))
		d.SKUs = []string{fmt.Sprintf("SYN-%07d", i)}
		d.PriceMin = int64(100 + r.IntN(100000))
		d.PriceMax = d.PriceMin + int64(r.IntN(3))*500
		d.RatingCount = r.IntN(200)
		d.Rating = 0
		if d.RatingCount > 0 {
			d.Rating = float64(10+r.IntN(41)) / 10
		}
		d.InStock = r.IntN(5) > 0
		d.CreatedAt = start.Add(time.Duration(r.IntN(2*365*24)) * time.Hour)
		d.UpdatedAt = d.CreatedAt
		docs[i] = d
	}
	return docs
}

// ByID indexes docs by id.
func ByID(docs []search.Document) map[string]search.Document {
	m := make(map[string]search.Document, len(docs))
	for _, d := range docs {
		m[d.ID] = d
	}
	return m
}

// Filter reports whether d passes q's filters (not its text): the brute
// force the suite compares an index with.
func Filter(d search.Document, q search.Query) bool {
	has := func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	}
	switch {
	case q.CategoryID != "" && !has(d.CategoryIDs, q.CategoryID),
		q.Channel != "" && !has(d.Channels, q.Channel),
		q.MinPrice != nil && d.PriceMin < *q.MinPrice,
		q.MaxPrice != nil && d.PriceMin > *q.MaxPrice,
		q.InStock != nil && d.InStock != *q.InStock,
		q.MinRating > 0 && d.Rating < q.MinRating:
		return false
	}
	return true
}

// BruteFacets counts the facets of the documents ids over docs.
func BruteFacets(byID map[string]search.Document, ids []string) search.Facets {
	f := search.Facets{Categories: []search.Count{}}
	cats := map[string]int{}
	lo := int64(0)
	bounds := append(append([]int64{}, search.PriceBuckets...), -1)
	for _, b := range bounds {
		pc := search.PriceCount{Min: lo}
		if b >= 0 {
			max := b
			pc.Max = &max
		}
		f.Price = append(f.Price, pc)
		lo = b
	}
	for _, r := range []int{4, 3, 2, 1} {
		f.Rating = append(f.Rating, search.Count{Value: fmt.Sprint(r)})
	}
	f.InStock = []search.Count{{Value: "true"}, {Value: "false"}}
	for _, id := range ids {
		d := byID[id]
		for _, c := range d.CategoryIDs {
			cats[c]++
		}
		for i := range f.Price {
			if d.PriceMin >= f.Price[i].Min && (f.Price[i].Max == nil || d.PriceMin < *f.Price[i].Max) {
				f.Price[i].Count++
			}
		}
		for i, r := range []float64{4, 3, 2, 1} {
			if d.Rating >= r {
				f.Rating[i].Count++
			}
		}
		if d.InStock {
			f.InStock[0].Count++
		} else {
			f.InStock[1].Count++
		}
	}
	for c, n := range cats {
		f.Categories = append(f.Categories, search.Count{Value: c, Count: n})
	}
	sort.Slice(f.Categories, func(i, j int) bool {
		a, b := f.Categories[i], f.Categories[j]
		return a.Count > b.Count || a.Count == b.Count && a.Value < b.Value
	})
	if len(f.Categories) > 50 {
		f.Categories = f.Categories[:50]
	}
	return f
}
