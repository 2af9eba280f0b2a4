package payments

import (
	"context"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// export is the customer's part of a data export: their orders' payments
// with attempts and refunds.
func (s *Service) export(ctx context.Context, userID string) (any, error) {
	const op = "payments.export"
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+intentCols+` FROM payments_intents WHERE customer_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	out := []Intent{}
	for rows.Next() {
		in, err := scanIntent(rows)
		if err != nil {
			rows.Close()
			return nil, errs.E(op, errs.Internal, err)
		}
		out = append(out, in)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	for i := range out {
		if err := withDetail(ctx, s.db.Reader(), &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// erase anonymises userID's payments in tx: the customer id goes; the
// amounts, attempts and refunds stay (accounting facts, tied to the order).
func (s *Service) erase(ctx context.Context, tx *sqldb.Tx, userID string) error {
	_, err := exec(ctx, tx, "payments.erase", `UPDATE payments_intents SET customer_id = NULL WHERE customer_id = $1`, userID)
	return err
}
