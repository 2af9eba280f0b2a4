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

// guardRow is a guard's columns as scanned.
type guardRow struct {
	limit, starts, ends, low sql.NullInt64
	found                    bool
}

func (r guardRow) guard(sku string) Guard {
	g := Guard{SKU: sku}
	if !r.found {
		return g
	}
	if r.limit.Valid {
		g.PerCustomerLimit = &r.limit.Int64
	}
	if r.starts.Valid {
		t := sqldb.FromMicros(r.starts.Int64)
		g.SaleStartsAt = &t
	}
	if r.ends.Valid {
		t := sqldb.FromMicros(r.ends.Int64)
		g.SaleEndsAt = &t
	}
	if r.low.Valid {
		g.LowStockThreshold = &r.low.Int64
	}
	return g
}

// readGuard reads sku's guard (the zero Guard when it has none).
func readGuard(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, sku string) (Guard, error) {
	r := guardRow{found: true}
	err := q.QueryRowContext(ctx, `SELECT per_customer_limit, sale_starts_at, sale_ends_at, low_stock_threshold
		FROM inventory_guards WHERE sku = $1`, sku).Scan(&r.limit, &r.starts, &r.ends, &r.low)
	if errNoRows(err) {
		return Guard{SKU: sku}, nil
	}
	if err != nil {
		return Guard{SKU: sku}, err
	}
	return r.guard(sku), nil
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

// CustomerUnits is a customer's count of units of a SKU held (reserved or
// committed) against a per-customer limit: personal data.
type CustomerUnits struct {
	SKU   string `json:"sku"`
	Units int64  `json:"units"`
}

// CustomerReservation is a reservation as a customer's export shows it.
type CustomerReservation struct {
	Ref    string `json:"ref"`
	Status string `json:"status"`
}

// CustomerData is inventory's section of a customer's export.
type CustomerData struct {
	PurchaseCounters []CustomerUnits       `json:"purchase_counters"`
	Reservations     []CustomerReservation `json:"reservations"`
}

// export returns the customer's purchase counters and reservations.
func (s *Service) export(ctx context.Context, userID string) (any, error) {
	const op = "inventory.export"
	out := CustomerData{PurchaseCounters: []CustomerUnits{}, Reservations: []CustomerReservation{}}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT sku, units FROM inventory_customer_units WHERE customer_id = $1 ORDER BY sku`, userID)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	for rows.Next() {
		var c CustomerUnits
		if err := rows.Scan(&c.SKU, &c.Units); err != nil {
			rows.Close()
			return nil, errs.E(op, errs.Internal, err)
		}
		out.PurchaseCounters = append(out.PurchaseCounters, c)
	}
	if err := rows.Close(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	rows, err = s.db.Reader().QueryContext(ctx, `SELECT ref, status FROM inventory_reservations WHERE customer_id = $1 ORDER BY created_at, ref`, userID)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r CustomerReservation
		if err := rows.Scan(&r.Ref, &r.Status); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		out.Reservations = append(out.Reservations, r)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	return out, nil
}

// erase deletes the customer's purchase counters and takes the customer's
// id off their reservations, inside the erasure's unit. Stock is not
// changed: reserved units stay reserved until the order is settled.
func (s *Service) erase(ctx context.Context, tx *sqldb.Tx, userID string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM inventory_customer_units WHERE customer_id = $1`, userID); err != nil {
		return errs.E("inventory.erase", errs.Internal, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE inventory_reservations SET customer_id = '' WHERE customer_id = $1`, userID); err != nil {
		return errs.E("inventory.erase", errs.Internal, err)
	}
	return nil
}
