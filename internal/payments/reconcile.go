package payments

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"mercato/internal/money"
	"mercato/internal/orders"
	"mercato/internal/payments/provider"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
	"mercato/internal/syncmon"
)

// ReconcileReport is what one reconciliation did.
type ReconcileReport struct {
	Checked  int64 // attempts and paid orders looked at
	Fixed    int64 // settled safely: an order marked paid, an orphan capture refunded, a dead attempt closed
	Reported int64 // new issues left to staff (the sync monitor lists them)
}

// The issue kinds reconciliation reports.
const (
	IssuePaidWithoutCapture  = "paid_without_capture"
	IssueCaptureWithoutOrder = "capture_without_order"
	IssueUnsettledAttempt    = "unsettled_attempt"
)

// Reconcile is the payments.reconcile job. It settles every attempt left
// pending for longer than Config.ReconcileAfter (a crash, or a lost
// answer never retried) by asking its provider what happened under its
// key:
//   - never charged or declined: the attempt fails;
//   - captured, the order still pending_payment: the capture is recorded
//     and the order marked paid, in one unit (safe: it is what the pay
//     request would have committed);
//   - captured, the order no longer payable (expired, cancelled, or paid
//     by another attempt): the orphan capture is refunded in full.
//
// A capture recorded for an order that expired (a webhook arriving after
// the expiry) is reserved for a refund of what is left. It sends the
// refunds left pending (CancelledConsumer's, or those whose
// provider call failed). Then it checks that every order marked paid has
// a capture, and reports
// those without one (nothing is safe to do automatically) as issues.
func (s *Service) Reconcile(ctx context.Context) (ReconcileReport, error) {
	var rep ReconcileReport
	if err := s.settleAttempts(ctx, &rep); err != nil {
		return rep, err
	}
	if err := s.refundOrphans(ctx, &rep); err != nil {
		return rep, err
	}
	if err := s.sendPendingRefunds(ctx, &rep); err != nil {
		return rep, err
	}
	return rep, s.checkPaidOrders(ctx, &rep)
}

type stale struct {
	key, token, orderID, provider string
	amount                        money.Money
}

