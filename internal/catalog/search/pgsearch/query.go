package pgsearch

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"mercato/internal/catalog/search"
	"mercato/internal/catalog/search/internal/plan"
	"mercato/internal/platform/errs"
)

// Score weights, in the spirit of the Bleve index's boosts.
const (
	wordWeight    = 3   // ts_rank of a word (title-weighted)
	fuzzyWeight   = 0.5 // word similarity of a word with the title
	titleGram     = 3   // a CJK bigram in the title
	textGram      = 1   // a CJK bigram anywhere
	phraseWeight  = 5   // the whole text in the title
	skuWeight     = 10  // the whole text is a SKU
	similarityMin = "0.5"
)

// statement builds one SQL text and its arguments.
type statement struct {
	args []any
}

// arg binds v and returns its placeholder.
func (s *statement) arg(v any) string {
	s.args = append(s.args, v)
	return "$" + strconv.Itoa(len(s.args))
}

// where is the condition of p (filters and text) and score its score; the
// condition uses the first n arguments only (the rest are the score's).
// stop[i] reports that word i is an English stop word (dropped).
func (x *Index) where(s *statement, p plan.Plan, stop []bool) (where, score string, n int) {
	var conds []string
	if p.CategoryID != "" {
		conds = append(conds, "category_ids @> ARRAY["+s.arg(p.CategoryID)+"::text]")
	}
	if p.Channel != "" {
		conds = append(conds, "channels @> ARRAY["+s.arg(p.Channel)+"::text]")
	}
	if p.MinPrice != nil {
		conds = append(conds, "price_min >= "+s.arg(*p.MinPrice))
	}
	if p.MaxPrice != nil {
		conds = append(conds, "price_min <= "+s.arg(*p.MaxPrice))
	}
	if p.InStock != nil {
		conds = append(conds, "in_stock = "+s.arg(*p.InStock))
	}
	if p.MinRating > 0 {
		conds = append(conds, "rating >= "+s.arg(p.MinRating))
	}
	score, n = "0::float8", len(s.args)
	if len(p.Words) == 0 {
		return and(conds), score, n
	}
	var words, scores []string
	for i, w := range p.Words {
		if w.CJK {
			g := s.arg(w.Grams)
			cond := "grams && " + g + "::text[]"
			held := "(SELECT count(*) FROM unnest(" + g + "::text[]) AS g WHERE g = ANY(grams))"
			if w.MinGrams() > 1 {
				cond += fmt.Sprintf(" AND %s >= %d", held, w.MinGrams())
			}
			words = append(words, "SELECT id FROM search_documents WHERE "+cond)
			inTitle := "(SELECT count(*) FROM unnest(" + g + "::text[]) AS g WHERE strpos(title_l, g) > 0)"
			scores = append(scores, fmt.Sprintf("(%d * %s + %d * %s)::float8 / %d", titleGram, inTitle, textGram, held, len(w.Grams)))
			continue
		}
		if stop[i] {
			continue
		}
		a := s.arg(w.Text)
		tsq := "plainto_tsquery('english', " + a + ")"
		set := "SELECT id FROM search_documents WHERE tsv @@ " + tsq
		scores = append(scores, fmt.Sprintf("%d * ts_rank('{0.1, 0.2, 0.4, 1.0}', tsv, %s)::float8", wordWeight, tsq))
		if w.Fuzziness() > 0 {
			set += " UNION SELECT id FROM search_documents WHERE " + a + " OPERATOR(" + x.trgm + ".<%) words"
			scores = append(scores, fmt.Sprintf("%g * %s.word_similarity(%s, title_l)", fuzzyWeight, x.trgm, a))
		}
		words = append(words, set)
	}
	if len(words) > 0 { // not only stop words
		// the ids of every word's matches, intersected, and a SKU's: each
		// part one condition a GIN index answers (an OR of them in one
		// WHERE makes the planner scan the table)
		sku := "skus @> ARRAY[" + s.arg(p.Raw) + "::text]"
		conds = append(conds, "id IN (("+strings.Join(parens(words), " INTERSECT ")+") UNION SELECT id FROM search_documents WHERE "+sku+")")
		scores = append(scores, fmt.Sprintf("%d * (%s)::int", skuWeight, sku))
	}
	n = len(s.args)
	scores = append(scores, fmt.Sprintf("%d * (strpos(title_l, %s) > 0)::int", phraseWeight, s.arg(p.Text)))
	return and(conds), "(" + strings.Join(scores, " + ") + ")::float8", n
}

func parens(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "(" + s + ")"
	}
	return out
}

func and(conds []string) string {
	if len(conds) == 0 {
		return "TRUE"
	}
	return strings.Join(conds, " AND ")
}

