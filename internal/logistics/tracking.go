package logistics

import (
	"cmp"
	"context"
	"database/sql"
	"strings"
	"time"

	"mercato/internal/logistics/carrier"
	"mercato/internal/orders"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// TrackingEvent is one entry of a shipment's normalised timeline.
type TrackingEvent struct {
	Status      carrier.Status `json:"status"`
	OccurredAt  time.Time      `json:"occurred_at"`
	Location    string         `json:"location,omitempty"`
	Description string         `json:"description,omitempty"`
}

// TrackedShipment is a shipment with its timeline, oldest first.
type TrackedShipment struct {
	Shipment
	Events []TrackingEvent `json:"events"`
}

// Tracking is GET /api/v1/orders/{id}/tracking's answer: one timeline per
// shipment, oldest shipment first.
type Tracking struct {
	Items []TrackedShipment `json:"items"`
}

func newID() string { return event.NewID() }

// ApplyTx adds the carrier's events about shipment id to its timeline in
// tx, each once (by the carrier's event id; one label_created per
// timeline), and reports how many were new. The shipment's status is its
// latest event's (delivered is final); a change emits shipment.updated.
// A shipment's delivery delivers its order (order.delivered) when every
// unit is shipped and every shipment of it is delivered.
func (s *Service) ApplyTx(ctx context.Context, tx *sqldb.Tx, id string, evs []carrier.Event) (int, error) {
	const op = "logistics.Apply"
	// Taking the row first serialises the units that apply to one shipment.
	res, err := tx.ExecContext(ctx, `UPDATE logistics_shipments SET updated_at = updated_at WHERE id = $1`, id)
	if err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, errs.E(op, errs.NotFound, "no such shipment")
	}
	sh, err := s.shipmentTx(ctx, tx, id)
	if err != nil {
		return 0, err
	}
	known := map[string]bool{}
	var seq int64
	rows, err := tx.QueryContext(ctx, `SELECT source_id, seq FROM logistics_tracking_events WHERE shipment_id = $1`, id)
	if err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	for rows.Next() {
		var src string
		var n int64
		if err := rows.Scan(&src, &n); err != nil {
			rows.Close()
			return 0, errs.E(op, errs.Internal, err)
		}
		known[src], seq = true, max(seq, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	added := 0
	for _, e := range evs {
		key := sourceKey(e)
		if !e.Status.Valid() || key == "" || known[key] {
			continue
		}
		known[key] = true
		seq++
		if _, err := tx.ExecContext(ctx, `INSERT INTO logistics_tracking_events (shipment_id, seq, source_id, status, occurred_at, location, description)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, seq, key, string(e.Status), sqldb.Micros(e.OccurredAt),
			cut(e.Location, carrier.MaxLocation), cut(e.Description, carrier.MaxDescription)); err != nil {
			return 0, errs.E(op, errs.Internal, err)
		}
		added++
	}
	if added == 0 || sh.Status == carrier.Delivered {
		return added, nil
	}
	var st string
	var at int64
	if err := tx.QueryRowContext(ctx, `SELECT status, occurred_at FROM logistics_tracking_events WHERE shipment_id = $1
		ORDER BY (CASE WHEN status = 'delivered' THEN 1 ELSE 0 END) DESC, occurred_at DESC, seq DESC LIMIT 1`, id).Scan(&st, &at); err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	if carrier.Status(st) == sh.Status {
		return added, nil
	}
	now := sqldb.Micros(tx.Now)
	var delivered sql.NullInt64
	if carrier.Status(st) == carrier.Delivered {
		delivered = sql.NullInt64{Int64: at, Valid: true}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE logistics_shipments SET status = $1, updated_at = $2, delivered_at = $3 WHERE id = $4`,
		st, now, delivered, id); err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	ev, err := ShipmentUpdated.New(id, tx.Now, ShipmentUpdatedData{ShipmentID: id, OrderID: sh.OrderID, Status: st,
		OccurredAt: sqldb.FromMicros(at).Format(time.RFC3339Nano)})
	if err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	if err := outbox.Append(ctx, tx, &ev); err != nil {
		return 0, err
	}
	if delivered.Valid {
		if err := s.maybeDeliverTx(ctx, tx, sh.OrderID); err != nil {
			return 0, err
		}
	}
	return added, nil
}

// maybeDeliverTx delivers order id when it is shipped in full and no
// shipment of it is on its way.
func (s *Service) maybeDeliverTx(ctx context.Context, tx *sqldb.Tx, id string) error {
	const op = "logistics.deliver"
	if err := lockFulfilment(ctx, tx, id); err != nil {
		return err
	}
	var open, left int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM logistics_shipments WHERE order_id = $1 AND status <> 'delivered'`, id).Scan(&open); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(quantity - shipped), 0) FROM logistics_order_lines WHERE order_id = $1`, id).Scan(&left); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if open > 0 || left > 0 {
		return nil
	}
	o, err := s.orders.OrderTx(ctx, tx, id)
	if err != nil {
		return err
	}
	if o.Status != orders.StatusShipped {
		return nil // moved on by other means (returns follow delivery)
	}
	if _, err := s.orders.DeliverTx(ctx, tx, id); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE logistics_fulfilments SET status = 'delivered', delivered_at = $1, updated_at = $1 WHERE order_id = $2`,
		sqldb.Micros(tx.Now), id)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	return nil
}

// Track asks the carriers for news of every shipment not yet delivered
// and applies what is new, each shipment in its own unit: the
// logistics.track job. It reports how many events it added and the first
// unit that failed (the others are applied all the same).
func (s *Service) Track(ctx context.Context) (int64, error) {
	const op = "logistics.Track"
	type open struct {
		id, carrier, tn string
		created         int64
	}
	var total int64
	var firstErr error
	after := ""
	for {
		rows, err := s.db.Reader().QueryContext(ctx, `SELECT id, carrier, tracking_number, created_at
			FROM logistics_shipments WHERE status <> 'delivered' AND id > $1 ORDER BY id LIMIT $2`, after, s.cfg.TrackChunk)
		if err != nil {
			return total, errs.E(op, errs.Internal, err)
		}
		var todo []open
		for rows.Next() {
			var o open
			if err := rows.Scan(&o.id, &o.carrier, &o.tn, &o.created); err != nil {
				rows.Close()
				return total, errs.E(op, errs.Internal, err)
			}
			todo = append(todo, o)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return total, errs.E(op, errs.Internal, err)
		}
		for _, o := range todo {
			c, ok := s.carriers[o.carrier]
			if !ok {
				continue
			}
			evs, err := c.Track(ctx, carrier.Shipment{TrackingNumber: o.tn, LabelCreatedAt: sqldb.FromMicros(o.created)})
			if err != nil {
				continue // the carrier is down: next round
			}
			if fresh, err := s.anyNew(ctx, o.id, evs); err != nil {
				return total, err
			} else if !fresh {
				continue
			}
			var n int
			if err := s.write.Do(ctx, func(tx *sqldb.Tx) (err error) { n, err = s.ApplyTx(ctx, tx, o.id, evs); return err }); err != nil {
				firstErr = cmp.Or(firstErr, err) // the others still get their news
				continue
			}
			total += int64(n)
		}
		if len(todo) < s.cfg.TrackChunk {
			return total, firstErr
		}
		after = todo[len(todo)-1].id
	}
}

// anyNew reports whether evs hold an event shipment id's timeline lacks
// (read on the reader: the unit decides again).
func (s *Service) anyNew(ctx context.Context, id string, evs []carrier.Event) (bool, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT source_id FROM logistics_tracking_events WHERE shipment_id = $1`, id)
	if err != nil {
		return false, errs.E("logistics.Track", errs.Internal, err)
	}
	defer rows.Close()
	known := map[string]bool{}
	for rows.Next() {
		var src string
		if err := rows.Scan(&src); err != nil {
			return false, errs.E("logistics.Track", errs.Internal, err)
		}
		known[src] = true
	}
	if err := rows.Err(); err != nil {
		return false, errs.E("logistics.Track", errs.Internal, err)
	}
	for _, e := range evs {
		if !known[sourceKey(e)] {
			return true, nil
		}
	}
	return false, nil
}

// sourceKey is the key an event is kept once by: the carrier's id, and
// one label_created per timeline.
func sourceKey(e carrier.Event) string {
	if e.Status == carrier.LabelCreated {
		return labelKey
	}
	return cut(e.ID, carrier.MaxEventID)
}

// CompleteDue completes the orders delivered at least CompleteAfter ago
// (order.completed), each in its own unit: the logistics.complete job.
func (s *Service) CompleteDue(ctx context.Context) (int64, error) {
	const op = "logistics.CompleteDue"
	due := sqldb.Micros(s.db.Now().Add(-s.cfg.CompleteAfter))
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT order_id FROM logistics_fulfilments WHERE status = 'delivered' AND delivered_at <= $1
		ORDER BY delivered_at, order_id LIMIT 500`, due)
	if err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, errs.E(op, errs.Internal, err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	var n int64
	for _, id := range ids {
		err := s.write.Do(ctx, func(tx *sqldb.Tx) error {
			err := s.CompleteTx(ctx, tx, id)
			if errs.CodeOf(err) == errs.CodeInvalidTransition {
				// A return under way: the fulfilment is done all the same.
				_, err = tx.ExecContext(ctx, `UPDATE logistics_fulfilments SET status = 'completed', updated_at = $1 WHERE order_id = $2`,
					sqldb.Micros(tx.Now), id)
			}
			return err
		})
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// CompleteTx completes delivered order id in tx (order.completed), the
// job's work or staff's explicit action; an order that is not delivered is
// 409 invalid_transition.
func (s *Service) CompleteTx(ctx context.Context, tx *sqldb.Tx, id string) error {
	if err := lockFulfilment(ctx, tx, id); err != nil {
		return err
	}
	if _, err := s.orders.CompleteTx(ctx, tx, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE logistics_fulfilments SET status = 'completed', updated_at = $1 WHERE order_id = $2`,
		sqldb.Micros(tx.Now), id); err != nil {
		return errs.E("logistics.Complete", errs.Internal, err)
	}
	return nil
}

