// Package blevesearch is the embedded search.Index: a Bleve (scorch) index in
// a directory of its own under the data directory.
//
// # Mapping
//
// A document is indexed with a static mapping (nothing dynamic, no _all
// field). Title, description, attributes and category names are each
// indexed twice: with Bleve's English analyser ("en": possessives, stop
// words, Porter stemming) under their own name, and with its CJK analyser
// ("cjk": width folding, lowercase, bigrams of Han/kana/Hangul runs) under
// name_zh; title, category names and attributes once more into one field,
// words, with the CJK analyser (Latin words lowercase and unstemmed), where a
// word is matched fuzzily — one fuzzy automaton per word, not per field. SKUs are one lowercased token each (skus). Category ids and
// channels are keywords; price_min and rating are numbers (for range
// filters); in_stock is a boolean. Sorts and facets read keyword doc values:
// fixed-width digit strings of price, creation time and rating (+ count), a
// price-bucket index and the rating's floor — a number's doc values hold its
// sixteen precision terms, and decoding them for every match cost most of a
// faceted search. Nothing is stored: a hit carries only its id.
//
// # Matching
//
// See query.go: every word of the text must match (a Latin word in some
// English field as a stem, or in a CJK twin — where Latin words are kept
// lowercase and unstemmed — within its fuzziness; a CJK word by half its
// bigrams), or the whole text must be a SKU; exact phrases in the title and
// exact (unfuzzed) words score higher. The text is never parsed as Bleve
// query-string syntax.
package blevesearch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/lang/cjk"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/single"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/index/scorch/mergeplan"
	"github.com/blevesearch/bleve/v2/mapping"

	"mercato/internal/catalog/search"
	"mercato/internal/catalog/search/internal/plan"
	"mercato/internal/platform/errs"
)

// Name identifies this implementation (in cursors and logs).
const Name = "bleve"

// skuAnalyzer makes a SKU one lowercased token.
const skuAnalyzer = "sku"

// Index is the Bleve search.Index. Safe for concurrent use.
type Index struct {
	idx bleve.Index
	en  analysis.Analyzer
}

var _ search.Index = (*Index)(nil)

// Open opens the index under dir, creating it (and dir) when dir holds none
// (an existing empty dir is fine).
// An index created by another mapping version is reopened as it is; run
// search.Rebuild after changing the mapping.
func Open(dir string) (*Index, error) {
	const op = "blevesearch.Open"
	var idx bleve.Index
	if _, err := os.Stat(filepath.Join(dir, "index_meta.json")); err == nil {
		idx, err = bleve.Open(dir)
		if err != nil {
			return nil, errs.E(op, err)
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
			return nil, errs.E(op, err)
		}
		m, err := newMapping()
		if err != nil {
			return nil, errs.E(op, err)
		}
		idx, err = bleve.New(dir, m)
		if err != nil {
			return nil, errs.E(op, err)
		}
	}
	a := idx.Mapping().AnalyzerNamed(en.AnalyzerName)
	if a == nil {
		idx.Close()
		return nil, errs.E(op, errors.New("no English analyser"))
	}
	return &Index{idx: idx, en: a}, nil
}

// newMapping is the index mapping described in the package comment.
func newMapping() (*mapping.IndexMappingImpl, error) {
	im := bleve.NewIndexMapping()
	if err := im.AddCustomAnalyzer(skuAnalyzer, map[string]any{
		"type":          custom.Name,
		"tokenizer":     single.Name,
		"token_filters": []any{lowercase.Name},
	}); err != nil {
		return nil, err
	}
	dm := bleve.NewDocumentStaticMapping()
	text := func(name, analyzer string, vectors bool) *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Name, f.Analyzer = name, analyzer
		f.Store, f.IncludeInAll, f.DocValues = false, false, false
		f.IncludeTermVectors = vectors // phrase queries need positions
		return f
	}
	for _, name := range []string{fTitle, fDescription, fAttributes, fCategories} {
		vectors := name == fTitle
		fms := []*mapping.FieldMapping{text(name, en.AnalyzerName, vectors), text(name+zh, cjk.AnalyzerName, vectors)}
		if name != fDescription {
			fms = append(fms, text(fWords, cjk.AnalyzerName, false))
		}
		dm.AddFieldMappingsAt(name, fms...)
	}
	dm.AddFieldMappingsAt(fSKUs, text(fSKUs, skuAnalyzer, false))
	for _, name := range []string{fCategoryIDs, fChannels} {
		dm.AddFieldMappingsAt(name, text(name, keyword.Name, false))
	}
	// keywords read through doc values (sorts, facets): small, unlike a
	// number's sixteen precision terms
	for _, name := range []string{fSortPrice, fSortCreated, fSortRating, fPriceBucket, fRatingFloor} {
		f := text(name, keyword.Name, false)
		f.DocValues = true
		dm.AddFieldMappingsAt(name, f)
	}
	for _, name := range []string{fPrice, fRating} {
		f := bleve.NewNumericFieldMapping() // range filters only
		f.Store, f.IncludeInAll, f.DocValues = false, false, false
		dm.AddFieldMappingsAt(name, f)
	}
	b := bleve.NewBooleanFieldMapping()
	b.Store, b.IncludeInAll = false, false
	dm.AddFieldMappingsAt(fInStock, b)
	im.DefaultMapping = dm
	im.DefaultAnalyzer = en.AnalyzerName
	im.StoreDynamic, im.IndexDynamic, im.DocValuesDynamic = false, false, false
	return im, nil
}