// stopWords reports which of p's Latin words PostgreSQL's English
// configuration drops (CJK words never).
func stopWords(ctx context.Context, tx *sql.Tx, p plan.Plan) ([]bool, error) {
	stop := make([]bool, len(p.Words))
	var latin []string
	for _, w := range p.Words {
		if !w.CJK {
			latin = append(latin, w.Text)
		}
	}
	if len(latin) == 0 {
		return stop, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT numnode(plainto_tsquery('english', w)) = 0
		FROM unnest($1::text[]) WITH ORDINALITY AS t(w, i) ORDER BY i`, latin)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var got []bool
	for rows.Next() {
		var b bool
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		got = append(got, b)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(got) != len(latin) {
		return nil, fmt.Errorf("stop words: %d answers for %d words", len(got), len(latin))
	}
	j := 0
	for i, w := range p.Words {
		if !w.CJK {
			stop[i] = got[j]
			j++
		}
	}
	return stop, nil
}

// order is p's sort: the ORDER BY, the columns a cursor holds (id last)
// and, given a cursor's placeholders, the condition of the rows after it.
func order(p plan.Plan) (by string, cols []string, after func(ph []string) string) {
	type col struct {
		name string
		desc bool
	}
	var cs []col
	switch {
	case p.Relevance():
		cs = []col{{"score", true}}
	case p.Sort == search.SortPriceAsc:
		cs = []col{{"price_min", false}}
	case p.Sort == search.SortPriceDesc:
		cs = []col{{"price_min", true}}
	case p.Sort == search.SortRating:
		cs = []col{{"rating", true}, {"rating_count", true}}
	default:
		cs = []col{{"created_at", true}}
	}
	cs = append(cs, col{"id", false})
	var parts []string
	for _, c := range cs {
		cols = append(cols, c.name)
		if c.desc {
			parts = append(parts, c.name+" DESC")
		} else {
			parts = append(parts, c.name)
		}
	}
	after = func(ph []string) string {
		// (a, b, id) after (x, y, z): a beyond x, or a = x and (b beyond y, or …)
		cond := ""
		for i := len(cs) - 1; i >= 0; i-- {
			op := ">"
			if cs[i].desc {
				op = "<"
			}
			beyond := cs[i].name + " " + op + " " + ph[i]
			if cond == "" {
				cond = beyond
			} else {
				cond = "(" + beyond + " OR (" + cs[i].name + " = " + ph[i] + " AND " + cond + "))"
			}
		}
		return cond
	}
	return strings.Join(parts, ", "), cols, after
}

// cursorArg reads a cursor value of column col.
func cursorArg(col, v string) (any, bool) {
	switch col {
	case "id":
		return v, true
	case "score", "rating":
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	default:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
}

// Search answers q in one read-only transaction.
func (x *Index) Search(ctx context.Context, q search.Query) (search.Result, error) {
	const op = "pgsearch.Search"
	p, err := plan.Make(Name, q)
	if err != nil {
		return search.Result{}, err
	}
	tx, err := x.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return search.Result{}, errs.E(op, err)
	}
	defer tx.Rollback()
	// enable_seqscan off: the planner prices a row's word similarity far
	// below its cost and would scan the table rather than the trigram index
	// (350 ms against 15 ms on 30,000 documents); jit off: the inflated
	// costs would make it compile every search (200 ms)
	if _, err := tx.ExecContext(ctx, `SELECT set_config('pg_trgm.word_similarity_threshold', '`+similarityMin+`', true),
		set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)`); err != nil {
		return search.Result{}, errs.E(op, err)
	}
	stop, err := stopWords(ctx, tx, p)
	if err != nil {
		return search.Result{}, errs.E(op, err)
	}
	var s statement
	where, score, _ := x.where(&s, p, stop)
	by, cols, after := order(p)
	page := ""
	if p.After != nil {
		if len(p.After) != len(cols) {
			return search.Result{}, plan.BadCursor()
		}
		ph := make([]string, len(cols))
		for i, c := range cols {
			v, ok := cursorArg(c, p.After[i])
			if !ok {
				return search.Result{}, plan.BadCursor()
			}
			ph[i] = s.arg(v)
		}
		page = " WHERE " + after(ph)
	}
	// One statement: the matches once (materialised), their count and
	// facets, and the page.
	aggs, dest, f := aggregates(p)
	var res search.Result
	dest = append([]any{&res.Total}, dest...)
	cats, catsJSON := "", ""
	if p.Facets {
		cats = fmt.Sprintf(`, c AS (SELECT coalesce(json_agg(json_build_array(c, n) ORDER BY n DESC, c COLLATE "C"), '[]'::json) AS cats
			FROM (SELECT c, count(*) AS n FROM m, unnest(category_ids) AS c GROUP BY c ORDER BY n DESC, c COLLATE "C" LIMIT %d) x)`,
			plan.MaxCategoryFacets)
		dest = append(dest, &catsJSON)
	}
	stmt := fmt.Sprintf(`WITH m AS MATERIALIZED (SELECT id, price_min, rating, rating_count, created_at, in_stock, category_ids,
			%s AS score FROM search_documents WHERE %s),
		t AS (SELECT %s FROM m)%s,
		h AS (SELECT %s, row_number() OVER (ORDER BY %s) AS rn FROM m%s ORDER BY %s LIMIT %d)
		SELECT t.*%s, h.* FROM t%s LEFT JOIN h ON true ORDER BY h.rn`,
		score, where, strings.Join(aggs, ", "), cats,
		strings.Join(cols, ", "), by, page, by, p.Limit+1,
		map[bool]string{true: ", c.cats"}[p.Facets], map[bool]string{true: " CROSS JOIN c"}[p.Facets])
	rows, err := tx.QueryContext(ctx, stmt, s.args...)
	if err != nil {
		return search.Result{}, errs.E(op, err)
	}
	defer rows.Close()
	var last []string
	for rows.Next() {
		var id sql.NullString
		var sc, fl sql.NullFloat64
		var num, rc, rn sql.NullInt64
		vals := slices.Clone(dest)
		for _, c := range cols {
			switch c {
			case "id":
				vals = append(vals, &id)
			case "score":
				vals = append(vals, &sc)
			case "rating":
				vals = append(vals, &fl)
			case "rating_count":
				vals = append(vals, &rc)
			default:
				vals = append(vals, &num)
			}
		}
		if err := rows.Scan(append(vals, &rn)...); err != nil {
			return search.Result{}, errs.E(op, err)
		}
		if !id.Valid { // no match on this page: the counts alone
			break
		}
		if len(res.Hits) == p.Limit {
			res.NextCursor = p.Cursor(last)
			break
		}
		res.Hits = append(res.Hits, search.Hit{ID: id.String, Score: sc.Float64})
		last = last[:0:0]
		for _, c := range cols {
			switch c {
			case "id":
				last = append(last, id.String)
			case "score":
				last = append(last, strconv.FormatFloat(sc.Float64, 'g', -1, 64))
			case "rating":
				last = append(last, strconv.FormatFloat(fl.Float64, 'g', -1, 64))
			case "rating_count":
				last = append(last, strconv.FormatInt(rc.Int64, 10))
			default:
				last = append(last, strconv.FormatInt(num.Int64, 10))
			}
		}
	}
	if err := rows.Err(); err != nil {
		return search.Result{}, errs.E(op, err)
	}
	if res.Hits == nil {
		res.Hits = []search.Hit{}
	}
	if p.Facets {
		var pairs [][2]json.RawMessage
		if err := json.Unmarshal([]byte(catsJSON), &pairs); err != nil {
			return search.Result{}, errs.E(op, err)
		}
		for _, pr := range pairs {
			var c search.Count
			if err := json.Unmarshal(pr[0], &c.Value); err != nil {
				return search.Result{}, errs.E(op, err)
			}
			if err := json.Unmarshal(pr[1], &c.Count); err != nil {
				return search.Result{}, errs.E(op, err)
			}
			f.Categories = append(f.Categories, c)
		}
		res.Facets = f
	}
	return res, nil
}

// aggregates are the count and, when p asks, the facet counts over m, with
// where each is scanned to (f's counts).
func aggregates(p plan.Plan) (aggs []string, dest []any, f *search.Facets) {
	aggs = []string{"count(*)"}
	if !p.Facets {
		return aggs, nil, nil
	}
	f = plan.EmptyFacets()
	for i := range f.Price {
		c := fmt.Sprintf("price_min >= %d", f.Price[i].Min)
		if f.Price[i].Max != nil {
			c += fmt.Sprintf(" AND price_min < %d", *f.Price[i].Max)
		}
		aggs = append(aggs, "count(*) FILTER (WHERE "+c+")")
		dest = append(dest, &f.Price[i].Count)
	}
	for i, r := range plan.RatingThresholds {
		aggs = append(aggs, fmt.Sprintf("count(*) FILTER (WHERE rating >= %d)", r))
		dest = append(dest, &f.Rating[i].Count)
	}
	aggs = append(aggs, "count(*) FILTER (WHERE in_stock)", "count(*) FILTER (WHERE NOT in_stock)")
	dest = append(dest, &f.InStock[0].Count, &f.InStock[1].Count)
	return aggs, dest, f
}