// shipmentTx reads shipment id with its lines.
func (s *Service) shipmentTx(ctx context.Context, q querier, id string) (Shipment, error) {
	sh, err := scanShipment(q.QueryRowContext(ctx, `SELECT `+shipmentCols+` FROM logistics_shipments WHERE id = $1`, id))
	if isNoRows(err) {
		return Shipment{}, errs.E("logistics.shipment", errs.NotFound, "no such shipment")
	}
	if err != nil {
		return Shipment{}, errs.E("logistics.shipment", errs.Internal, err)
	}
	shs := []Shipment{sh}
	return shs[0], withShipmentLines(ctx, q, shs)
}

// querier is what reads run on: a unit's *sqldb.Tx or the reader pool.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

const shipmentCols = `id, order_id, carrier, tracking_number, status, created_at, updated_at, delivered_at`

func scanShipment(sc interface{ Scan(...any) error }) (Shipment, error) {
	var sh Shipment
	var st string
	var created, updated int64
	var delivered sql.NullInt64
	if err := sc.Scan(&sh.ID, &sh.OrderID, &sh.Carrier, &sh.TrackingNumber, &st, &created, &updated, &delivered); err != nil {
		return Shipment{}, err
	}
	sh.Status, sh.CreatedAt, sh.UpdatedAt = carrier.Status(st), sqldb.FromMicros(created), sqldb.FromMicros(updated)
	if delivered.Valid {
		t := sqldb.FromMicros(delivered.Int64)
		sh.DeliveredAt = &t
	}
	sh.Lines = []Line{}
	return sh, nil
}

