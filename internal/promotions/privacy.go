package promotions

import (
	"context"
	"database/sql"
	"time"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// ExportedRedemption is one of a customer's redemptions in their
// personal-data export (the section "promotions").
type ExportedRedemption struct {
	OrderRef    string      `json:"order_ref"`
	PromotionID string      `json:"promotion_id"`
	Version     int64       `json:"version"`
	Code        string      `json:"code,omitempty"`
	Discount    money.Money `json:"discount"`
	RedeemedAt  time.Time   `json:"redeemed_at"`
	ReleasedAt  *time.Time  `json:"released_at,omitempty"`
}

// Export returns every redemption of customerID, oldest first (never nil).
func (s *Service) Export(ctx context.Context, customerID string) (any, error) {
	const op = "promotions.Export"
	out := []ExportedRedemption{}
	if customerID == "" {
		return out, nil // "" is the guests' and the erased: nobody's
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT order_ref, promotion_id, version, code, amount, currency,
		created_at, released_at FROM promotions_redemptions WHERE customer_id = $1 ORDER BY created_at, id`, customerID)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r ExportedRedemption
		var amount, created int64
		var currency string
		var released sql.NullInt64
		if err := rows.Scan(&r.OrderRef, &r.PromotionID, &r.Version, &r.Code, &amount, &currency, &created, &released); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		if currency != "" {
			if r.Discount, err = money.New(amount, currency); err != nil {
				return nil, errs.E(op, errs.Internal, err)
			}
		}
		r.RedeemedAt = sqldb.FromMicros(created)
		if released.Valid {
			t := sqldb.FromMicros(released.Int64)
			r.ReleasedAt = &t
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	return out, nil
}

// EraseTx anonymises customerID's redemptions in tx, the erasure's unit:
// they stay (the promotions' counts and budgets rely on them) without the
// customer id, and the customer's per-promotion use counters are deleted.
// A released redemption of an erased customer gives back the promotion's
// use but no customer's. Erasing a customer without redemptions changes
// nothing.
func (s *Service) EraseTx(ctx context.Context, tx *sqldb.Tx, customerID string) error {
	const op = "promotions.Erase"
	if customerID == "" {
		return nil
	}
	if err := s.insertPending(ctx, tx, func(r redemptionRow) bool { return r.customer == customerID }); err != nil {
		return errs.E(op, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE promotions_redemptions SET customer_id = '' WHERE customer_id = $1`, customerID); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM promotions_customer_uses WHERE customer_id = $1`, customerID); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	return nil
}
