package orders

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// maxRereads bounds how often a transition re-reads an order whose version
// moved under it before it gives up (409).
const maxRereads = 3

// step is one transition's work on the order it read: check may refuse
// (an error), and emit makes the transition's event from the moved order.
type step struct {
	action Action
	check  func(ctx context.Context, o Order) error
	emit   func(o Order) (event.Envelope, error)
}

// transitionTx moves order id by st in tx when read lets the caller see it:
// read the order, look the move up in the table, run check, then write it
// conditionally on the version read (UPDATE … WHERE id AND version). A
// concurrent change (0 rows) re-reads and decides again, so that of two
// racing transitions exactly one wins and the other meets the new status
// (409 invalid_transition). The event is appended in the same unit.
func transitionTx(ctx context.Context, tx *sqldb.Tx, id string, visible func(Order) bool, st step) (Order, error) {
	const op = "orders.transition"
	for range maxRereads {
		o, err := readOrder(ctx, tx, id) // with its lines, which no transition changes
		if err == nil && !visible(o) {
			err = errs.E(op, errs.NotFound, "no such order")
		}
		if err != nil {
			return Order{}, err
		}
		t, err := Next(o.Status, st.action)
		if err != nil {
			return Order{}, err
		}
		if st.check != nil {
			if err := st.check(ctx, o); err != nil {
				return Order{}, err
			}
		}
		moved := t.apply(o)
		res, err := tx.ExecContext(ctx, `UPDATE orders_orders SET status = $1, payment_status = $2, fulfillment_status = $3,
			version = version + 1, updated_at = $4 WHERE id = $5 AND version = $6`,
			string(moved.Status), string(moved.PaymentStatus), string(moved.FulfillmentStatus), sqldb.Micros(tx.Now), id, o.Version)
		if err != nil {
			return Order{}, errs.E(op, errs.Internal, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return Order{}, errs.E(op, errs.Internal, err)
		} else if n == 0 {
			continue // changed since read: decide again on what it is now
		}
		moved.Version, moved.UpdatedAt = o.Version+1, tx.Now
		moved.show()
		ev, err := st.emit(moved)
		if err := emit(ctx, tx, ev, err); err != nil {
			return Order{}, err
		}
		return moved, nil
	}
	return Order{}, errs.E(op, errs.Conflict, errs.CodeInvalidTransition, "the order keeps changing; read it again")
}

// PayRequest is POST /api/v1/orders/{id}/pay's body.
type PayRequest struct {
	Method string `json:"method" maxlen:"40" doc:"sandbox."`
	Token  string `json:"token" maxlen:"200" doc:"The payment token (sandbox: tok_success or tok_decline)."`
}

// PayTx charges order id's total through the PaymentMethod and moves it
// to paid (payment_status paid), appending order.paid. A declined charge
// is 402 payment_declined and changes nothing (the order stays
// pending_payment; the decline is what the idempotency record keeps).
// Paying an order that is not pending_payment is 409 invalid_transition.
func (s *Service) PayTx(ctx context.Context, tx *sqldb.Tx, caller Caller, id string, in PayRequest) (Order, error) {
	var v errs.Validation
	v.Check(in.Method != "", "method", "is required")
	v.Check(in.Token != "", "token", "is required")
	if err := v.Err("orders.Pay"); err != nil {
		return Order{}, err
	}
	return transitionTx(ctx, tx, id, func(o Order) bool { return o.ownedBy(caller) }, step{
		action: ActionPay,
		check: func(ctx context.Context, o Order) error {
			_, err := s.payment.Charge(ctx, in.Method, in.Token, o.ID, o.Total)
			return err
		},
		emit: func(o Order) (event.Envelope, error) {
			return OrderPaid.New(o.ID, tx.Now, PaidData{OrderID: o.ID, Method: in.Method, Amount: o.Total.Amount(), Currency: o.Currency})
		},
	})
}

// CancelTx cancels order id for its owner (staff: any order) and appends
// order.cancelled, which releases the stock and, for a paid order, asks
// for a full refund. Once shipped it is 409 invalid_transition.
func (s *Service) CancelTx(ctx context.Context, tx *sqldb.Tx, caller Caller, id string, staff bool) (Order, error) {
	by := "customer"
	if staff {
		by = "staff"
	}
	return transitionTx(ctx, tx, id, func(o Order) bool { return staff || o.ownedBy(caller) }, step{
		action: ActionCancel,
		emit: func(o Order) (event.Envelope, error) {
			d := CancelledData{OrderID: o.ID, By: by, Currency: o.Currency, WasPaid: o.PaymentStatus == PaymentPaid}
			if d.WasPaid {
				d.RefundTotal = o.Total.Amount()
			}
			return OrderCancelled.New(o.ID, tx.Now, d)
		},
	})
}

// ExpireTx expires order id when it is still pending_payment and its
// reservation ran out by tx.Now, appending order.expired. It reports
// whether it did; an order paid or cancelled meanwhile is left alone.
func (s *Service) ExpireTx(ctx context.Context, tx *sqldb.Tx, id string) (bool, error) {
	_, err := transitionTx(ctx, tx, id, func(Order) bool { return true }, step{
		action: ActionExpire,
		check: func(_ context.Context, o Order) error {
			if o.expiresAt.After(tx.Now) {
				return errs.E("orders.Expire", errs.Conflict, errs.CodeInvalidTransition, "not due")
			}
			return nil
		},
		emit: func(o Order) (event.Envelope, error) {
			return OrderExpired.New(o.ID, tx.Now, ExpiredData{OrderID: o.ID})
		},
	})
	if errs.CodeOf(err) == errs.CodeInvalidTransition || errs.Is(err, errs.NotFound) {
		return false, nil
	}
	return err == nil, err
}

// ExpireDue expires every unpaid order whose reservation ran out: it reads
// the due ids a chunk at a time (Config.ExpireChunk) and expires each in
// its own unit of the write path, the chunk's units at once so that group
// commit batches them. It is the orders.expire job; it reports how many
// orders it expired.
func (s *Service) ExpireDue(ctx context.Context) (int64, error) {
	const op = "orders.ExpireDue"
	var total int64
	for {
		rows, err := s.db.Reader().QueryContext(ctx, `SELECT id FROM orders_orders
			WHERE status = 'pending_payment' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2`,
			sqldb.Micros(s.db.Now()), s.cfg.ExpireChunk)
		if err != nil {
			return total, errs.E(op, errs.Internal, err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return total, errs.E(op, errs.Internal, err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return total, errs.E(op, errs.Internal, err)
		}
		var n atomic.Int64
		var wg sync.WaitGroup
		var mu sync.Mutex
		var firstErr error
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var did bool
				err := s.write.Do(ctx, func(tx *sqldb.Tx) (err error) { did, err = s.ExpireTx(ctx, tx, id); return err })
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				} else if did {
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		total += n.Load()
		if firstErr != nil {
			return total, errs.E(op, firstErr)
		}
		if len(ids) < s.cfg.ExpireChunk || n.Load() == 0 {
			return total, nil
		}
	}
}

// export is the customer's part of a data export: their orders.
func (s *Service) export(ctx context.Context, userID string) (any, error) {
	var all []Order
	page := web.PageRequest{Limit: web.MaxPageLimit}
	for {
		p, err := s.List(ctx, Filter{CustomerID: userID}, page)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			break
		}
		page.Cursor = p.NextCursor
	}
	if all == nil {
		all = []Order{}
	}
	return all, nil
}

// erasedName replaces the personal parts of an erased customer's addresses.
const erasedName = "erased"

// erase anonymises the shipping addresses of userID's orders in tx: name,
// street, city, postal code and phone go; the country and region stay
// with the amounts, lines and events (accounting facts).
func (s *Service) erase(ctx context.Context, tx *sqldb.Tx, userID string) error {
	const op = "orders.erase"
	rows, err := tx.QueryContext(ctx, `SELECT id, shipping_address FROM orders_orders WHERE customer_id = $1`, userID)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	type upd struct{ id, addr string }
	var todo []upd
	for rows.Next() {
		var u upd
		if err := rows.Scan(&u.id, &u.addr); err != nil {
			rows.Close()
			return errs.E(op, errs.Internal, err)
		}
		todo = append(todo, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	for _, u := range todo {
		var a Address
		if err := json.Unmarshal([]byte(u.addr), &a); err != nil {
			return errs.E(op, errs.Internal, err)
		}
		b, _ := json.Marshal(Address{Name: erasedName, Region: a.Region, Country: a.Country})
		if _, err := tx.ExecContext(ctx, `UPDATE orders_orders SET shipping_address = $1 WHERE id = $2`, string(b), u.id); err != nil {
			return errs.E(op, errs.Internal, err)
		}
	}
	return nil
}

// PaymentMethod charges an order's total. The payments issue replaces the
// Sandbox with real providers behind this interface.
type PaymentMethod interface {
	// Charge takes amount for orderID with the client's token and returns
	// the provider's reference, or a PaymentDeclined error (402
	// payment_declined), or an Invalid one for a token it does not know.
	Charge(ctx context.Context, method, token, orderID string, amount money.Money) (ref string, err error)
}

// The sandbox's tokens.
const (
	TokenSuccess = "tok_success"
	TokenDecline = "tok_decline"
)

// Sandbox is the test PaymentMethod "sandbox": tok_success succeeds,
// tok_decline is declined, any other token is 422.
type Sandbox struct{}

// Charge implements PaymentMethod.
func (Sandbox) Charge(_ context.Context, method, token, orderID string, _ money.Money) (string, error) {
	const op = "orders.Sandbox"
	if method != "sandbox" {
		return "", errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "method", Message: "must be sandbox"}})
	}
	switch token {
	case TokenSuccess:
		return "sandbox_" + orderID, nil
	case TokenDecline:
		return "", errs.E(op, errs.PaymentDeclined, errs.CodePaymentDeclined, "the payment was declined")
	}
	return "", errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
		[]errs.FieldError{{Field: "token", Message: "must be tok_success or tok_decline"}})
}