// withShipmentLines fills the lines of shs in place.
func withShipmentLines(ctx context.Context, q querier, shs []Shipment) error {
	for i := range shs {
		rows, err := q.QueryContext(ctx, `SELECT sku, quantity FROM logistics_shipment_lines WHERE shipment_id = $1 ORDER BY sku`, shs[i].ID)
		if err != nil {
			return errs.E("logistics.lines", errs.Internal, err)
		}
		for rows.Next() {
			var l Line
			if err := rows.Scan(&l.SKU, &l.Quantity); err != nil {
				rows.Close()
				return errs.E("logistics.lines", errs.Internal, err)
			}
			shs[i].Lines = append(shs[i].Lines, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return errs.E("logistics.lines", errs.Internal, err)
		}
	}
	return nil
}

// TrackingOf returns the timelines of order id's shipments. Who may see
// them is the caller's business (the route asks the orders module).
func (s *Service) TrackingOf(ctx context.Context, id string) (Tracking, error) {
	const op = "logistics.Tracking"
	q := s.db.Reader()
	rows, err := q.QueryContext(ctx, `SELECT `+shipmentCols+` FROM logistics_shipments WHERE order_id = $1 ORDER BY created_at, id`, id)
	if err != nil {
		return Tracking{}, errs.E(op, errs.Internal, err)
	}
	var shs []Shipment
	for rows.Next() {
		sh, err := scanShipment(rows)
		if err != nil {
			rows.Close()
			return Tracking{}, errs.E(op, errs.Internal, err)
		}
		shs = append(shs, sh)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Tracking{}, errs.E(op, errs.Internal, err)
	}
	if err := withShipmentLines(ctx, q, shs); err != nil {
		return Tracking{}, err
	}
	out := Tracking{Items: []TrackedShipment{}}
	for _, sh := range shs {
		ts := TrackedShipment{Shipment: sh, Events: []TrackingEvent{}}
		evs, err := q.QueryContext(ctx, `SELECT status, occurred_at, location, description FROM logistics_tracking_events
			WHERE shipment_id = $1 ORDER BY occurred_at, seq`, sh.ID)
		if err != nil {
			return Tracking{}, errs.E(op, errs.Internal, err)
		}
		for evs.Next() {
			var e TrackingEvent
			var st string
			var at int64
			if err := evs.Scan(&st, &at, &e.Location, &e.Description); err != nil {
				evs.Close()
				return Tracking{}, errs.E(op, errs.Internal, err)
			}
			e.Status, e.OccurredAt = carrier.Status(st), sqldb.FromMicros(at)
			ts.Events = append(ts.Events, e)
		}
		evs.Close()
		if err := evs.Err(); err != nil {
			return Tracking{}, errs.E(op, errs.Internal, err)
		}
		out.Items = append(out.Items, ts)
	}
	return out, nil
}

// cut shortens s to at most n bytes, dropping a rune cut in two.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
