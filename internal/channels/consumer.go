package channels

import (
	"context"
	"database/sql"
	"errors"
	"sort"

	"mercato/internal/orders"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/sqldb"
)

// QuotaConsumer gives a cancelled imported order's units back to its
// channel's quotas (reserved counts down), so that a quota caps the units
// a channel holds, not those it ever sold. Exactly-once through the inbox;
// an order that was not imported is no concern of it.
func (s *Service) QuotaConsumer() inbox.Consumer {
	return inbox.Consumer{Name: "channels_quotas", Events: []string{orders.OrderCancelled.Type()}, Handle: s.HandleOrderCancelled}
}

// HandleOrderCancelled is QuotaConsumer's handler.
func (s *Service) HandleOrderCancelled(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
	const op = "channels.release"
	if e.Type != orders.OrderCancelled.Type() || s.orders == nil {
		return nil
	}
	var channel string
	err := tx.QueryRowContext(ctx, `SELECT channel FROM channels_imports WHERE order_id = $1`, e.AggregateID).Scan(&channel)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	o, err := s.orders.OrderTx(ctx, tx, e.AggregateID)
	if err != nil {
		return err
	}
	lines := append([]orders.OrderLine(nil), o.Lines...)
	sort.Slice(lines, func(i, j int) bool { return lines[i].SKU < lines[j].SKU })
	for _, l := range lines {
		if _, err := tx.ExecContext(ctx, `UPDATE channels_quotas
			SET reserved = CASE WHEN reserved >= $1 THEN reserved - $1 ELSE 0 END, updated_at = $2
			WHERE channel = $3 AND sku = $4`, l.Quantity, sqldb.Micros(tx.Now), channel, l.SKU); err != nil {
			return errs.E(op, errs.Internal, err)
		}
	}
	return nil
}
