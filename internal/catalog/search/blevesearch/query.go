package blevesearch

import (
	"context"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/lang/cjk"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"

	"mercato/internal/catalog/search"
	"mercato/internal/catalog/search/internal/plan"
	"mercato/internal/platform/errs"
)

// Field weights: a word in the title counts most, in the description least.
var textFields = []struct {
	name  string
	boost float64
}{{fTitle, 3}, {fCategories, 2}, {fAttributes, 1.5}, {fDescription, 0.5}}

const (
	fuzzyBoost   = 0.7 // a fuzzy match anywhere but the description
	prefixBoost  = 1   // the last word as a prefix of a title word
	skuWordBoost = 5   // a word equal to a SKU
	skuBoost     = 10  // the whole text equal to a SKU
	phraseBoost  = 5   // the whole text as a phrase of the title
)

// Search answers q.
func (x *Index) Search(ctx context.Context, q search.Query) (search.Result, error) {
	const op = "blevesearch.Search"
	p, err := plan.Make(Name, q)
	if err != nil {
		return search.Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return search.Result{}, errs.E(op, err)
	}
	order, kinds := sortOrder(p)
	req := bleve.NewSearchRequestOptions(x.query(p), p.Limit+1, 0, false)
	req.SortByCustom(order)
	if p.After != nil {
		if !validAfter(p.After, kinds) {
			return search.Result{}, plan.BadCursor()
		}
		req.SearchAfter = p.After
	}
	if p.Facets {
		addFacets(req)
	}
	res, err := x.idx.SearchInContext(ctx, req)
	if err != nil {
		return search.Result{}, errs.E(op, err)
	}
	out := search.Result{Total: int(res.Total), Hits: make([]search.Hit, 0, min(len(res.Hits), p.Limit))}
	for i, h := range res.Hits {
		if i == p.Limit {
			out.NextCursor = p.Cursor(afterOf(res.Hits[i-1], kinds))
			break
		}
		out.Hits = append(out.Hits, search.Hit{ID: h.ID, Score: h.Score})
	}
	if p.Facets {
		out.Facets = facets(res.Facets)
	}
	return out, nil
}

// query is the Bleve query of p: the text's (or every document) and the
// filters, which add nothing to the score.
func (x *Index) query(p plan.Plan) query.Query {
	must := []query.Query{x.textQuery(p)}
	filter := func(q interface {
		query.Query
		SetBoost(float64)
	}) {
		q.SetBoost(0)
		must = append(must, q)
	}
	if p.CategoryID != "" {
		filter(term(fCategoryIDs, p.CategoryID, 0))
	}
	if p.Channel != "" {
		filter(term(fChannels, p.Channel, 0))
	}
	if p.MinPrice != nil || p.MaxPrice != nil {
		var lo, hi *float64
		if p.MinPrice != nil {
			v := float64(*p.MinPrice)
			lo = &v
		}
		if p.MaxPrice != nil {
			v := float64(*p.MaxPrice)
			hi = &v
		}
		yes := true
		r := query.NewNumericRangeInclusiveQuery(lo, hi, &yes, &yes)
		r.SetField(fPrice)
		filter(r)
	}
	if p.InStock != nil {
		b := query.NewBoolFieldQuery(*p.InStock)
		b.SetField(fInStock)
		filter(b)
	}
	if p.MinRating > 0 {
		yes := true
		r := query.NewNumericRangeInclusiveQuery(&p.MinRating, nil, &yes, nil)
		r.SetField(fRating)
		filter(r)
	}
	if len(must) == 1 {
		return must[0]
	}
	return query.NewConjunctionQuery(must)
}

// textQuery matches p's text: every word (stop words aside) in some field,
// or the whole text as a SKU; the title phrase scores on top.
func (x *Index) textQuery(p plan.Plan) query.Query {
	if len(p.Words) == 0 {
		return query.NewMatchAllQuery()
	}
	var words []query.Query
	for i, w := range p.Words {
		switch {
		case w.CJK:
			words = append(words, cjkWord(w))
		case len(x.en.Analyze([]byte(w.Text))) == 0:
			// a stop word ("the", "for"): matched by the phrase boost only
		default:
			words = append(words, latinWord(w, i == len(p.Words)-1))
		}
	}
	if len(words) == 0 {
		return query.NewMatchAllQuery()
	}
	var all query.Query = query.NewConjunctionQuery(words)
	if len(words) == 1 {
		all = words[0]
	}
	match := query.NewDisjunctionQuery([]query.Query{all, term(fSKUs, p.Raw, skuBoost)})
	// the phrase in the title: Latin words in the English title, CJK ones
	// (bigrams) in its CJK twin, where a mixed text is matched too
	phraseField := fTitle
	for _, w := range p.Words {
		if w.CJK {
			phraseField = fTitle + zh
		}
	}
	ph := query.NewMatchPhraseQuery(p.Text)
	ph.SetField(phraseField)
	ph.SetBoost(phraseBoost)
	should := []query.Query{ph}
	b := query.NewBooleanQuery([]query.Query{match}, nil, nil)
	b.AddShould(should...)
	return b
}

// latinWord matches w in any English field, exactly or (weaker) within its
// fuzziness, as a SKU, and — the last word, being typed — as a prefix.
func latinWord(w plan.Word, last bool) query.Query {
	var qs []query.Query
	fuzz := w.Fuzziness()
	for _, f := range textFields {
		qs = append(qs, match(f.name, en.AnalyzerName, w.Text, 0, f.boost))
	}
	if fuzz > 0 {
		// fuzzy on unstemmed words (the stem of a misspelt word, "wireles" →
		// "wirel", is too far from the right one's, "wireless"), not in
		// descriptions, whose many words would add noise and time
		qs = append(qs, match(fWords, cjk.AnalyzerName, w.Text, fuzz, fuzzyBoost))
	}
	qs = append(qs, term(fSKUs, w.Text, skuWordBoost))
	if last && len([]rune(w.Text)) >= 3 {
		pq := query.NewPrefixQuery(w.Text)
		pq.SetField(fTitle + zh) // unstemmed words
		pq.SetBoost(prefixBoost)
		qs = append(qs, pq)
	}
	return query.NewDisjunctionQuery(qs)
}

