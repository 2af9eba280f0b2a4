package orders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// PayAttempt is one pay request as a PaymentPreparer sees it.
type PayAttempt struct {
	OrderID    string
	CustomerID string // "" for a guest's order
	Method     string
	Token      string
	Amount     money.Money // the order's total: server-side, never the client's
	// Key names the request for the provider's idempotency: the caller's
	// scope and Idempotency-Key digested; "" when the request has no key
	// (every such request is a new attempt).
	Key string
}

// PaymentPreparer is a PaymentMethod whose charge talks to a provider over
// the network (the payments module). POST /api/v1/orders/{id}/pay then
// calls PrepareCharge outside any transaction (web.Mutation.Prepare) and
// runs the commit it returns inside the unit that moves the order to paid,
// instead of calling Charge inside the unit. An error of PrepareCharge is
// the answer (402 payment_declined, 422, 503 when the provider's answer was
// lost — a retry with the same Idempotency-Key never charges twice).
type PaymentPreparer interface {
	PrepareCharge(ctx context.Context, a PayAttempt) (commit func(ctx context.Context, tx *sqldb.Tx) error, err error)
}

// handlePrepared answers a pay request through pp: charge first (outside
// the transaction), then commit the outcome and order.paid in one unit.
// When the order moved meanwhile (expired), the unit answers 409 and the
// capture is left to payments.reconcile, which refunds it.
func (s *Service) handlePrepared(w http.ResponseWriter, r *http.Request, c Caller, in PayRequest, pp PaymentPreparer) {
	id := r.PathValue("id")
	var commit func(ctx context.Context, tx *sqldb.Tx) error
	m := web.Mutation{
		Prepare: func(ctx context.Context) error {
			if err := validatePay(in); err != nil {
				return err
			}
			o, err := s.Get(ctx, c, id, false)
			if err != nil {
				return err
			}
			if _, err := Next(o.Status, ActionPay); err != nil {
				return err
			}
			a := PayAttempt{OrderID: o.ID, Method: in.Method, Token: in.Token, Amount: o.Total}
			if o.CustomerID != nil {
				a.CustomerID = *o.CustomerID
			}
			if k := r.Header.Get(web.HeaderIdempotencyKey); k != "" {
				sum := sha256.Sum256([]byte(c.CustomerID + "\x00" + c.tokenHash() + "\x00" + k))
				a.Key = hex.EncodeToString(sum[:16])
			}
			commit, err = pp.PrepareCharge(ctx, a)
			return err
		},
		Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
			o, err := s.payTxWith(ctx, tx, id, func(o Order) bool { return o.ownedBy(c) }, in.Method, commit)
			return http.StatusOK, o, err
		},
	}
	if c.CartToken != "" {
		m.Scope = "cart:" + c.tokenHash()
	}
	s.idem.Run(w, r, s.write, m)
}

func validatePay(in PayRequest) error {
	var v errs.Validation
	v.Check(in.Method != "", "method", "is required")
	v.Check(in.Token != "", "token", "is required")
	return v.Err("orders.Pay")
}

// payTxWith moves order id to paid in tx, running charge (the provider's
// outcome, recorded by the payments module) in the same unit.
func (s *Service) payTxWith(ctx context.Context, tx *sqldb.Tx, id string, visible func(Order) bool, method string,
	charge func(ctx context.Context, tx *sqldb.Tx) error) (Order, error) {
	return transitionTx(ctx, tx, id, visible, step{
		action: ActionPay,
		check: func(ctx context.Context, _ Order) error {
			if charge == nil {
				return nil
			}
			return charge(ctx, tx)
		},
		emit: func(o Order) (event.Envelope, error) {
			return OrderPaid.New(o.ID, tx.Now, PaidData{OrderID: o.ID, Method: method, Amount: o.Total.Amount(), Currency: o.Currency})
		},
	})
}

// MarkPaidTx moves order id to paid in tx and appends order.paid, for a
// payment captured away from the pay request (3-D Secure confirmed, a
// provider's webhook, reconciliation). An order that is not
// pending_payment is 409 invalid_transition.
func (s *Service) MarkPaidTx(ctx context.Context, tx *sqldb.Tx, id, method string) (Order, error) {
	return s.payTxWith(ctx, tx, id, func(Order) bool { return true }, method, nil)
}

// RefundedTx records in tx that refunded of the order's captured amount
// is refunded (both in minor units, the payments module's running totals):
// payment_status becomes partially_refunded, or refunded when all of it
// is. A full refund of an order that is paid and not shipped is its
// cancellation (order.cancelled, by staff, nothing left to refund). The
// lifecycle is otherwise unchanged.
func (s *Service) RefundedTx(ctx context.Context, tx *sqldb.Tx, id string, refunded, captured int64) (Order, error) {
	const op = "orders.Refunded"
	ps := PaymentPartiallyRefunded
	if refunded >= captured {
		ps = PaymentRefunded
	}
	o, err := getOrder(ctx, tx, id)
	if err != nil {
		return Order{}, err
	}
	if ps == PaymentRefunded && o.Status == StatusPaid {
		if _, err := transitionTx(ctx, tx, id, func(Order) bool { return true }, step{
			action: ActionCancel,
			emit: func(o Order) (event.Envelope, error) {
				return OrderCancelled.New(o.ID, tx.Now, CancelledData{OrderID: o.ID, By: "staff", Currency: o.Currency, WasPaid: true})
			},
		}); err != nil {
			return Order{}, err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE orders_orders SET payment_status = $1, version = version + 1, updated_at = $2
		WHERE id = $3`, string(ps), sqldb.Micros(tx.Now), id); err != nil {
		return Order{}, errs.E(op, errs.Internal, err)
	}
	o, err = getOrder(ctx, tx, id)
	if err != nil {
		return Order{}, err
	}
	os := []Order{o}
	if err := withLines(ctx, tx, os); err != nil {
		return Order{}, err
	}
	return os[0], nil
}
