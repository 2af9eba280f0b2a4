package orders

import (
	"context"
	"fmt"
	"testing"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// TestNextTable: every (status, action) pair: the allowed moves, written
// out here independently of Transitions, go where they should; every other
// pair is 409 invalid_transition.
func TestNextTable(t *testing.T) {
	allowed := map[string]Status{
		"pending_payment/pay": StatusPaid, "pending_payment/cancel": StatusCancelled, "paid/cancel": StatusCancelled,
		"pending_payment/expire": StatusExpired, "paid/ship_part": StatusPartiallyShipped,
		"partially_shipped/ship_part": StatusPartiallyShipped, "paid/ship": StatusShipped, "partially_shipped/ship": StatusShipped,
		"shipped/deliver": StatusDelivered, "delivered/complete": StatusCompleted, "delivered/request_return": StatusReturnRequested,
		"completed/request_return": StatusReturnRequested, "return_requested/return": StatusReturned,
		"return_requested/reject_return": StatusDelivered,
	}
	actions := []Action{ActionPay, ActionCancel, ActionExpire, ActionShipPart, ActionShip, ActionDeliver, ActionComplete, ActionRequestReturn, ActionReturn, ActionRejectReturn}
	seen := 0
	for _, s := range Statuses {
		for _, a := range actions {
			tr, err := Next(s, a)
			want, ok := allowed[string(s)+"/"+string(a)]
			switch {
			case ok && (err != nil || tr.To != want):
				t.Errorf("%s from %s: %v, %v; want %s", a, s, tr.To, err, want)
			case !ok && (err == nil || errs.CodeOf(err) != errs.CodeInvalidTransition || errs.KindOf(err) != errs.Conflict):
				t.Errorf("%s from %s: %v, want 409 invalid_transition", a, s, err)
			}
			if ok {
				seen++
			}
		}
	}
	if seen != len(allowed) || len(Transitions) != len(allowed) {
		t.Errorf("table has %d rows, %d allowed pairs matched, want %d", len(Transitions), seen, len(allowed))
	}
	if tr, _ := Next(StatusPendingPayment, ActionPay); tr.Payment != PaymentPaid {
		t.Errorf("pay sets payment_status %q", tr.Payment)
	}
}

// placeGo places an order for alice through the Go API and returns it.
func (e *env) placeGo(qty int) Order {
	e.t.Helper()
	ctx := context.Background()
	c := Caller{CustomerID: "u-alice", Channel: "web"}
	var o Order
	if err := e.svc.write.Do(ctx, func(tx *sqldb.Tx) error {
		cart, err := e.svc.CreateCartTx(ctx, tx, c)
		if err == nil {
			_, err = e.svc.SetItemTx(ctx, tx, c, cart.ID, "TEE-M", qty)
		}
		if err == nil {
			a := Address{Name: "A", Line1: "1", City: "C", Region: "R", PostalCode: "1", Country: "US"}
			o, err = e.svc.CheckoutTx(ctx, tx, c, cart.ID, CheckoutRequest{ShippingAddress: &a})
		}
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return o
}

type row struct {
	status, payment string
	version         int64
	events          int
}

func (e *env) row(id string) row {
	e.t.Helper()
	var r row
	if err := e.db.Reader().QueryRow(`SELECT status, payment_status, version FROM orders_orders WHERE id = $1`, id).Scan(&r.status, &r.payment, &r.version); err != nil {
		e.t.Fatal(err)
	}
	r.events = e.count("outbox", "aggregate_id = $1", id)
	if n := e.count("orders_timeline", "order_id = $1", id); n != r.events {
		e.t.Fatalf("timeline holds %d events, outbox %d", n, r.events)
	}
	return r
}

// TestTransitionsOnTheDatabase: pay, cancel and expire from every status:
// allowed ones move the order, bump its version and append one event;
// every other is 409 invalid_transition and changes nothing.
func TestTransitionsOnTheDatabase(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		e.setStock("TEE-M", 1000)
		ctx := context.Background()
		c := Caller{CustomerID: "u-alice"}
		do := map[Action]func(tx *sqldb.Tx, id string) error{
			ActionPay: func(tx *sqldb.Tx, id string) error {
				_, err := e.svc.PayTx(ctx, tx, c, id, PayRequest{Method: "sandbox", Token: TokenSuccess})
				return err
			},
			ActionCancel: func(tx *sqldb.Tx, id string) error { _, err := e.svc.CancelTx(ctx, tx, c, id, false); return err },
			ActionExpire: func(tx *sqldb.Tx, id string) error {
				ok, err := e.svc.ExpireTx(ctx, tx, id)
				if err == nil && !ok {
					err = errs.E("test", errs.Conflict, errs.CodeInvalidTransition)
				}
				return err
			},
		}
		events := map[Action]string{ActionPay: "order.paid", ActionCancel: "order.cancelled", ActionExpire: "order.expired"}
		for _, s := range Statuses {
			for _, a := range []Action{ActionPay, ActionCancel, ActionExpire} {
				t.Run(fmt.Sprintf("%s/%s", s, a), func(t *testing.T) {
					o := e.placeGo(1)
					if _, err := e.db.Writer().Exec(`UPDATE orders_orders SET status = $1, expires_at = $2 WHERE id = $3`,
						string(s), sqldb.Micros(e.clock.Now().Add(-time.Second)), o.ID); err != nil {
						t.Fatal(err)
					}
					before := e.row(o.ID)
					err := e.svc.write.Do(ctx, func(tx *sqldb.Tx) error { return do[a](tx, o.ID) })
					after := e.row(o.ID)
					want, allowedErr := Next(s, a)
					if allowedErr != nil {
						if errs.CodeOf(err) != errs.CodeInvalidTransition {
							t.Fatalf("err %v, want invalid_transition", err)
						}
						if after != before {
							t.Fatalf("changed: %+v → %+v", before, after)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if after.status != string(want.To) || after.version != before.version+1 || after.events != before.events+1 {
						t.Fatalf("%+v → %+v, want status %s", before, after, want.To)
					}
					var last string
					e.db.Reader().QueryRow(`SELECT type FROM outbox WHERE aggregate_id = $1 ORDER BY sequence DESC LIMIT 1`, o.ID).Scan(&last)
					if last != events[a] {
						t.Fatalf("last event %s, want %s", last, events[a])
					}
				})
			}
		}
	})
}

// TestExpireDue: the job expires every due unpaid order, a chunk at a
// time, and leaves the others alone.
func TestExpireDue(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		e.svc.cfg.ExpireChunk = 2
		var due []Order
		for range 5 {
			due = append(due, e.placeGo(1))
		}
		paid := e.placeGo(1)
		if err := e.svc.write.Do(context.Background(), func(tx *sqldb.Tx) error {
			_, err := e.svc.PayTx(context.Background(), tx, Caller{CustomerID: "u-alice"}, paid.ID, PayRequest{Method: "sandbox", Token: TokenSuccess})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if n, err := e.svc.ExpireDue(context.Background()); n != 0 || err != nil {
			t.Fatalf("before the TTL: %d, %v", n, err)
		}
		e.clock.Advance(30 * time.Minute)
		fresh := e.placeGo(1)
		n, err := e.svc.ExpireDue(context.Background())
		if n != 5 || err != nil {
			t.Fatalf("expired %d, %v; want 5", n, err)
		}
		for _, o := range due {
			if r := e.row(o.ID); r.status != "expired" || r.events != 2 {
				t.Errorf("due order: %+v", r)
			}
		}
		if r := e.row(paid.ID); r.status != "paid" {
			t.Errorf("paid order: %+v", r)
		}
		if r := e.row(fresh.ID); r.status != "pending_payment" {
			t.Errorf("fresh order: %+v", r)
		}
	})
}

// TestOrderNumber: date, dash, 12 base-32 characters; later in the day
// sorts later; a thousand numbers of one instant are distinct.
func TestOrderNumber(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	a, b := orderNumber(at), orderNumber(at.Add(time.Millisecond))
	if len(a) != 21 || a[:9] != "20300102-" || !(a < b) {
		t.Fatalf("numbers %q, %q", a, b)
	}
	seen := map[string]bool{}
	for range 1000 {
		seen[orderNumber(at)] = true
	}
	if len(seen) != 1000 {
		t.Fatalf("%d distinct numbers of 1000", len(seen))
	}
}
