// Package search is the catalog's product search: one Index interface, with
// an embedded Bleve implementation (the default, files under the data
// directory) and a PostgreSQL full-text + trigram implementation
// (--search=postgres, one index shared by replicas). Both pass one
// conformance suite (searchtest).
//
// The index holds a Document per sellable product. It is a projection of the
// catalog's tables, never the record: an Indexer keeps it current from
// product events (batching its writes) and Rebuild recreates it from a
// Source. Only products the public may see are in it; a product that stops
// being sellable is deleted from it.
package search

import (
	"context"
	"errors"
	"time"
)

// Document is what the index holds of one product. The catalog builds it
// (Source); the index never reads the catalog's tables itself.
type Document struct {
	ID          string
	Title       string
	Description string
	// CategoryIDs are the product's categories AND their ancestors, so that a
	// filter or facet on a parent category covers its subtree.
	CategoryIDs []string
	// CategoryNames are the names of CategoryIDs (searchable text).
	CategoryNames []string
	// Attributes are the variants' titles and attribute values (searchable
	// text: "red", "XL", "128 GB").
	Attributes []string
	SKUs       []string
	// PriceMin and PriceMax are the cheapest and dearest variant prices in
	// minor units of Currency.
	PriceMin, PriceMax int64
	Currency           string
	// Rating is the average review rating (0 when RatingCount is 0).
	Rating      float64
	RatingCount int
	// InStock is true when some variant has available stock (true until
	// inventory exists).
	InStock bool
	// Channels are the sales channels the product is available on ("web").
	Channels  []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Sort orders a result.
type Sort string

// The sort orders. Ties are broken by product id, so pages never overlap.
const (
	SortRelevance Sort = "relevance" // best match first (newest when Text is empty)
	SortPriceAsc  Sort = "price_asc" // PriceMin ascending
	SortPriceDesc Sort = "price_desc"
	SortNewest    Sort = "newest" // CreatedAt descending
	SortRating    Sort = "rating" // Rating descending, then RatingCount descending
)

// Query is one search. The zero value lists every document, newest first.
type Query struct {
	// Text is the user's query, matched against title, description,
	// attributes, category names and SKUs; tolerant of small typos; English
	// and Chinese. It is text, never query syntax: operators of any query
	// language are matched as words. At most MaxTextLen runes.
	Text string
	// CategoryID keeps documents whose CategoryIDs hold it ("" = any).
	CategoryID string
	// MinPrice and MaxPrice keep documents whose PriceMin is within
	// [MinPrice, MaxPrice] (minor units); nil = unbounded.
	MinPrice, MaxPrice *int64
	// InStock, when set, keeps documents whose InStock equals it.
	InStock *bool
	// MinRating keeps documents rated at least this (0 = any).
	MinRating float64
	// Channel keeps documents available on it ("" = any).
	Channel string
	// Sort orders the hits ("" = SortRelevance).
	Sort Sort
	// Limit is the page size (1..MaxLimit; 0 = DefaultLimit).
	Limit int
	// Cursor continues after the page that returned it as NextCursor ("" =
	// the first page). A cursor is only valid with the same query.
	Cursor string
	// Facets asks for facet counts over every match (not only this page).
	Facets bool
}

// Limits of a Query.
const (
	MaxTextLen   = 200
	DefaultLimit = 20
	MaxLimit     = 100
)

// Hit is one matching document.
type Hit struct {
	ID    string
	Score float64
}

// Result is a page of hits.
type Result struct {
	Hits []Hit
	// Total is the number of matching documents (all pages).
	Total int
	// NextCursor continues with the next page; "" on the last one.
	NextCursor string
	// Facets are set when the Query asked for them.
	Facets *Facets
}

// Facets are counts over every match of a query, with the query's filters
// applied (a shopper narrows by clicking one). Lists are never nil.
type Facets struct {
	// Categories: matching documents per category id (ancestors included),
	// most first, at most 50.
	Categories []Count `json:"categories"`
	// Price: matching documents per PriceBuckets range, in bucket order,
	// empty buckets included.
	Price []PriceCount `json:"price"`
	// Rating: matching documents rated at least 4, 3, 2 and 1 ("4", "3",
	// "2", "1"), in that order.
	Rating []Count `json:"rating"`
	// InStock: matching documents in stock ("true") and not ("false").
	InStock []Count `json:"in_stock"`
}

// Count is one facet value and its number of matching documents.
type Count struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// PriceCount is one price range [Min, Max) in minor units (Max nil on the
// last, open range) and its number of matching documents.
type PriceCount struct {
	Min   int64  `json:"min"`
	Max   *int64 `json:"max,omitempty"`
	Count int    `json:"count"`
}

// PriceBuckets are the boundaries of the price facet's ranges, in minor
// units: [0,1000), [1000,2500), … [50000,∞).
var PriceBuckets = []int64{1000, 2500, 5000, 10000, 25000, 50000}

// ErrInvalidQuery is wrapped by Search's error for a query it refuses (text
// too long or not valid UTF-8, a bad cursor, an unknown sort, a limit out of
// range): a client's mistake, answered 422. Any other error is the index's.
var ErrInvalidQuery = errors.New("invalid search query")

// Index is a product search index. Implementations are safe for concurrent
// use; writes of one id are applied in call order, and a Search after a
// write returns sees it.
type Index interface {
	// Put adds or replaces documents (one batch: the cost of a write is per
	// call, not per document).
	Put(ctx context.Context, docs []Document) error
	// Delete removes the documents of ids; unknown ids are no error.
	Delete(ctx context.Context, ids []string) error
	// Search answers q. Bad queries wrap ErrInvalidQuery.
	Search(ctx context.Context, q Query) (Result, error)
	// Count is the number of documents in the index.
	Count(ctx context.Context) (int, error)
	// Close releases the index (files, connections).
	Close() error
}

// Source is the catalog as the index sees it.
type Source interface {
	// Documents returns the current documents of ids; an id missing from the
	// answer is not sellable any more (deleted, draft or archived) and must
	// leave the index.
	Documents(ctx context.Context, ids []string) ([]Document, error)
	// Scan calls fn with every sellable product's document, in batches of at
	// most batch, in id order.
	Scan(ctx context.Context, batch int, fn func([]Document) error) error
}
