package inventory

import (
	"context"
	"database/sql"
	"time"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// Guard is what staff set on a SKU for a flash sale, and its low-stock
// threshold. A nil field is not set.
type Guard struct {
	SKU string `json:"sku"`
	// PerCustomerLimit caps the units one customer may hold reserved or
	// committed (released units give room back).
	PerCustomerLimit *int64 `json:"per_customer_limit,omitempty"`
	// SaleStartsAt and SaleEndsAt bound when the SKU may be reserved.
	SaleStartsAt *time.Time `json:"sale_starts_at,omitempty"`
	SaleEndsAt   *time.Time `json:"sale_ends_at,omitempty"`
	// LowStockThreshold: inventory.low_stock is emitted when the available
	// units fall below it (once per crossing).
	LowStockThreshold *int64 `json:"low_stock_threshold,omitempty"`
}

// GuardRequest is the body of PUT /api/v1/admin/inventory/{sku}/guard; it
// replaces the SKU's guard (an absent field is unset).
type GuardRequest struct {
	PerCustomerLimit  *int64     `json:"per_customer_limit,omitempty"`
	SaleStartsAt      *time.Time `json:"sale_starts_at,omitempty"`
	SaleEndsAt        *time.Time `json:"sale_ends_at,omitempty"`
	LowStockThreshold *int64     `json:"low_stock_threshold,omitempty"`
}

// window refuses a reservation outside the guard's sale window at now.
func (g Guard) window(op string, now time.Time) error {
	if g.SaleStartsAt != nil && now.Before(*g.SaleStartsAt) {
		return errs.E(op, errs.Conflict, CodeSaleNotStarted,
			"the sale of "+g.SKU+" opens at "+g.SaleStartsAt.UTC().Format(time.RFC3339))
	}
	if g.SaleEndsAt != nil && !now.Before(*g.SaleEndsAt) {
		return errs.E(op, errs.Conflict, CodeSaleEnded,
			"the sale of "+g.SKU+" ended at "+g.SaleEndsAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// readGuard reads sku's guard (the zero Guard when it has none).
func readGuard(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, sku string) (Guard, error) {
	g := Guard{SKU: sku}
	var limit, starts, ends, low sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT per_customer_limit, sale_starts_at, sale_ends_at, low_stock_threshold
		FROM inventory_guards WHERE sku = $1`, sku).Scan(&limit, &starts, &ends, &low)
	if errNoRows(err) {
		return g, nil
	}
	if err != nil {
		return g, err
	}
	if limit.Valid {
		g.PerCustomerLimit = &limit.Int64
	}
	if starts.Valid {
		t := sqldb.FromMicros(starts.Int64)
		g.SaleStartsAt = &t
	}
	if ends.Valid {
		t := sqldb.FromMicros(ends.Int64)
		g.SaleEndsAt = &t
	}
	if low.Valid {
		g.LowStockThreshold = &low.Int64
	}
	return g, nil
}

func (in GuardRequest) validate(op string) error {
	var v errs.Validation
	v.Check(in.PerCustomerLimit == nil || *in.PerCustomerLimit >= 1 && *in.PerCustomerLimit <= MaxQuantity,
		"per_customer_limit", "must be from 1 to 1000000")
	v.Check(in.LowStockThreshold == nil || *in.LowStockThreshold >= 1 && *in.LowStockThreshold <= MaxOnHand,
		"low_stock_threshold", "must be from 1 to 1000000000")
	v.Check(in.SaleStartsAt == nil || in.SaleEndsAt == nil || in.SaleEndsAt.After(*in.SaleStartsAt),
		"sale_ends_at", "must be after sale_starts_at")
	return v.Err(op)
}

func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return sqldb.Micros(*t)
}

func nullInt(n *int64) any {
	if n == nil {
		return nil
	}
	return *n
}

// SetGuardTx replaces sku's guard in tx, by actorID (audited). The
// transaction's later reservations of sku see the new guard.
func (s *Service) SetGuardTx(ctx context.Context, tx *sqldb.Tx, sku string, in GuardRequest, actorID string) (Guard, error) {
	const op = "inventory.SetGuard"
	if msg := checkSKU(sku); msg != "" {
		return Guard{}, skuInvalid(op, msg)
	}
	if err := in.validate(op); err != nil {
		return Guard{}, err
	}
	st, err := s.state(ctx, tx, sku)
	if err != nil {
		return Guard{}, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO inventory_guards
		(sku, per_customer_limit, sale_starts_at, sale_ends_at, low_stock_threshold, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (sku) DO UPDATE SET per_customer_limit = excluded.per_customer_limit,
			sale_starts_at = excluded.sale_starts_at, sale_ends_at = excluded.sale_ends_at,
			low_stock_threshold = excluded.low_stock_threshold, updated_at = excluded.updated_at`,
		sku, nullInt(in.PerCustomerLimit), nullMicros(in.SaleStartsAt), nullMicros(in.SaleEndsAt),
		nullInt(in.LowStockThreshold), sqldb.Micros(tx.Now)); err != nil {
		return Guard{}, errs.E(op, errs.Internal, err)
	}
	g := Guard{SKU: sku, PerCustomerLimit: in.PerCustomerLimit, LowStockThreshold: in.LowStockThreshold}
	if in.SaleStartsAt != nil {
		t := in.SaleStartsAt.UTC().Truncate(time.Microsecond)
		g.SaleStartsAt = &t
	}
	if in.SaleEndsAt != nil {
		t := in.SaleEndsAt.UTC().Truncate(time.Microsecond)
		g.SaleEndsAt = &t
	}
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: "inventory.guard_set", TargetType: "sku",
		TargetID: sku, Before: st.guard, After: g}); err != nil {
		return Guard{}, err
	}
	old := st.guard
	st.guard = g
	tx.OnRollback(func() { st.guard = old })
	return g, nil
}

// Guard returns sku's guard (the zero guard when none is set).
func (s *Service) Guard(ctx context.Context, sku string) (Guard, error) {
	if msg := checkSKU(sku); msg != "" {
		return Guard{}, skuInvalid("inventory.Guard", msg)
	}
	g, err := readGuard(ctx, s.db.Reader(), sku)
	if err != nil {
		return Guard{}, errs.E("inventory.Guard", errs.Internal, err)
	}
	return g, nil
}
