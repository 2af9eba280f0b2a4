package catalog

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"mercato/internal/catalog/search"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/web"
)

// Filter selects products of a list.
type Filter struct {
	Public   bool   // active products only (and the public's parameters)
	Status   string // staff: one status ("" = any)
	Category string // the category or any of its descendants ("" = any)
	Q        string // staff: a substring of the title or a SKU; public: the search text
	Channel  string // "" = any
	MinPrice *int64 // the cheapest variant's price, minor units
	MaxPrice *int64
	InStock  *bool
	Sort     string // public search only: a search.Sort
	Page     web.PageRequest
}

// ProductList is a page of products; Facets are set for a search.
type ProductList struct {
	Items      []PublicProduct `json:"items"`
	NextCursor string          `json:"next_cursor,omitempty"`
	Facets     *search.Facets  `json:"facets,omitempty"`
}

// StaffList is a page of products of any status.
type StaffList = web.Page[Product]

// productCursor is where a database page starts: after this id (newest first).
type productCursor struct {
	ID string `json:"i"`
}

// ParseFilter reads a list's query parameters; every bad value is a 422
// naming its parameter.
func ParseFilter(q url.Values, public bool) (Filter, error) {
	f := Filter{Public: public, Category: q.Get("category"), Q: strings.TrimSpace(q.Get("q")), Channel: q.Get("channel"), Sort: q.Get("sort")}
	var v errs.Validation
	if utf8.RuneCountInString(f.Q) > search.MaxTextLen {
		v.Add("q", "must be at most "+strconv.Itoa(search.MaxTextLen)+" characters")
	}
	if len(f.Category) > 64 {
		v.Add("category", "is not a category id")
	}
	if f.Channel != "" && !codeRE.MatchString(f.Channel) {
		v.Add("channel", "must be a channel code")
	}
	for _, p := range []struct {
		name string
		dst  **int64
	}{{"min_price", &f.MinPrice}, {"max_price", &f.MaxPrice}} {
		if s := q.Get(p.name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 || !allDigits(s) {
				v.Add(p.name, "must be a non-negative integer amount in minor units")
				continue
			}
			*p.dst = &n
		}
	}
	if s := q.Get("in_stock"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil || (s != "true" && s != "false") {
			v.Add("in_stock", "must be true or false")
		} else {
			f.InStock = &b
		}
	}
	if public {
		if s := q.Get("sort"); s != "" && f.Q == "" {
			v.Add("sort", "applies to a search (with q)")
		}
	} else {
		f.Status = q.Get("status")
		if f.Status != "" && f.Status != StatusDraft && f.Status != StatusActive && f.Status != StatusArchived {
			v.Add("status", "must be draft, active or archived")
		}
	}
	if f.MinPrice != nil && f.MaxPrice != nil && *f.MinPrice > *f.MaxPrice {
		v.Add("max_price", "must not be below min_price")
	}
	return f, v.Err("catalog.ParseFilter")
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// listIDs runs a database list: the ids of the page (newest first) and the
// next page's cursor.
func (s *Service) listIDs(ctx context.Context, f Filter) ([]string, string, error) {
	const op = "catalog.list"
	var after productCursor
	paged, err := f.Page.After(&after)
	if err != nil {
		return nil, "", err
	}
	q := s.db.Reader()
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	switch {
	case f.Public:
		where = append(where, "p.status = 'active'")
	case f.Status != "":
		where = append(where, "p.status = "+arg(f.Status))
	}
	if f.Public && f.InStock != nil && !*f.InStock {
		return []string{}, "", nil // every product is in stock until inventory exists
	}
	if f.Category != "" {
		t, err := loadTree(ctx, q)
		if err != nil {
			return nil, "", err
		}
		if _, ok := t.byID[f.Category]; !ok {
			return []string{}, "", nil
		}
		sub := t.subtree(f.Category)
		ph := make([]string, len(sub))
		for i, c := range sub {
			ph[i] = arg(c)
		}
		where = append(where, "EXISTS (SELECT 1 FROM catalog_product_categories pc WHERE pc.product_id = p.id AND pc.category_id IN ("+
			strings.Join(ph, ", ")+"))")
	}
	if f.Channel != "" {
		where = append(where, "EXISTS (SELECT 1 FROM catalog_product_channels ch WHERE ch.product_id = p.id AND ch.channel = "+arg(f.Channel)+")")
	}
	if f.MinPrice != nil {
		where = append(where, "p.price_min >= "+arg(*f.MinPrice))
	}
	if f.MaxPrice != nil {
		where = append(where, "p.price_min <= "+arg(*f.MaxPrice))
	}
	if f.Q != "" {
		pat := arg(likePattern(f.Q))
		where = append(where, "(lower(p.title) LIKE "+pat+` ESCAPE '\' OR EXISTS (SELECT 1 FROM catalog_variants v
			WHERE v.product_id = p.id AND lower(v.sku) LIKE `+pat+` ESCAPE '\'))`)
	}
	if paged {
		where = append(where, "p.id < "+arg(after.ID))
	}
	query := "SELECT p.id FROM catalog_products p"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY p.id DESC LIMIT " + arg(f.Page.Limit+1)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", internal(op, err)
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, "", internal(op, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, "", internal(op, err)
	}
	page := web.NewPage(ids, f.Page.Limit, func(last string) any { return productCursor{ID: last} })
	return page.Items, page.NextCursor, nil
}

// likePattern turns a search string into a case-insensitive LIKE pattern
// matching it anywhere ("\" escapes).
func likePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(q)) + "%"
}

