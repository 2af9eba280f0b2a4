package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// CreateProductTx creates a product from in inside tx and emits
// product.created. Unknown categories and bad fields are 422; a SKU that
// any product holds already is 409 sku_taken.
func (s *Service) CreateProductTx(ctx context.Context, tx *sqldb.Tx, in ProductInput) (Product, error) {
	const op = "catalog.CreateProduct"
	in, err := normalize(in)
	if err != nil {
		return Product{}, err
	}
	if err := checkCategoriesExist(ctx, tx, in.CategoryIDs); err != nil {
		return Product{}, err
	}
	p := Product{ID: newID(), Version: 1, CreatedAt: tx.Now, UpdatedAt: tx.Now}
	apply(&p, in, nil)
	lo, hi, cur := priceRange(p.Variants)
	media, _ := json.Marshal(p.Media)
	if _, err := tx.ExecContext(ctx, `INSERT INTO catalog_products (id, title, description, status, tax_class, currency,
		price_min, price_max, media, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10)`,
		p.ID, p.Title, p.Description, p.Status, p.TaxClass, cur, lo, hi, string(media), sqldb.Micros(tx.Now)); err != nil {
		return Product{}, internal(op, err)
	}
	if err := s.writeChildren(ctx, tx, p, nil); err != nil {
		return Product{}, err
	}
	ev, err := ProductCreated.New(p.ID, tx.Now, ProductEventData{Product: p})
	if err != nil {
		return Product{}, err
	}
	if err := outbox.Append(ctx, tx, &ev); err != nil {
		return Product{}, err
	}
	return p, s.forget(ctx, tx, p.ID)
}

// CreateProduct is CreateProductTx as one unit of the write path.
func (s *Service) CreateProduct(ctx context.Context, in ProductInput) (p Product, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { p, err = s.CreateProductTx(ctx, tx, in); return err })
	return p, err
}

// UpdateProductTx applies patch to the product id inside tx (JSON merge
// semantics: the fields present replace the stored ones) and emits
// product.updated with the names of the fields that changed; a patch that
// changes nothing emits nothing and keeps the version. archived → draft is
// 409 invalid_transition.
func (s *Service) UpdateProductTx(ctx context.Context, tx *sqldb.Tx, id string, patch ProductPatch) (Product, error) {
	const op = "catalog.UpdateProduct"
	old, err := loadProduct(ctx, tx, id, false)
	if err != nil {
		return Product{}, err
	}
	in := inputOf(old)
	if patch.Title != nil {
		in.Title = *patch.Title
	}
	if patch.Description != nil {
		in.Description = *patch.Description
	}
	if patch.Status != nil {
		in.Status = *patch.Status
		if *patch.Status == "" {
			in.Status = "?" // not "the default": an empty status is a mistake here
		}
	}
	if patch.CategoryIDs != nil {
		in.CategoryIDs = *patch.CategoryIDs
	}
	if patch.Variants != nil {
		in.Variants = *patch.Variants
	}
	if patch.TaxClass != nil {
		in.TaxClass = *patch.TaxClass
	}
	if patch.Media != nil {
		in.Media = *patch.Media
	}
	if patch.Channels != nil {
		in.Channels = *patch.Channels
	}
	if in, err = normalize(in); err != nil {
		return Product{}, err
	}
	if !transitionOK(old.Status, in.Status) {
		return Product{}, errs.E(op, errs.Conflict, errs.CodeInvalidTransition,
			fmt.Sprintf("a product cannot go from %s to %s", old.Status, in.Status),
			[]errs.FieldError{{Field: "status", Message: "cannot go from archived back to draft"}})
	}
	if err := checkCategoriesExist(ctx, tx, in.CategoryIDs); err != nil {
		return Product{}, err
	}
	p := old
	apply(&p, in, old.Variants)
	changed := changedFields(old, p)
	if len(changed) == 0 {
		return old, nil
	}
	p.Version, p.UpdatedAt = old.Version+1, tx.Now
	lo, hi, cur := priceRange(p.Variants)
	media, _ := json.Marshal(p.Media)
	res, err := tx.ExecContext(ctx, `UPDATE catalog_products SET title = $1, description = $2, status = $3, tax_class = $4,
		currency = $5, price_min = $6, price_max = $7, media = $8, version = $9, updated_at = $10 WHERE id = $11 AND version = $12`,
		p.Title, p.Description, p.Status, p.TaxClass, cur, lo, hi, string(media), p.Version, sqldb.Micros(tx.Now), id, old.Version)
	if err != nil {
		return Product{}, internal(op, err)
	}
	if n, _ := res.RowsAffected(); n == 0 { // changed since we read it: the write path runs the unit again
		return Product{}, errs.E(op, errs.Conflict, fmt.Errorf("product %s changed concurrently: %w", id, sqldb.ErrConflict))
	}
	if err := s.writeChildren(ctx, tx, p, &old); err != nil {
		return Product{}, err
	}
	ev, err := ProductUpdated.New(p.ID, tx.Now, ProductEventData{Product: p, Changed: changed})
	if err != nil {
		return Product{}, err
	}
	if err := outbox.Append(ctx, tx, &ev); err != nil {
		return Product{}, err
	}
	return p, s.forget(ctx, tx, p.ID)
}

