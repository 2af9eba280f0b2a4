package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// querier is what both a reader pool and a transaction offer.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// newID returns a new opaque, time-ordered id (UUIDv7): ordering by id is
// ordering by creation.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// placeholders returns "$from, …, $(from+n-1)".
func placeholders(from, n int) string { return sqldb.Placeholders(from, n) }

func anys(ss []string) []any { return sqldb.Args(ss) }

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

func internal(op string, err error) error { return errs.E(op, errs.Internal, err) }

const productColumns = `id, title, description, status, tax_class, currency, media, version, created_at, updated_at`

// loadProducts returns the products of ids that exist (active ones only
// when activeOnly), with their variants, categories and channels: four
// queries whatever the number of ids (at most a few hundred).
func loadProducts(ctx context.Context, q querier, ids []string, activeOnly bool) (map[string]Product, error) {
	const op = "catalog.loadProducts"
	out := map[string]Product{}
	ids = dedupe(ids)
	if len(ids) == 0 {
		return out, nil
	}
	where := `id IN (` + placeholders(1, len(ids)) + `)`
	if activeOnly {
		where += ` AND status = 'active'`
	}
	rows, err := q.QueryContext(ctx, `SELECT `+productColumns+` FROM catalog_products WHERE `+where, anys(ids)...)
	if err != nil {
		return nil, internal(op, err)
	}
	currency := map[string]string{}
	for rows.Next() {
		var p Product
		var cur, media string
		var created, updated int64
		if err := rows.Scan(&p.ID, &p.Title, &p.Description, &p.Status, &p.TaxClass, &cur, &media, &p.Version, &created, &updated); err != nil {
			rows.Close()
			return nil, internal(op, err)
		}
		if err := json.Unmarshal([]byte(media), &p.Media); err != nil {
			rows.Close()
			return nil, internal(op, err)
		}
		p.CreatedAt, p.UpdatedAt = sqldb.FromMicros(created), sqldb.FromMicros(updated)
		p.CategoryIDs, p.Channels, p.Variants = []string{}, []string{}, []Variant{}
		currency[p.ID] = cur
		out[p.ID] = p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	if len(out) == 0 {
		return out, nil
	}
	found := make([]string, 0, len(out))
	for id := range out {
		found = append(found, id)
	}
	slices.Sort(found)
	in := `(` + placeholders(1, len(found)) + `)`
	args := anys(found)
	rows, err = q.QueryContext(ctx, `SELECT product_id, id, sku, title, price_amount, compare_at_amount, weight_grams, attributes
		FROM catalog_variants WHERE product_id IN `+in+` ORDER BY product_id, position`, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	for rows.Next() {
		var pid, attrs string
		var v Variant
		var price int64
		var compare sql.NullInt64
		if err := rows.Scan(&pid, &v.ID, &v.SKU, &v.Title, &price, &compare, &v.WeightGrams, &attrs); err != nil {
			rows.Close()
			return nil, internal(op, err)
		}
		if v.Price, err = money.New(price, currency[pid]); err != nil {
			rows.Close()
			return nil, internal(op, err)
		}
		if compare.Valid {
			c, err := money.New(compare.Int64, currency[pid])
			if err != nil {
				rows.Close()
				return nil, internal(op, err)
			}
			v.CompareAtPrice = &c
		}
		if err := json.Unmarshal([]byte(attrs), &v.Attributes); err != nil {
			rows.Close()
			return nil, internal(op, err)
		}
		p := out[pid]
		p.Variants = append(p.Variants, v)
		out[pid] = p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	for _, t := range []struct{ table, col string }{{"catalog_product_categories", "category_id"}, {"catalog_product_channels", "channel"}} {
		rows, err := q.QueryContext(ctx, `SELECT product_id, `+t.col+` FROM `+t.table+` WHERE product_id IN `+in+
			` ORDER BY product_id, `+t.col, args...)
		if err != nil {
			return nil, internal(op, err)
		}
		for rows.Next() {
			var pid, v string
			if err := rows.Scan(&pid, &v); err != nil {
				rows.Close()
				return nil, internal(op, err)
			}
			p := out[pid]
			if t.col == "channel" {
				p.Channels = append(p.Channels, v)
			} else {
				p.CategoryIDs = append(p.CategoryIDs, v)
			}
			out[pid] = p
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, internal(op, err)
		}
	}
	return out, nil
}

var errProductNotFound = errs.E("catalog", errs.NotFound, "the product does not exist")

// loadProduct returns one product (NotFound when there is none, or when it
// is not active and activeOnly).
func loadProduct(ctx context.Context, q querier, id string, activeOnly bool) (Product, error) {
	m, err := loadProducts(ctx, q, []string{id}, activeOnly)
	if err != nil {
		return Product{}, err
	}
	p, ok := m[id]
	if !ok {
		return Product{}, errProductNotFound
	}
	return p, nil
}

func skuTaken(sku string, i int) error {
	return errs.E("catalog", errs.Conflict, errs.CodeSKUTaken, fmt.Sprintf("the SKU %q belongs to another product", sku),
		[]errs.FieldError{{Field: "variants." + strconv.Itoa(i) + ".sku", Message: "is taken"}})
}

// priceRange is the cheapest and dearest variant price of p.
func priceRange(vs []Variant) (lo, hi int64, currency string) {
	for i, v := range vs {
		a := v.Price.Amount()
		if i == 0 || a < lo {
			lo = a
		}
		if i == 0 || a > hi {
			hi = a
		}
		currency = v.Price.Currency()
	}
	return lo, hi, currency
}

// checkCategoriesExist returns a 422 naming every id of ids that is no
// category.
func checkCategoriesExist(ctx context.Context, q querier, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := q.QueryContext(ctx, `SELECT id FROM catalog_categories WHERE id IN (`+placeholders(1, len(ids))+`)`, anys(ids)...)
	if err != nil {
		return internal("catalog.checkCategories", err)
	}
	defer rows.Close()
	known := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return internal("catalog.checkCategories", err)
		}
		known[id] = true
	}
	if err := rows.Err(); err != nil {
		return internal("catalog.checkCategories", err)
	}
	var v errs.Validation
	for i, id := range ids {
		if !known[id] {
			v.Add("category_ids."+strconv.Itoa(i), "is not a category")
		}
	}
	return v.Err("catalog.checkCategories")
}

// writeVariants makes the product's variants in tx those of want, keeping
// (and updating) the variants whose SKU is in have, inserting the others,
// deleting the rest. A SKU that another product holds is sku_taken: the
// unique index decides, so two racing creates cannot both win it.
func writeVariants(ctx context.Context, tx *sqldb.Tx, productID string, have []Variant, want []Variant) error {
	const op = "catalog.writeVariants"
	byS := map[string]Variant{}
	for _, v := range have {
		byS[v.SKU] = v
	}
	keep := map[string]bool{}
	for _, v := range want {
		keep[v.SKU] = true
	}
	var gone []string
	for _, v := range have {
		if !keep[v.SKU] {
			gone = append(gone, v.ID)
		}
	}
	if len(gone) > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM catalog_variants WHERE id IN (`+placeholders(1, len(gone))+`)`, anys(gone)...); err != nil {
			return internal(op, err)
		}
	}
	for i, v := range want {
		attrs, err := json.Marshal(v.Attributes)
		if err != nil {
			return internal(op, err)
		}
		var compare sql.NullInt64
		if v.CompareAtPrice != nil {
			compare = sql.NullInt64{Int64: v.CompareAtPrice.Amount(), Valid: true}
		}
		if _, ok := byS[v.SKU]; ok {
			if _, err := tx.ExecContext(ctx, `UPDATE catalog_variants SET title = $1, price_amount = $2, compare_at_amount = $3,
				weight_grams = $4, attributes = $5, position = $6 WHERE id = $7`,
				v.Title, v.Price.Amount(), compare, v.WeightGrams, string(attrs), i, v.ID); err != nil {
				return internal(op, err)
			}
			continue
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO catalog_variants (id, product_id, sku, title, price_amount, compare_at_amount,
			weight_grams, attributes, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (sku) DO NOTHING`,
			v.ID, productID, v.SKU, v.Title, v.Price.Amount(), compare, v.WeightGrams, string(attrs), i)
		if err != nil {
			return internal(op, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return skuTaken(v.SKU, i)
		}
	}
	return nil
}

// replaceSet makes the rows of table (product_id, col) for productID the
// values vs.
func replaceSet(ctx context.Context, tx *sqldb.Tx, table, col, productID string, vs []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE product_id = $1`, productID); err != nil {
		return internal("catalog.replaceSet", err)
	}
	if len(vs) == 0 {
		return nil
	}
	var b strings.Builder
	args := []any{productID}
	for i, v := range vs {
		if i > 0 {
			b.WriteString(", ")
		}
		args = append(args, v)
		b.WriteString("($1, $" + strconv.Itoa(i+2) + ")")
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (product_id, `+col+`) VALUES `+b.String(), args...); err != nil {
		if sqldb.IsForeignKeyViolation(err) {
			return errs.E("catalog.replaceSet", errs.Invalid, errs.CodeValidation, "a category does not exist",
				[]errs.FieldError{{Field: "category_ids", Message: "names a category that does not exist"}})
		}
		return internal("catalog.replaceSet", err)
	}
	return nil
}
