package orders

import (
	"context"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// HasPaidOrder reports whether customerID has a paid order (paid or
// partially refunded, not cancelled) holding a line of productID: the
// reviews module's verified purchase. It reads in tx when one is given,
// else from the reader pool.
func (s *Service) HasPaidOrder(ctx context.Context, tx *sqldb.Tx, customerID, productID string) (bool, error) {
	var q querier = s.db.Reader()
	if tx != nil {
		q = tx
	}
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM orders_orders o
		WHERE o.customer_id = $1 AND o.payment_status IN ('paid', 'partially_refunded') AND o.status <> 'cancelled'
		AND EXISTS (SELECT 1 FROM orders_lines l WHERE l.order_id = o.id AND l.product_id = $2)`, customerID, productID).Scan(&n)
	if err != nil {
		return false, errs.E("orders.HasPaidOrder", errs.Internal, err)
	}
	return n > 0, nil
}
