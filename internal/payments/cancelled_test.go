package payments

import (
	"context"
	"net/http"
	"testing"
	"time"

	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
)

// deliverCancelled hands the order.cancelled of order id in the outbox to
// the consumer, in a transaction of its own, as the inbox would.
func (e *env) deliverCancelled(id string) {
	e.t.Helper()
	var ev event.Envelope
	var data string
	var at int64
	if err := e.db.Reader().QueryRow(`SELECT event_id, type, aggregate_type, aggregate_id, sequence, occurred_at, data FROM outbox
		WHERE type = 'order.cancelled' AND aggregate_id = $1`, id).Scan(&ev.ID, &ev.Type, &ev.AggregateType, &ev.AggregateID,
		&ev.Sequence, &at, &data); err != nil {
		e.t.Fatal(err)
	}
	ev.OccurredAt, ev.Data, ev.SchemaVersion = sqldb.FromMicros(at), []byte(data), 1
	if err := e.db.InTx(context.Background(), func(tx *sqldb.Tx) error { return e.svc.handleCancelled(context.Background(), tx, ev) }); err != nil {
		e.t.Fatal(err)
	}
}

// TestCancelledPaidOrderIsRefunded: a paid order cancelled by its
// customer asks for a full refund (order.cancelled, was_paid); the
// consumer reserves it (twice delivered: once), reconciliation sends it,
// and the order's payment_status becomes refunded.
func TestCancelledPaidOrderIsRefunded(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id, total := e.paid(1)
		e.as("cs").Do("POST", "/api/v1/admin/orders/"+id+"/refunds", usdBody(200, "late")).WantStatus(t, http.StatusCreated)
		e.as("alice").Do("POST", "/api/v1/orders/"+id+"/cancel", nil).WantStatus(t, http.StatusOK)
		e.deliverCancelled(id)
		e.deliverCancelled(id) // redelivered
		if n := e.count("payments_refunds", "status = 'pending' AND amount = $1", total-200); n != 1 {
			t.Fatalf("pending refunds of the rest = %d, want 1", n)
		}
		e.clock.Advance(3 * time.Minute)
		if rep := e.reconcile(); rep.Fixed != 1 {
			t.Errorf("report = %+v, want 1 fixed", rep)
		}
		if st, ps := e.orderStatus(id); st != "cancelled" || ps != "refunded" {
			t.Errorf("order %s/%s, want cancelled/refunded", st, ps)
		}
		var refunded int64
		e.db.Reader().QueryRow(`SELECT refunded FROM payments_intents WHERE order_id = $1`, id).Scan(&refunded)
		if refunded != total {
			t.Errorf("refunded %d, want %d", refunded, total)
		}
		want := []string{"order.placed", "payment.captured", "order.paid", "payment.refunded", "order.cancelled", "payment.refunded"}
		if got := e.events(id); !equal(got, want) {
			t.Errorf("events = %v, want %v", got, want)
		}
		if n := e.count("audit_log", "actor_id = 'system' AND action = 'payment.refunded'"); n != 1 {
			t.Errorf("system refunds audited = %d, want 1", n)
		}
		if rep := e.reconcile(); rep.Fixed != 0 {
			t.Errorf("second run: %+v", rep)
		}
	})
}

// TestCancelledUnpaid: an unpaid order's cancellation refunds nothing.
func TestCancelledUnpaid(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.order(e.as("alice"), 1)
		e.as("alice").Do("POST", "/api/v1/orders/"+id+"/cancel", nil).WantStatus(t, http.StatusOK)
		e.deliverCancelled(id)
		if n := e.count("payments_refunds", ""); n != 0 {
			t.Errorf("refunds = %d, want 0", n)
		}
	})
}