// UpdateProduct is UpdateProductTx as one unit of the write path.
func (s *Service) UpdateProduct(ctx context.Context, id string, patch ProductPatch) (p Product, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { p, err = s.UpdateProductTx(ctx, tx, id, patch); return err })
	return p, err
}

// writeChildren writes p's variants, categories and channels (old is the
// stored product on an update: only what changed is written).
func (s *Service) writeChildren(ctx context.Context, tx *sqldb.Tx, p Product, old *Product) error {
	var have []Variant
	if old != nil {
		have = old.Variants
	}
	if old == nil || !reflect.DeepEqual(old.Variants, p.Variants) {
		if err := writeVariants(ctx, tx, p.ID, have, p.Variants); err != nil {
			return err
		}
	}
	if old == nil || !slices.Equal(old.CategoryIDs, p.CategoryIDs) {
		if err := replaceSet(ctx, tx, "catalog_product_categories", "category_id", p.ID, p.CategoryIDs); err != nil {
			return err
		}
	}
	if old == nil || !slices.Equal(old.Channels, p.Channels) {
		if err := replaceSet(ctx, tx, "catalog_product_channels", "channel", p.ID, p.Channels); err != nil {
			return err
		}
	}
	return nil
}

// apply sets p's fields from in (normalised); variants keep the id of the
// variant in have with the same SKU, or get a new one.
func apply(p *Product, in ProductInput, have []Variant) {
	p.Title, p.Description, p.Status, p.TaxClass = in.Title, in.Description, in.Status, in.TaxClass
	p.CategoryIDs = slices.Sorted(slices.Values(in.CategoryIDs))
	p.Channels = slices.Sorted(slices.Values(in.Channels))
	p.Media = in.Media
	ids := map[string]string{}
	for _, v := range have {
		ids[v.SKU] = v.ID
	}
	p.Variants = make([]Variant, len(in.Variants))
	for i, v := range in.Variants {
		id := ids[v.SKU]
		if id == "" {
			id = newID()
		}
		p.Variants[i] = Variant{ID: id, SKU: v.SKU, Title: v.Title, Price: v.Price, CompareAtPrice: v.CompareAtPrice,
			WeightGrams: v.WeightGrams, Attributes: v.Attributes}
	}
}

// inputOf is the input that makes p.
func inputOf(p Product) ProductInput {
	in := ProductInput{Title: p.Title, Description: p.Description, Status: p.Status, CategoryIDs: slices.Clone(p.CategoryIDs),
		TaxClass: p.TaxClass, Media: slices.Clone(p.Media), Channels: slices.Clone(p.Channels)}
	for _, v := range p.Variants {
		attrs := map[string]string{}
		for k, x := range v.Attributes {
			attrs[k] = x
		}
		in.Variants = append(in.Variants, VariantInput{SKU: v.SKU, Title: v.Title, Price: v.Price,
			CompareAtPrice: v.CompareAtPrice, WeightGrams: v.WeightGrams, Attributes: attrs})
	}
	return in
}

// changedFields names the API fields in which a and b differ.
func changedFields(a, b Product) []string {
	out := []string{}
	add := func(name string, same bool) {
		if !same {
			out = append(out, name)
		}
	}
	add("title", a.Title == b.Title)
	add("description", a.Description == b.Description)
	add("status", a.Status == b.Status)
	add("category_ids", slices.Equal(a.CategoryIDs, b.CategoryIDs))
	add("variants", reflect.DeepEqual(a.Variants, b.Variants))
	add("tax_class", a.TaxClass == b.TaxClass)
	add("media", reflect.DeepEqual(a.Media, b.Media))
	add("channels", slices.Equal(a.Channels, b.Channels))
	return out
}

// Product returns a product of any status (staff).
func (s *Service) Product(ctx context.Context, id string) (Product, error) {
	return loadProduct(ctx, s.db.Reader(), id, false)
}
