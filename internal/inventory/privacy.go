package inventory

import (
	"context"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

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
