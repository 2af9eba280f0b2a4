package catalog

import (
	"context"
	"slices"

	"mercato/internal/catalog/search"
	"mercato/internal/money"
	"mercato/internal/platform/sqldb"
)

// The Service is the index's search.Source.
var _ search.Source = (*Service)(nil)

// Documents returns the search documents of the ids that are active
// products; the others are missing from the answer (they must leave the
// index).
func (s *Service) Documents(ctx context.Context, ids []string) ([]search.Document, error) {
	q := s.db.Reader()
	ps, err := loadProducts(ctx, q, ids, true)
	if err != nil || len(ps) == 0 {
		return []search.Document{}, err
	}
	return s.documents(ctx, q, ps)
}

// Scan calls fn with every active product's document, in batches of at
// most batch, in id order.
func (s *Service) Scan(ctx context.Context, batch int, fn func([]search.Document) error) error {
	if batch <= 0 {
		batch = 500
	}
	q := s.db.Reader()
	after := ""
	for {
		rows, err := q.QueryContext(ctx, `SELECT id FROM catalog_products WHERE status = 'active' AND id > $1 ORDER BY id LIMIT $2`, after, batch)
		if err != nil {
			return internal("catalog.Scan", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return internal("catalog.Scan", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return internal("catalog.Scan", err)
		}
		if len(ids) == 0 {
			return nil
		}
		ps, err := loadProducts(ctx, q, ids, true)
		if err != nil {
			return err
		}
		docs, err := s.documents(ctx, q, ps)
		if err != nil {
			return err
		}
		if len(docs) > 0 {
			if err := fn(docs); err != nil {
				return err
			}
		}
		after = ids[len(ids)-1]
	}
}

// documents builds the documents of ps, sorted by id.
func (s *Service) documents(ctx context.Context, q querier, ps map[string]Product) ([]search.Document, error) {
	t, err := loadTree(ctx, q)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(ps))
	for id := range ps {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ratings, err := s.ratings(ctx, ids)
	if err != nil {
		return nil, err
	}
	inStock, err := s.inStock(ctx, ps)
	if err != nil {
		return nil, err
	}
	out := make([]search.Document, 0, len(ids))
	for _, id := range ids {
		p := ps[id]
		lo, hi, cur := priceRange(p.Variants)
		d := search.Document{ID: p.ID, Title: p.Title, Description: p.Description, CategoryIDs: t.withAncestors(p.CategoryIDs),
			CategoryNames: []string{}, Attributes: []string{}, SKUs: []string{}, PriceMin: lo, PriceMax: hi, Currency: cur,
			Rating: ratings[id].Average, RatingCount: ratings[id].Count, InStock: inStock(p), Channels: slices.Clone(p.Channels),
			CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
		for _, c := range d.CategoryIDs {
			if cat, ok := t.byID[c]; ok {
				d.CategoryNames = append(d.CategoryNames, cat.Name)
			}
		}
		for _, v := range p.Variants {
			d.SKUs = append(d.SKUs, v.SKU)
			if v.Title != "" {
				d.Attributes = append(d.Attributes, v.Title)
			}
			for _, k := range sortedKeys(v.Attributes) {
				d.Attributes = append(d.Attributes, v.Attributes[k])
			}
		}
		d.Attributes = dedupe(d.Attributes)
		out = append(out, d)
	}
	return out, nil
}

// ratings asks the RatingSource (none: no ratings).
func (s *Service) ratings(ctx context.Context, ids []string) (map[string]Rating, error) {
	if s.cfg.Ratings == nil || len(ids) == 0 {
		return map[string]Rating{}, nil
	}
	r, err := s.cfg.Ratings.Ratings(ctx, ids)
	if err != nil {
		return nil, internal("catalog.ratings", err)
	}
	if r == nil {
		r = map[string]Rating{}
	}
	return r, nil
}

// PricedVariant is a variant as an order prices it.
type PricedVariant struct {
	SKU          string
	VariantID    string
	ProductID    string
	ProductTitle string
	VariantTitle string
	// Price is the current price: the server's, never the client's.
	Price       money.Money
	WeightGrams int64
	TaxClass    string
	CategoryIDs []string // the product's own categories (no ancestors)
	Status      string
	// Sellable is true when the product is active and on the channel asked for.
	Sellable bool
}

// VariantsTx returns the variants of skus, read in the caller's
// transaction (so that an order prices what it commits with), with one
// query for the whole list. SKUs no product has are missing from the map.
// channel is the sales channel the order is placed on ("web").
func (s *Service) VariantsTx(ctx context.Context, tx *sqldb.Tx, channel string, skus []string) (map[string]PricedVariant, error) {
	return variants(ctx, tx, channel, skus)
}

// Variants is VariantsTx outside a transaction (quotes, carts).
func (s *Service) Variants(ctx context.Context, channel string, skus []string) (map[string]PricedVariant, error) {
	return variants(ctx, s.db.Reader(), channel, skus)
}

func variants(ctx context.Context, q querier, channel string, skus []string) (map[string]PricedVariant, error) {
	const op = "catalog.Variants"
	out := map[string]PricedVariant{}
	skus = dedupe(skus)
	if len(skus) == 0 {
		return out, nil
	}
	args := append([]any{channel}, anys(skus)...)
	rows, err := q.QueryContext(ctx, `SELECT v.sku, v.id, p.id, p.title, v.title, v.price_amount, p.currency, v.weight_grams,
		p.tax_class, p.status,
		CASE WHEN EXISTS (SELECT 1 FROM catalog_product_channels ch WHERE ch.product_id = p.id AND ch.channel = $1) THEN 1 ELSE 0 END,
		COALESCE(pc.category_id, '')
		FROM catalog_variants v JOIN catalog_products p ON p.id = v.product_id
		LEFT JOIN catalog_product_categories pc ON pc.product_id = p.id
		WHERE v.sku IN (`+placeholders(2, len(skus))+`) ORDER BY v.sku, pc.category_id`, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var v PricedVariant
		var amount int64
		var cur, cat string
		var onChannel int
		if err := rows.Scan(&v.SKU, &v.VariantID, &v.ProductID, &v.ProductTitle, &v.VariantTitle, &amount, &cur,
			&v.WeightGrams, &v.TaxClass, &v.Status, &onChannel, &cat); err != nil {
			return nil, internal(op, err)
		}
		if prev, ok := out[v.SKU]; ok {
			v = prev
		} else {
			if v.Price, err = money.New(amount, cur); err != nil {
				return nil, internal(op, err)
			}
			v.CategoryIDs = []string{}
			v.Sellable = v.Status == StatusActive && onChannel == 1
		}
		if cat != "" {
			v.CategoryIDs = append(v.CategoryIDs, cat)
		}
		out[v.SKU] = v
	}
	return out, internalOrNil(op, rows.Err())
}

// Reviewable reports whether productID names an active product, so that
// it may be reviewed (the reviews module's Products). It reads in tx when
// one is given, else from the reader pool.
func (s *Service) Reviewable(ctx context.Context, tx *sqldb.Tx, productID string) (bool, error) {
	var q querier = s.db.Reader()
	if tx != nil {
		q = tx
	}
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM catalog_products WHERE id = $1 AND status = 'active'`, productID).Scan(&n)
	if err != nil {
		return false, internal("catalog.Reviewable", err)
	}
	return n > 0, nil
}

// inStock returns whether a product of ps has a variant in stock, asking
// the StockSource once for every SKU of ps (every product is in stock when
// there is none).
func (s *Service) inStock(ctx context.Context, ps map[string]Product) (func(Product) bool, error) {
	if s.cfg.Stock == nil {
		return func(Product) bool { return true }, nil
	}
	var skus []string
	for _, p := range ps {
		for _, v := range p.Variants {
			skus = append(skus, v.SKU)
		}
	}
	avail, err := s.cfg.Stock.InStock(ctx, skus)
	if err != nil {
		return nil, err
	}
	return func(p Product) bool {
		return slices.ContainsFunc(p.Variants, func(v Variant) bool { return avail[v.SKU] })
	}, nil
}

// Count is the number of active products: what Scan gives (the total of a
// rebuild's progress, search.Counter).
func (s *Service) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM catalog_products WHERE status = 'active'`).Scan(&n); err != nil {
		return 0, internal("catalog.Count", err)
	}
	return n, nil
}

var _ search.Counter = (*Service)(nil)
