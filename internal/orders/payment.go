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
// instead of calling Charge inside the unit; the events commit returns
// (payment.captured) are appended with order.paid in one outbox.Append. An
// error of PrepareCharge is the answer (402 payment_declined, 422, 503 when
// the provider's answer was lost — a retry with the same Idempotency-Key
// never charges twice).
type PaymentPreparer interface {
	PrepareCharge(ctx context.Context, a PayAttempt) (commit Charged, err error)
}

// Charged records a provider's charge in tx, in the unit that moves the
// order to paid, and returns the events to append with order.paid.
type Charged func(ctx context.Context, tx *sqldb.Tx) ([]*event.Envelope, error)

// handlePrepared answers a pay request through pp: charge first (outside
// the transaction), then commit the outcome and order.paid in one unit.
// The pay reads the order's row (owner, status, total) and, once charged,
// its lines for the answer, on a reader: lines never change after
// checkout, so the unit reads nothing but what it writes. When the order
// moved meanwhile (expired), the unit answers 409 and the capture is left
// to payments.reconcile, which refunds it.
func (s *Service) handlePrepared(w http.ResponseWriter, r *http.Request, c Caller, in PayRequest, pp PaymentPreparer) {
	id := r.PathValue("id")
	var commit Charged
	var lines []OrderLine
	m := web.Mutation{
		Prepare: func(ctx context.Context) error {
			if err := validatePay(in); err != nil {
				return err
			}
			o, err := getOrder(ctx, s.db.Reader(), id)
			if err == nil && !o.ownedBy(c) {
				err = errs.E("orders.Pay", errs.NotFound, "no such order")
			}
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
			if commit, err = pp.PrepareCharge(ctx, a); err != nil {
				return err
			}
			os := []Order{o}
			if err := withLines(ctx, s.db.Reader(), os); err != nil {
				return err
			}
			lines = os[0].Lines
			return nil
		},
		Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
			o, err := s.payTxWith(ctx, tx, id, func(o Order) bool { return o.ownedBy(c) }, in.Method, commit, lines)
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

// payTxWith moves order id to paid in tx when visible lets the caller see
// it: one conditional UPDATE … WHERE status = pending_payment RETURNING
// the row (the lifecycle table's pay; of two racing transitions exactly
// one matches), then charge (the provider's outcome, recorded by the
// payments module; nil: none), then order.paid appended with charge's
// events in one outbox.Append, and the timeline. The answer's lines are
// lines when the caller read them (they never change after checkout),
// else read in tx. An order that is not pending_payment is 409
// invalid_transition and nothing is written.
func (s *Service) payTxWith(ctx context.Context, tx *sqldb.Tx, id string, visible func(Order) bool, method string,
	charge Charged, lines []OrderLine) (Order, error) {
	const op = "orders.Pay"
	t, err := Next(StatusPendingPayment, ActionPay)
	if err != nil {
		return Order{}, err
	}
	o, err := scanOrder(tx.QueryRowContext(ctx, `UPDATE orders_orders SET status = $1, payment_status = $2, version = version + 1,
		updated_at = $3 WHERE id = $4 AND status = $5 RETURNING `+orderCols,
		string(t.To), string(t.Payment), sqldb.Micros(tx.Now), id, string(t.From)))
	if isNoRows(err) { // not payable, or no such order: say which
		if o, err = getOrder(ctx, tx, id); err == nil && !visible(o) {
			err = errs.E(op, errs.NotFound, "no such order")
		}
		if err == nil {
			_, err = Next(o.Status, ActionPay)
		}
		if err == nil {
			err = errs.E(op, errs.Conflict, errs.CodeInvalidTransition, "the order keeps changing; read it again")
		}
		return Order{}, err
	}
	if err != nil {
		return Order{}, errs.E(op, errs.Internal, err)
	}
	if !visible(o) {
		return Order{}, errs.E(op, errs.NotFound, "no such order")
	}
	var evs []*event.Envelope
	if charge != nil {
		if evs, err = charge(ctx, tx); err != nil {
			return Order{}, err
		}
	}
	ev, err := OrderPaid.New(o.ID, tx.Now, PaidData{OrderID: o.ID, Method: method, Amount: o.Total.Amount(), Currency: o.Currency})
	if err := emit(ctx, tx, ev, err, evs...); err != nil {
		return Order{}, err
	}
	if lines == nil {
		os := []Order{o}
		if err := withLines(ctx, tx, os); err != nil {
			return Order{}, err
		}
		return os[0], nil
	}
	o.Lines = lines
	o.show()
	return o, nil
}

// MarkPaidTx moves order id to paid in tx and appends order.paid with
// with (the capture's events) in one outbox.Append, for a payment captured
// away from the pay request (3-D Secure confirmed, a provider's webhook,
// reconciliation) or an imported order. An order that is not
// pending_payment is 409 invalid_transition, and nothing is written or
// appended (with neither).
func (s *Service) MarkPaidTx(ctx context.Context, tx *sqldb.Tx, id, method string, with ...*event.Envelope) (Order, error) {
	return s.payTxWith(ctx, tx, id, func(Order) bool { return true }, method,
		func(context.Context, *sqldb.Tx) ([]*event.Envelope, error) { return with, nil }, nil)
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
