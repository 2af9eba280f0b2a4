package catalog

import (
	"context"
	"fmt"
	"slices"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// tree is the whole category tree (a shop has hundreds of categories, not
// millions: it is read whole).
type tree struct {
	byID     map[string]Category
	children map[string][]string
	order    []string // ids by name, then id
}

// loadTree reads every category.
func loadTree(ctx context.Context, q querier) (*tree, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, name, parent_id, version, created_at, updated_at FROM catalog_categories ORDER BY name, id`)
	if err != nil {
		return nil, internal("catalog.loadTree", err)
	}
	defer rows.Close()
	t := &tree{byID: map[string]Category{}, children: map[string][]string{}}
	for rows.Next() {
		var c Category
		var parent *string
		var created, updated int64
		if err := rows.Scan(&c.ID, &c.Name, &parent, &c.Version, &created, &updated); err != nil {
			return nil, internal("catalog.loadTree", err)
		}
		c.ParentID, c.CreatedAt, c.UpdatedAt = parent, sqldb.FromMicros(created), sqldb.FromMicros(updated)
		t.byID[c.ID] = c
		t.order = append(t.order, c.ID)
		if parent != nil {
			t.children[*parent] = append(t.children[*parent], c.ID)
		}
	}
	return t, internalOrNil("catalog.loadTree", rows.Err())
}

func internalOrNil(op string, err error) error {
	if err != nil {
		return internal(op, err)
	}
	return nil
}

// ancestors returns id's ancestors, nearest first (a cycle, which the
// moves prevent, stops the walk).
func (t *tree) ancestors(id string) []string {
	var out []string
	seen := map[string]bool{id: true}
	for c, ok := t.byID[id]; ok && c.ParentID != nil && !seen[*c.ParentID]; c, ok = t.byID[*c.ParentID] {
		seen[*c.ParentID] = true
		out = append(out, *c.ParentID)
	}
	return out
}

// subtree returns id and its descendants.
func (t *tree) subtree(id string) []string {
	out := []string{id}
	for i := 0; i < len(out); i++ {
		out = append(out, t.children[out[i]]...)
	}
	return out
}

// withAncestors returns ids and all their ancestors, sorted, once each.
func (t *tree) withAncestors(ids []string) []string {
	set := map[string]bool{}
	for _, id := range ids {
		set[id] = true
		for _, a := range t.ancestors(id) {
			set[a] = true
		}
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

var errCategoryNotFound = errs.E("catalog", errs.NotFound, "the category does not exist")

func parentInvalid(msg string) error {
	return errs.E("catalog.category", errs.Invalid, errs.CodeValidation, "the parent is not valid",
		[]errs.FieldError{{Field: "parent_id", Message: msg}})
}

// CreateCategoryTx creates a category inside tx and emits category.created.
func (s *Service) CreateCategoryTx(ctx context.Context, tx *sqldb.Tx, in CategoryInput) (Category, error) {
	name, err := checkCategoryName(in.Name)
	if err != nil {
		return Category{}, err
	}
	c := Category{ID: newID(), Name: name, Version: 1, CreatedAt: tx.Now, UpdatedAt: tx.Now}
	if in.ParentID != nil && *in.ParentID != "" {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM catalog_categories WHERE id = $1`, *in.ParentID).Scan(&n); err != nil {
			return Category{}, internal("catalog.CreateCategory", err)
		}
		if n == 0 {
			return Category{}, parentInvalid("is not a category")
		}
		c.ParentID = in.ParentID
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO catalog_categories (id, name, parent_id, version, created_at, updated_at)
		VALUES ($1, $2, $3, 1, $4, $4)`, c.ID, c.Name, c.ParentID, sqldb.Micros(tx.Now)); err != nil {
		if sqldb.IsForeignKeyViolation(err) {
			return Category{}, parentInvalid("is not a category")
		}
		return Category{}, internal("catalog.CreateCategory", err)
	}
	return c, s.categoryEvent(ctx, tx, CategoryCreated.New, c, nil)
}

// CreateCategory is CreateCategoryTx as one unit of the write path.
func (s *Service) CreateCategory(ctx context.Context, in CategoryInput) (c Category, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { c, err = s.CreateCategoryTx(ctx, tx, in); return err })
	return c, err
}

// UpdateCategoryTx renames and/or moves a category inside tx. A move under
// the category itself or one of its descendants is 422 (no cycles).
func (s *Service) UpdateCategoryTx(ctx context.Context, tx *sqldb.Tx, id string, in CategoryPatch) (Category, error) {
	const op = "catalog.UpdateCategory"
	t, err := loadTree(ctx, tx)
	if err != nil {
		return Category{}, err
	}
	old, ok := t.byID[id]
	if !ok {
		return Category{}, errCategoryNotFound
	}
	c := old
	if in.Name != nil {
		if c.Name, err = checkCategoryName(*in.Name); err != nil {
			return Category{}, err
		}
	}
	var chain []string // the new parent and its ancestors: a concurrent move among them must not interleave
	if in.ParentID.Set {
		c.ParentID = nil
		if in.ParentID.ID != "" {
			p := in.ParentID.ID
			if _, ok := t.byID[p]; !ok {
				return Category{}, parentInvalid("is not a category")
			}
			chain = append([]string{p}, t.ancestors(p)...)
			if slices.Contains(chain, id) {
				return Category{}, parentInvalid("is the category itself or one of its descendants: a move must not make a cycle")
			}
			c.ParentID = &p
		}
	}
	var changed []string
	if c.Name != old.Name {
		changed = append(changed, "name")
	}
	if !equalRef(c.ParentID, old.ParentID) {
		changed = append(changed, "parent_id")
	}
	if len(changed) == 0 {
		return old, nil
	}
	// The chain is read as it stood: if another unit moved one of its
	// categories since (bumping its version), the unit runs again and sees it.
	for _, a := range chain {
		res, err := tx.ExecContext(ctx, `UPDATE catalog_categories SET version = version WHERE id = $1 AND version = $2`, a, t.byID[a].Version)
		if err != nil {
			return Category{}, internal(op, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Category{}, errs.E(op, errs.Conflict, fmt.Errorf("category %s changed: %w", a, sqldb.ErrConflict))
		}
	}
	c.Version, c.UpdatedAt = old.Version+1, tx.Now
	res, err := tx.ExecContext(ctx, `UPDATE catalog_categories SET name = $1, parent_id = $2, version = $3, updated_at = $4
		WHERE id = $5 AND version = $6`, c.Name, c.ParentID, c.Version, sqldb.Micros(tx.Now), id, old.Version)
	if err != nil {
		return Category{}, internal(op, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Category{}, errs.E(op, errs.Conflict, fmt.Errorf("category %s changed: %w", id, sqldb.ErrConflict))
	}
	if err := s.categoryEvent(ctx, tx, CategoryUpdated.New, c, changed); err != nil {
		return Category{}, err
	}
	// Products of the subtree carry the category's ancestors in the index.
	return c, s.reindexCategory(ctx, tx, t.subtree(id))
}

// UpdateCategory is UpdateCategoryTx as one unit of the write path.
func (s *Service) UpdateCategory(ctx context.Context, id string, in CategoryPatch) (c Category, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { c, err = s.UpdateCategoryTx(ctx, tx, id, in); return err })
	return c, err
}

// DeleteCategoryTx deletes an empty category inside tx: 409 when it has
// children or products.
func (s *Service) DeleteCategoryTx(ctx context.Context, tx *sqldb.Tx, id string) error {
	const op = "catalog.DeleteCategory"
	var c Category
	var parent *string
	var created, updated int64
	err := tx.QueryRowContext(ctx, `SELECT id, name, parent_id, version, created_at, updated_at FROM catalog_categories WHERE id = $1`, id).
		Scan(&c.ID, &c.Name, &parent, &c.Version, &created, &updated)
	if isNoRows(err) {
		return errCategoryNotFound
	}
	if err != nil {
		return internal(op, err)
	}
	c.ParentID, c.CreatedAt, c.UpdatedAt = parent, sqldb.FromMicros(created), sqldb.FromMicros(updated)
	// One conditional statement decides, so a product or child added
	// concurrently either blocks the delete or fails on its foreign key.
	res, err := tx.ExecContext(ctx, `DELETE FROM catalog_categories WHERE id = $1
		AND NOT EXISTS (SELECT 1 FROM catalog_categories WHERE parent_id = $1)
		AND NOT EXISTS (SELECT 1 FROM catalog_product_categories WHERE category_id = $1)`, id)
	if err != nil {
		if sqldb.IsForeignKeyViolation(err) {
			return errCategoryInUse
		}
		return internal(op, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errCategoryInUse
	}
	return s.categoryEvent(ctx, tx, CategoryDeleted.New, c, nil)
}

var errCategoryInUse = errs.E("catalog", errs.Conflict, errs.CodeConflict, "the category has products or sub-categories; move or delete them first")

// DeleteCategory is DeleteCategoryTx as one unit of the write path.
func (s *Service) DeleteCategory(ctx context.Context, id string) error {
	return s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.DeleteCategoryTx(ctx, tx, id) })
}

func (s *Service) categoryEvent(ctx context.Context, tx *sqldb.Tx,
	mk func(string, time.Time, CategoryEventData) (event.Envelope, error), c Category, changed []string) error {
	ev, err := mk(c.ID, tx.Now, CategoryEventData{Category: c, Changed: changed})
	if err != nil {
		return err
	}
	return outbox.Append(ctx, tx, &ev)
}

// reindexCategory has the products of categories re-indexed after the
// commit (their ancestors or category names changed).
func (s *Service) reindexCategory(ctx context.Context, tx *sqldb.Tx, categories []string) error {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT product_id FROM catalog_product_categories WHERE category_id IN (`+
		placeholders(1, len(categories))+`)`, anys(categories)...)
	if err != nil {
		return internal("catalog.reindexCategory", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return internal("catalog.reindexCategory", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return internal("catalog.reindexCategory", err)
	}
	tx.AfterCommit(func() { s.index.enqueue(ids...) })
	return nil
}

func equalRef(a, b *string) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// Categories lists every category with its product count: the products in
// it or a descendant, once each (active products only when public).
func (s *Service) Categories(ctx context.Context, public bool) ([]CategoryCount, error) {
	q := s.db.Reader()
	t, err := loadTree(ctx, q)
	if err != nil {
		return nil, err
	}
	query := `SELECT pc.product_id, pc.category_id FROM catalog_product_categories pc`
	if public {
		query += ` JOIN catalog_products p ON p.id = pc.product_id WHERE p.status = 'active'`
	}
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, internal("catalog.Categories", err)
	}
	defer rows.Close()
	members := map[string]map[string]bool{}
	for rows.Next() {
		var pid, cid string
		if err := rows.Scan(&pid, &cid); err != nil {
			return nil, internal("catalog.Categories", err)
		}
		for _, c := range append([]string{cid}, t.ancestors(cid)...) {
			if members[c] == nil {
				members[c] = map[string]bool{}
			}
			members[c][pid] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, internal("catalog.Categories", err)
	}
	out := make([]CategoryCount, 0, len(t.order))
	for _, id := range t.order {
		out = append(out, CategoryCount{Category: t.byID[id], ProductCount: len(members[id])})
	}
	return out, nil
}
