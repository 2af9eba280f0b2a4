package payments

import (
	"context"

	"mercato/internal/money"
	"mercato/internal/orders"
	"mercato/internal/payments/provider"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/sqldb"
)

// ConsumerCancelled is the name of the consumer that refunds cancelled
// paid orders.
const ConsumerCancelled = "payments_order_cancelled"

// systemActor is the actor of the refunds the module makes by itself.
const systemActor = "system"

// CancelledConsumer refunds a paid order that was cancelled (by its
// customer or staff): on order.cancelled it reserves a refund of what is
// captured and not yet refunded, in the event's
// transaction, under a provider key derived from the order (a redelivery
// reserves nothing more). The provider is called later, outside any
// transaction, by payments.reconcile, which sends every refund left
// pending.
func (s *Service) CancelledConsumer() inbox.Consumer {
	return inbox.Consumer{Name: ConsumerCancelled, Events: []string{orders.OrderCancelled.Type()}, Handle: s.handleCancelled}
}

func (s *Service) handleCancelled(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
	const op = "payments.orderCancelled"
	d, err := orders.OrderCancelled.Decode(e)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	// Not d.WasPaid alone: an order partially refunded before its
	// cancellation says was_paid false, and its rest is still due back.
	return s.reserveRestTx(ctx, tx, d.OrderID, "mr_cancel_", "order cancelled")
}

// reserveRestTx reserves, in tx, a refund by the system of what is
// captured and not yet refunded of order orderID's payment, under the
// provider key prefix + order id (once: a second call reserves nothing).
func (s *Service) reserveRestTx(ctx context.Context, tx *sqldb.Tx, orderID, prefix, reason string) error {
	const op = "payments.reserveRest"
	in, err := intentOf(ctx, tx, orderID)
	if errs.Is(err, errs.NotFound) {
		return nil // paid without a capture: reconciliation reports it
	}
	if err != nil {
		return err
	}
	left := in.Captured.Amount() - in.Refunded.Amount()
	if left <= 0 {
		return nil
	}
	n, err := exec(ctx, tx, op, `INSERT INTO payments_refunds (id, intent_id, provider_key, status, amount, reason, actor_id, created_at)
		VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7) ON CONFLICT (provider_key) DO NOTHING`,
		newID(), in.ID, prefix+in.OrderID, left, reason, systemActor, sqldb.Micros(tx.Now))
	if err != nil || n == 0 {
		return err
	}
	n, err = exec(ctx, tx, op, `UPDATE payments_intents SET refunded = refunded + $1, updated_at = $2
		WHERE id = $3 AND refunded + $1 <= captured`, left, sqldb.Micros(tx.Now), in.ID)
	if err == nil && n == 0 {
		err = errs.E(op, errs.Conflict, "the payment changed meanwhile; try again")
	}
	return err
}

// sendPendingRefunds sends every refund reserved longer ago than
// ReconcileAfter and not yet confirmed by the provider (the cancelled
// consumer's, or an HTTP refund whose provider call failed), under its own
// provider key, and commits it.
func (s *Service) sendPendingRefunds(ctx context.Context, rep *ReconcileReport) error {
	const op = "payments.Reconcile"
	cutoff := sqldb.Micros(s.db.Now().Add(-s.cfg.ReconcileAfter))
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT r.id, r.provider_key, r.amount, r.reason, r.actor_id, i.id, i.order_id,
		i.provider, COALESCE(i.provider_ref, ''), i.currency FROM payments_refunds r JOIN payments_intents i ON i.id = r.intent_id
		WHERE r.status = 'pending' AND r.created_at <= $1 ORDER BY r.created_at, r.id LIMIT 1000`, cutoff)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	type todo struct {
		pr                     pendingRefund
		key, actor, prov, pref string
	}
	var all []todo
	for rows.Next() {
		var t todo
		var amount int64
		var cur string
		if err := rows.Scan(&t.pr.id, &t.key, &amount, &t.pr.reason, &t.actor, &t.pr.intentID, &t.pr.orderID,
			&t.prov, &t.pref, &cur); err != nil {
			rows.Close()
			return errs.E(op, errs.Internal, err)
		}
		t.pr.amount = money.MustNew(amount, cur)
		all = append(all, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	for _, t := range all {
		rep.Checked++
		p, err := s.provider(t.prov)
		if err != nil {
			return err
		}
		rf, err := p.Refund(ctx, provider.RefundRequest{Key: t.key, Ref: t.pref, Amount: t.pr.amount})
		if err != nil {
			s.logger.Warn("payments: sending a pending refund failed", "refund", t.pr.id, "err", err)
			continue // stays pending: the next run tries again under the same key
		}
		t.pr.providerRef = rf.Ref
		if err := s.write.Do(ctx, func(tx *sqldb.Tx) error {
			_, err := s.commitRefundTx(ctx, tx, t.pr, t.actor, "")
			return err
		}); err != nil {
			return err
		}
		rep.Fixed++
	}
	return nil
}