// Field names.
const (
	fTitle       = "title"
	fDescription = "description"
	fAttributes  = "attributes"
	fCategories  = "categories"
	zh           = "_zh"   // suffix of a text field's CJK twin
	fWords       = "words" // title, categories, attributes: CJK analyser (fuzzy matches)
	fSKUs        = "skus"
	fCategoryIDs = "category_ids"
	fChannels    = "channels"
	fPrice       = "price_min"
	fRating      = "rating"
	fInStock     = "in_stock"
	fSortPrice   = "sort_price"   // PriceMin, 19 digits
	fSortCreated = "sort_created" // CreatedAt, unix µs biased by 2^63, 20 digits
	fSortRating  = "sort_rating"  // Rating×10⁸ (9 digits), RatingCount (10)
	fPriceBucket = "price_bucket" // index of PriceMin's PriceBuckets range
	fRatingFloor = "rating_floor" // ⌊Rating⌋: rating >= r iff ⌊rating⌋ >= r
)

// sortKeys are the keyword forms of d's sort values: fixed-width digits,
// so that string order is numeric order.
func sortKeys(d search.Document) (price, created, rating string) {
	price = fmt.Sprintf("%019d", d.PriceMin)
	created = fmt.Sprintf("%020d", uint64(d.CreatedAt.UnixMicro())^(1<<63))
	rating = fmt.Sprintf("%09d%010d", int64(math.Round(d.Rating*1e8)), min(d.RatingCount, 9_999_999_999))
	return price, created, rating
}

// priceBucket is the index of the PriceBuckets range holding p.
func priceBucket(p int64) int {
	i := 0
	for i < len(search.PriceBuckets) && p >= search.PriceBuckets[i] {
		i++
	}
	return i
}

// body is what Bleve indexes of d.
func body(d search.Document) map[string]any {
	skus := make([]string, len(d.SKUs))
	for i, s := range d.SKUs {
		skus[i] = strings.ToLower(s)
	}
	price, created, rating := sortKeys(d)
	return map[string]any{
		fTitle:       d.Title,
		fDescription: d.Description,
		fAttributes:  d.Attributes,
		fCategories:  d.CategoryNames,
		fSKUs:        skus,
		fCategoryIDs: d.CategoryIDs,
		fChannels:    d.Channels,
		fPrice:       float64(d.PriceMin),
		fRating:      d.Rating,
		fInStock:     d.InStock,
		fSortPrice:   price,
		fSortCreated: created,
		fSortRating:  rating,
		fPriceBucket: strconv.Itoa(priceBucket(d.PriceMin)),
		fRatingFloor: strconv.Itoa(int(math.Floor(d.Rating))),
	}
}

// Put adds or replaces docs in one Bleve batch.
func (x *Index) Put(ctx context.Context, docs []search.Document) error {
	const op = "blevesearch.Put"
	if err := ctx.Err(); err != nil {
		return errs.E(op, err)
	}
	docs, err := plan.CleanDocs(docs)
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return nil
	}
	b := x.idx.NewBatch()
	for _, d := range docs {
		if err := b.Index(d.ID, body(d)); err != nil {
			return errs.E(op, err)
		}
	}
	if err := x.idx.Batch(b); err != nil {
		return errs.E(op, err)
	}
	return nil
}

// Delete removes ids in one Bleve batch.
func (x *Index) Delete(ctx context.Context, ids []string) error {
	const op = "blevesearch.Delete"
	if err := ctx.Err(); err != nil {
		return errs.E(op, err)
	}
	ids = plan.CleanIDs(ids)
	if len(ids) == 0 {
		return nil
	}
	b := x.idx.NewBatch()
	for _, id := range ids {
		b.Delete(id)
	}
	if err := x.idx.Batch(b); err != nil {
		return errs.E(op, err)
	}
	return nil
}

// Count is the number of documents.
func (x *Index) Count(ctx context.Context) (int, error) {
	n, err := x.idx.DocCount()
	if err != nil {
		return 0, errs.E("blevesearch.Count", err)
	}
	return int(n), nil
}

// IDs returns the id of every document (search.Rebuild uses it to find the
// documents the source no longer has).
func (x *Index) IDs(ctx context.Context) ([]string, error) {
	const op = "blevesearch.IDs"
	n, err := x.idx.DocCount()
	if err != nil {
		return nil, errs.E(op, err)
	}
	req := bleve.NewSearchRequestOptions(bleve.NewMatchAllQuery(), int(n)+1, 0, false)
	req.SortBy([]string{"_id"})
	res, err := x.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, errs.E(op, err)
	}
	ids := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.ID
	}
	return ids, nil
}

// Compact merges the index's segments into one (search.Rebuild calls it
// when done): searches then decode one segment's doc values instead of many,
// and no background merge competes with them. It blocks until the merge is
// done or ctx ends.
func (x *Index) Compact(ctx context.Context) error {
	const op = "blevesearch.Compact"
	ai, err := x.idx.Advanced()
	if err != nil {
		return errs.E(op, err)
	}
	s, ok := ai.(*scorch.Scorch)
	if !ok {
		return nil
	}
	if err := s.ForceMerge(ctx, &mergeplan.SingleSegmentMergePlanOptions); err != nil {
		return errs.E(op, err)
	}
	return nil
}

// Close closes the index files.
func (x *Index) Close() error {
	if err := x.idx.Close(); err != nil {
		return errs.E("blevesearch.Close", err)
	}
	return nil
}