// cjkWord matches w when a document holds at least half its bigrams, each
// in any CJK field.
func cjkWord(w plan.Word) query.Query {
	grams := make([]query.Query, 0, len(w.Grams))
	for _, g := range w.Grams {
		in := make([]query.Query, 0, len(textFields))
		for _, f := range textFields {
			in = append(in, term(f.name+zh, g, f.boost))
		}
		grams = append(grams, query.NewDisjunctionQuery(in))
	}
	d := query.NewDisjunctionQuery(grams)
	d.SetMin(float64(w.MinGrams()))
	return d
}

func match(field, analyzer, text string, fuzz int, boost float64) *query.MatchQuery {
	m := query.NewMatchQuery(text)
	m.SetField(field)
	m.Analyzer = analyzer
	m.SetFuzziness(fuzz)
	m.SetBoost(boost)
	return m
}

func term(field, text string, boost float64) *query.TermQuery {
	t := query.NewTermQuery(text)
	t.SetField(field)
	t.SetBoost(boost)
	return t
}

// sortKind says how a sort value is written into a cursor.
type sortKind int

const (
	kScore sortKind = iota
	kKey            // a fixed-width digit string (sortKeys)
	kID
)

// sortOrder is p's order, always ending with the id.
func sortOrder(p plan.Plan) (bsearch.SortOrder, []sortKind) {
	key := func(field string, desc bool) bsearch.SortOrder {
		return bsearch.SortOrder{&bsearch.SortField{Field: field, Type: bsearch.SortFieldAsString, Desc: desc}}
	}
	o, k := key(fSortCreated, true), kKey // newest, and relevance without text
	switch {
	case p.Relevance():
		o, k = bsearch.SortOrder{&bsearch.SortScore{Desc: true}}, kScore
	case p.Sort == search.SortPriceAsc:
		o = key(fSortPrice, false)
	case p.Sort == search.SortPriceDesc:
		o = key(fSortPrice, true)
	case p.Sort == search.SortRating:
		o = key(fSortRating, true)
	}
	return append(o, &bsearch.SortDocID{}), []sortKind{k, kID}
}

// afterOf is the cursor's sort values of hit h.
func afterOf(h *bsearch.DocumentMatch, kinds []sortKind) []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		switch k {
		case kScore:
			out[i] = strconv.FormatFloat(h.Score, 'g', -1, 64)
		case kID:
			out[i] = h.ID
		default:
			out[i] = h.Sort[i]
		}
	}
	return out
}

// validAfter checks a cursor's values before Bleve reads them.
func validAfter(after []string, kinds []sortKind) bool {
	if len(after) != len(kinds) {
		return false
	}
	for i, k := range kinds {
		switch k {
		case kScore:
			f, err := strconv.ParseFloat(after[i], 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return false
			}
		case kKey:
			if strings.Trim(after[i], "0123456789") != "" {
				return false
			}
		}
	}
	return true
}

// Facet names in a request.
const (
	facetCategories = "categories"
	facetPrice      = "price"
	facetRating     = "rating"
	facetInStock    = "in_stock"
	// categoryFacetSize is asked of Bleve so that the top 50 are cut here,
	// with ties broken by id.
	categoryFacetSize = 1000
)

func addFacets(req *bleve.SearchRequest) {
	req.AddFacet(facetCategories, bleve.NewFacetRequest(fCategoryIDs, categoryFacetSize))
	req.AddFacet(facetPrice, bleve.NewFacetRequest(fPriceBucket, len(search.PriceBuckets)+1))
	req.AddFacet(facetRating, bleve.NewFacetRequest(fRatingFloor, 6)) // floors 0..5
	req.AddFacet(facetInStock, bleve.NewFacetRequest(fInStock, 2))
}

func facets(res bsearch.FacetResults) *search.Facets {
	f := plan.EmptyFacets()
	if c := res[facetCategories]; c != nil {
		for _, t := range c.Terms.Terms() {
			f.Categories = append(f.Categories, search.Count{Value: t.Term, Count: t.Count})
		}
		sort.Slice(f.Categories, func(i, j int) bool {
			a, b := f.Categories[i], f.Categories[j]
			return a.Count > b.Count || a.Count == b.Count && a.Value < b.Value
		})
		if len(f.Categories) > plan.MaxCategoryFacets {
			f.Categories = f.Categories[:plan.MaxCategoryFacets]
		}
	}
	if p := res[facetPrice]; p != nil {
		for _, t := range p.Terms.Terms() {
			if i, err := strconv.Atoi(t.Term); err == nil && i >= 0 && i < len(f.Price) {
				f.Price[i].Count = t.Count
			}
		}
	}
	if r := res[facetRating]; r != nil {
		// rated at least n: the documents whose floor is n or more
		for _, t := range r.Terms.Terms() {
			floor, err := strconv.Atoi(t.Term)
			if err != nil {
				continue
			}
			for i, n := range plan.RatingThresholds {
				if floor >= n {
					f.Rating[i].Count += t.Count
				}
			}
		}
	}
	if s := res[facetInStock]; s != nil {
		for _, t := range s.Terms.Terms() {
			switch t.Term {
			case "T":
				f.InStock[0].Count = t.Count
			case "F":
				f.InStock[1].Count = t.Count
			}
		}
	}
	return f
}