func (s *Service) settleAttempts(ctx context.Context, rep *ReconcileReport) error {
	const op = "payments.Reconcile"
	cutoff := sqldb.Micros(s.db.Now().Add(-s.cfg.ReconcileAfter))
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT a.provider_key, a.token, i.order_id, i.provider, i.currency, i.amount
		FROM payments_attempts a JOIN payments_intents i ON i.id = a.intent_id
		WHERE a.status = 'pending' AND a.created_at <= $1 ORDER BY a.created_at, a.id LIMIT 1000`, cutoff)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	var todo []stale
	for rows.Next() {
		var st stale
		var cur string
		var amount int64
		if err := rows.Scan(&st.key, &st.token, &st.orderID, &st.provider, &cur, &amount); err != nil {
			rows.Close()
			return errs.E(op, errs.Internal, err)
		}
		st.amount = money.MustNew(amount, cur)
		todo = append(todo, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	for _, st := range todo {
		rep.Checked++
		if err := s.settle(ctx, st, rep); err != nil {
			s.logger.Warn("payments: reconciling an attempt failed", "order", st.orderID, "err", err)
			if err := s.report(ctx, IssueUnsettledAttempt, st.orderID, err.Error(), rep); err != nil {
				return err
			}
		}
	}
	return nil
}

// settle settles one stale attempt (see Reconcile).
func (s *Service) settle(ctx context.Context, st stale, rep *ReconcileReport) error {
	p, err := s.provider(st.provider)
	if err != nil {
		return err
	}
	att, err := attemptByKey(ctx, s.db.Reader(), st.key)
	if err != nil {
		return err
	}
	ch, found, err := p.Lookup(ctx, provider.ChargeRequest{Key: st.key, OrderID: st.orderID, Amount: st.amount, Token: st.token})
	if err != nil {
		return err
	}
	switch {
	case !found:
		rep.Fixed++
		return s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.failTx(ctx, tx, att, "not_charged") })
	case ch.Status == provider.Failed:
		rep.Fixed++
		return s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.failTx(ctx, tx, att, ch.DeclineReason) })
	case ch.Status == provider.RequiresAction:
		return s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.requiresActionTx(ctx, tx, att, ch) })
	}
	o, err := s.orders.Get(ctx, orders.Caller{}, st.orderID, true)
	if err != nil {
		return err
	}
	if o.Status == orders.StatusPendingPayment {
		err := s.write.Do(ctx, func(tx *sqldb.Tx) error { _, err := s.paidTx(ctx, tx, att, st.orderID, st.provider, ch); return err })
		if err == nil {
			rep.Fixed++
			return nil
		}
		if errs.CodeOf(err) != errs.CodeInvalidTransition {
			return err
		}
		// The order moved meanwhile: the capture is an orphan after all.
	}
	if _, err := p.Refund(ctx, provider.RefundRequest{Key: "void_" + st.key, Ref: ch.Ref, Amount: ch.Amount}); err != nil {
		return s.report(ctx, IssueCaptureWithoutOrder, st.orderID,
			fmt.Sprintf("captured %s at %s (%s) for an order that is %s; the refund failed: %v", ch.Amount, st.provider, ch.Ref, o.Status, err), rep)
	}
	rep.Fixed++
	return s.write.Do(ctx, func(tx *sqldb.Tx) error {
		_, err := exec(ctx, tx, "payments.Reconcile", `UPDATE payments_attempts SET status = 'voided', provider_ref = $1,
			failure = 'orphan capture refunded', updated_at = $2 WHERE id = $3 AND status = 'pending'`, ch.Ref, sqldb.Micros(tx.Now), att.ID)
		return err
	})
}

// checkPaidOrders reports the orders marked paid that have no capture.
func (s *Service) checkPaidOrders(ctx context.Context, rep *ReconcileReport) error {
	const op = "payments.Reconcile"
	page := web.PageRequest{Limit: web.MaxPageLimit}
	for {
		p, err := s.orders.List(ctx, orders.Filter{PaymentStatus: orders.PaymentPaid}, page)
		if err != nil {
			return err
		}
		for _, o := range p.Items {
			rep.Checked++
			var captured int64
			err := s.db.Reader().QueryRowContext(ctx, `SELECT captured FROM payments_intents WHERE order_id = $1`, o.ID).Scan(&captured)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return errs.E(op, errs.Internal, err)
			}
			if captured == 0 {
				if err := s.report(ctx, IssuePaidWithoutCapture, o.ID,
					fmt.Sprintf("order %s is paid (%s) but no payment was captured for it", o.Number, o.Total), rep); err != nil {
					return err
				}
			}
		}
		if p.NextCursor == "" {
			return nil
		}
		page.Cursor = p.NextCursor
	}
}

// report records an issue once (kind, order).
func (s *Service) report(ctx context.Context, kind, orderID, detail string, rep *ReconcileReport) error {
	var n int64 // of the run that committed (a unit may run more than once)
	err := s.write.Do(ctx, func(tx *sqldb.Tx) (err error) {
		n, err = exec(ctx, tx, "payments.report", `INSERT INTO payments_issues (id, kind, order_id, detail, found_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, order_id) DO NOTHING`, newID(), kind, orderID, detail, sqldb.Micros(tx.Now))
		return err
	})
	if err == nil {
		rep.Reported += n
	}
	return err
}

// SyncIssues implements syncmon.Reporter: the issues reconciliation left.
func (s *Service) SyncIssues(ctx context.Context) ([]syncmon.Issue, error) {
	const op = "payments.SyncIssues"
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT kind, order_id, detail, found_at FROM payments_issues ORDER BY found_at, id`)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	out := []syncmon.Issue{}
	for rows.Next() {
		is := syncmon.Issue{Source: "payments"}
		var at int64
		if err := rows.Scan(&is.Kind, &is.Subject, &is.Detail, &at); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		is.FoundAt = sqldb.FromMicros(at)
		out = append(out, is)
	}
	return out, rows.Err()
}

// refundOrphans reserves a refund of what is left of every capture whose
// order expired (cancelled orders are CancelledConsumer's).
func (s *Service) refundOrphans(ctx context.Context, rep *ReconcileReport) error {
	const op = "payments.Reconcile"
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT order_id FROM payments_intents WHERE captured > refunded ORDER BY created_at, id`)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return errs.E(op, errs.Internal, err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	for _, id := range ids {
		o, err := s.orders.Get(ctx, orders.Caller{}, id, true)
		if err != nil {
			return err
		}
		if o.Status != orders.StatusExpired {
			continue
		}
		rep.Checked++
		if err := s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.reserveRestTx(ctx, tx, id, "mr_orphan_", "order expired") }); err != nil {
			return err
		}
	}
	return nil
}