// ListProducts is the staff list: products of any status matching f.
func (s *Service) ListProducts(ctx context.Context, f Filter) (StaffList, error) {
	f.Public = false
	ids, next, err := s.listIDs(ctx, f)
	if err != nil {
		return StaffList{}, err
	}
	ps, err := loadProducts(ctx, s.db.Reader(), ids, false)
	if err != nil {
		return StaffList{}, err
	}
	out := StaffList{Items: []Product{}, NextCursor: next}
	for _, id := range ids {
		if p, ok := ps[id]; ok {
			out.Items = append(out.Items, p)
		}
	}
	return out, nil
}

// errSearchRefused is the answer to a query the index refuses.
var errSearchRefused = errs.E("catalog.search", errs.Invalid, errs.CodeValidation, "the search query is not valid",
	[]errs.FieldError{{Field: "q", Message: "is not a query the search accepts (too long, bad characters, or a cursor or sort it did not make)"}})

// PublicProducts is the public list: active products matching f, newest
// first from the database, or — with a search text or an in_stock filter,
// and an index — the index's hits (with facets), hydrated from the database so that a hit no
// longer active is dropped.
func (s *Service) PublicProducts(ctx context.Context, f Filter) (ProductList, error) {
	f.Public = true
	// Stock lives in the inventory module: the index knows it, the
	// catalog's tables do not, so an in_stock filter asks the index too.
	if (f.Q != "" || f.InStock != nil) && s.cfg.Index != nil {
		return s.search(ctx, f)
	}
	ids, next, err := s.listIDs(ctx, f)
	if err != nil {
		return ProductList{}, err
	}
	items, err := s.hydrate(ctx, ids)
	return ProductList{Items: items, NextCursor: next}, err
}

func (s *Service) search(ctx context.Context, f Filter) (ProductList, error) {
	res, err := s.cfg.Index.Search(ctx, search.Query{Text: f.Q, CategoryID: f.Category, MinPrice: f.MinPrice,
		MaxPrice: f.MaxPrice, InStock: f.InStock, Channel: f.Channel, Sort: search.Sort(f.Sort), Limit: f.Page.Limit,
		Cursor: f.Page.Cursor, Facets: true})
	if errors.Is(err, search.ErrInvalidQuery) {
		return ProductList{}, errSearchRefused
	}
	if err != nil {
		return ProductList{}, errs.E("catalog.search", errs.Unavailable, "the search is unavailable", err)
	}
	ids := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.ID
	}
	items, err := s.hydrate(ctx, ids)
	if err != nil {
		return ProductList{}, err
	}
	out := ProductList{Items: items, NextCursor: res.NextCursor, Facets: res.Facets}
	if out.Facets == nil {
		out.Facets = &search.Facets{Categories: []search.Count{}, Price: []search.PriceCount{}, Rating: []search.Count{}, InStock: []search.Count{}}
	}
	return out, nil
}

// hydrate loads the active products of ids, in ids' order, with ratings.
func (s *Service) hydrate(ctx context.Context, ids []string) ([]PublicProduct, error) {
	ps, err := loadProducts(ctx, s.db.Reader(), ids, true)
	if err != nil {
		return nil, err
	}
	ratings, err := s.ratings(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]PublicProduct, 0, len(ids))
	for _, id := range ids {
		if p, ok := ps[id]; ok {
			out = append(out, PublicProduct{Product: p, Rating: ratings[id]})
		}
	}
	return out, nil
}
