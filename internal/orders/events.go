package orders

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// The order events; the aggregate is the order (its id). Inventory commits
// the order's reservation on order.paid and releases it on order.cancelled
// and order.expired.
var (
	OrderPlaced    = event.Define[PlacedData]("order.placed", 1, "A customer placed an order at checkout; its stock is reserved until it is paid or expires.")
	OrderPaid      = event.Define[PaidData]("order.paid", 1, "An order was paid in full.")
	OrderCancelled = event.Define[CancelledData]("order.cancelled", 1, "An order was cancelled by its customer or staff; a paid one asks for a full refund.")
	OrderExpired   = event.Define[ExpiredData]("order.expired", 1, "An unpaid order expired when its reservation ran out.")
)

// EventLine is one line of an order as events carry it.
type EventLine struct {
	SKU       string `json:"sku"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unit_price" doc:"Minor units of the order's currency."`
}

// PlacedData is order.placed's payload.
type PlacedData struct {
	OrderID    string      `json:"order_id"`
	Number     string      `json:"number"`
	CustomerID string      `json:"customer_id,omitempty" doc:"Empty for a guest's order."`
	Channel    string      `json:"channel"`
	Currency   string      `json:"currency"`
	Total      int64       `json:"total" doc:"Minor units."`
	Lines      []EventLine `json:"lines"`
	ExpiresAt  string      `json:"expires_at" doc:"RFC 3339: when the unpaid order expires."`
}

// PaidData is order.paid's payload.
type PaidData struct {
	OrderID  string `json:"order_id"`
	Method   string `json:"method"`
	Amount   int64  `json:"amount" doc:"Minor units."`
	Currency string `json:"currency"`
}

// CancelledData is order.cancelled's payload.
type CancelledData struct {
	OrderID     string `json:"order_id"`
	By          string `json:"by" doc:"customer or staff."`
	WasPaid     bool   `json:"was_paid"`
	RefundTotal int64  `json:"refund_total" doc:"Minor units to refund: the order's total when it was paid, else 0."`
	Currency    string `json:"currency"`
}

// ExpiredData is order.expired's payload.
type ExpiredData struct {
	OrderID string `json:"order_id"`
}

// emit appends ev to the outbox and the order's timeline in tx: the one way
// an order's events are written. with are other aggregates' events that
// go with it (a payment's capture with order.paid), appended first in the
// same Append and kept off the timeline. The timeline rows of a
// transaction's units are inserted together (sqldb.AtCommit), by a hook
// registered after the outbox's Append, so it runs after the outbox's hook
// has given the events their sequences.
func emit(ctx context.Context, tx *sqldb.Tx, ev event.Envelope, err error, with ...*event.Envelope) error {
	const op = "orders.emit"
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	e := &ev
	if err := outbox.Append(ctx, tx, append(with, e)...); err != nil {
		return err
	}
	return sqldb.AtCommit(ctx, tx, timelineKey{}, insertTimeline, e)
}

type timelineKey struct{}

// timelineChunk bounds the rows of one timeline INSERT (6 parameters each).
const timelineChunk = 100

// insertTimeline inserts evs into orders_timeline, a multi-row INSERT per
// timelineChunk; every event must have its sequence by now.
func insertTimeline(ctx context.Context, tx *sqldb.Tx, evs []*event.Envelope) error {
	const op = "orders.timeline"
	if len(evs) == 0 {
		return nil
	}
	for start := 0; start < len(evs); start += timelineChunk {
		chunk := evs[start:min(start+timelineChunk, len(evs))]
		var b strings.Builder
		b.WriteString(`INSERT INTO orders_timeline (order_id, seq, event_id, type, occurred_at, data) VALUES `)
		args := make([]any, 0, 6*len(chunk))
		for i, e := range chunk {
			if e.Sequence < 1 {
				return errs.E(op, errs.Internal, "event "+e.ID+" has no sequence: the outbox's hook did not run before the timeline's")
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(" + sqldb.Placeholders(6*i+1, 6) + ")")
			args = append(args, e.AggregateID, e.Sequence, e.ID, e.Type, sqldb.Micros(e.OccurredAt), string(e.Data))
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return errs.E(op, errs.Internal, err)
		}
	}
	return nil
}

// TimelineEvent is one entry of GET /api/v1/orders/{id}/events.
type TimelineEvent struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	OccurredAt string          `json:"occurred_at" doc:"RFC 3339."`
	Data       json.RawMessage `json:"data"`
}

// Timeline is an order's events, oldest first.
type Timeline struct {
	Items []TimelineEvent `json:"items"`
}

// Events returns order id's timeline, oldest first, to whoever may read it.
func (s *Service) Events(ctx context.Context, caller Caller, id string, staff bool) (Timeline, error) {
	const op = "orders.Events"
	if _, err := s.Get(ctx, caller, id, staff); err != nil {
		return Timeline{}, err
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT event_id, type, occurred_at, data FROM orders_timeline
		WHERE order_id = $1 ORDER BY seq`, id)
	if err != nil {
		return Timeline{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	out := Timeline{Items: []TimelineEvent{}}
	for rows.Next() {
		var e TimelineEvent
		var at int64
		var data string
		if err := rows.Scan(&e.ID, &e.Type, &at, &data); err != nil {
			return Timeline{}, errs.E(op, errs.Internal, err)
		}
		e.OccurredAt = sqldb.FromMicros(at).Format(time.RFC3339Nano)
		e.Data = json.RawMessage(data)
		out.Items = append(out.Items, e)
	}
	if err := rows.Err(); err != nil {
		return Timeline{}, errs.E(op, errs.Internal, err)
	}
	return out, nil
}
