package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/sqldb"
)

// Consumer is the module's inbox consumer: every event, recorded as one
// pending delivery per enabled endpoint whose filters select its type.
func (s *Service) Consumer() inbox.Consumer {
	// Replayable: a delivery is recorded once per (endpoint, event), so a
	// replay records the deliveries an endpoint lacks (one added since, or
	// whose rows were pruned) and leaves the others as they are.
	return inbox.Consumer{Name: ConsumerName, Events: []string{"*"}, Handle: s.RecordTx, Replayable: true}
}

// target is an enabled endpoint's filters, and what its deliveries need
// when the recording transaction claims them (claimTx).
type target struct {
	dueEndpoint
	patterns []event.Pattern
	channels []string // only the events of these channels' orders; nil: every event
	secrets  []string // opened on the first claim of the transaction
}

func (t *target) selects(typ string) bool {
	for _, p := range t.patterns {
		if p.Match(typ) {
			return true
		}
	}
	return false
}

type targetsKey struct{}

// RecordTx records e's deliveries in tx: one row per enabled endpoint that
// selects e's type, and e's envelope once (webhooks_events) however many
// endpoints select it; a delivery already recorded (a redelivered event) is
// kept as it is. It reads the endpoints once per transaction (an inbox
// batch), writes the rows of every event of the transaction with one
// statement per engine round before the commit (flushRecording: one on
// PostgreSQL, two on SQLite, per up to maxRecordRows deliveries) and sends
// nothing inside it.
//
// While the dispatcher runs in this process (and not Config.PollOnly), a
// new delivery to an endpoint that is not fifo, whose breaker is closed and
// whose queue has room is claimed by this very INSERT (status delivering
// under the dispatcher's lease) and handed to the dispatcher when tx
// commits: no poll, no claim UPDATE. The others are recorded pending and
// the dispatcher, woken after the commit, claims them (fifo endpoints keep
// their order that way); a handed delivery whose process died comes due
// again when its lease ends.
func (s *Service) RecordTx(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
	v, err := tx.Local(targetsKey{}, func() (any, error) { return s.loadTargets(ctx, tx) })
	if err != nil {
		return err
	}
	if err := s.learnChannel(ctx, tx, e); err != nil {
		return err
	}
	var rec *recording
	var body []byte
	ch := channelOnce{s: s, tx: tx, e: e}
	claiming := s.disp.claiming()
	woken := false
	for _, t := range v.([]*target) {
		if !t.selects(e.Type) {
			continue
		}
		if ok, err := ch.admits(ctx, t); err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		if rec == nil {
			if rec, err = s.recordingOf(tx); err != nil {
				return err
			}
			if rec.seen[e.ID] {
				return nil // redelivered within the transaction: its rows are queued already
			}
			if body, err = json.Marshal(e); err != nil {
				return fmt.Errorf("webhooks: envelope: %w", err)
			}
			rec.mark(tx)
			rec.addEvent(e, body, tx.Now)
		}
		full := false // at its limit or breaker open: a step could not start it now
		if claiming && !t.fifo {
			if full = !s.disp.accepts(t.id); !full {
				if s.claimRow(rec, tx, t, e, body) {
					continue
				}
			}
		}
		rec.add(deliveryRow{id: event.NewID(), endpointID: t.id, e: &e, status: "pending",
			next: sqldb.Micros(tx.Now), fifo: t.fifo})
		if claiming {
			// The endpoint's next settled delivery, or the poll, wakes a step.
			tx.AfterCommit(func() { s.disp.noteBacklog(t.id) })
		}
		if !woken && !full {
			woken = true
			tx.AfterCommit(s.disp.Wake)
		}
	}
	return nil
}

// claimRow queues e's delivery to t as claimed (delivering, under the
// lease): when its row is inserted, the dispatcher gets it at tx's commit.
// It reports false when t's secret does not open (the delivery is then
// recorded pending, and the dispatcher logs why it cannot send it).
func (s *Service) claimRow(rec *recording, tx *sqldb.Tx, t *target, e event.Envelope, body []byte) bool {
	if t.secrets == nil {
		sec, err := s.disp.secrets(t.dueEndpoint, tx.Now)
		if err != nil {
			return false
		}
		t.secrets = sec
	}
	id := event.NewID()
	rec.add(deliveryRow{id: id, endpointID: t.id, e: &e, status: "delivering", next: sqldb.Micros(s.disp.lease(tx.Now)),
		claim: &job{id: id, endpointID: t.id, eventID: e.ID, envelope: string(body), url: t.url, secrets: t.secrets}})
	return true
}

type recordingKey struct{}

// recording is what a transaction's RecordTx calls queued: the envelope of
// each event (once) and its delivery rows, written before the commit by
// flushRecording; the claimed rows that were inserted are handed to the
// dispatcher after it.
type recording struct {
	events  []eventRow
	rows    []deliveryRow
	seen    map[string]bool // ids of the events in events
	handoff []job           // claimed rows inserted (flushRecording fills it)
}

type eventRow struct {
	id, customer, envelope string
	at                     int64
}

type deliveryRow struct {
	id, endpointID string
	e              *event.Envelope
	status         string
	next           int64
	fifo           bool
	claim          *job // queued to be handed over when the row is inserted
}

// recordingOf is tx's recording, made with its hooks on first use.
func (s *Service) recordingOf(tx *sqldb.Tx) (*recording, error) {
	v, err := tx.Local(recordingKey{}, func() (any, error) {
		rec := &recording{seen: map[string]bool{}}
		tx.BeforeCommit(func(ctx context.Context) error { return rec.flush(ctx, tx) })
		tx.AfterCommit(func() {
			if len(rec.handoff) > 0 {
				s.disp.handoff(rec.handoff)
			}
		})
		return rec, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*recording), nil
}

// mark registers the undoing of what the current unit queues: when its
// writes are rolled back, so are its rows.
func (r *recording) mark(tx *sqldb.Tx) {
	ne, nr := len(r.events), len(r.rows)
	tx.OnRollback(func() {
		for _, ev := range r.events[ne:] {
			delete(r.seen, ev.id)
		}
		r.events, r.rows = r.events[:ne], r.rows[:nr]
	})
}

func (r *recording) addEvent(e event.Envelope, body []byte, now time.Time) {
	r.seen[e.ID] = true
	r.events = append(r.events, eventRow{id: e.ID, customer: customerOf(e), envelope: string(body), at: sqldb.Micros(now)})
}

func (r *recording) add(d deliveryRow) { r.rows = append(r.rows, d) }

// customerOf is the customer e's data names (its customer_id), "" for none:
// what an erasure looks the event's envelope up by.
func customerOf(e event.Envelope) string {
	var d struct {
		CustomerID any `json:"customer_id"`
	}
	if json.Unmarshal(e.Data, &d) != nil {
		return ""
	}
	id, _ := d.CustomerID.(string)
	return id
}

// maxRecordRows caps the delivery rows one statement writes.
const maxRecordRows = 512

// Column types of the recording statements' VALUES (PostgreSQL takes
// parameters as text: the first row types the columns).
var (
	eventTypes    = []string{"TEXT", "TEXT", "TEXT", "BIGINT"}
	deliveryTypes = []string{"TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "BIGINT", "TEXT", "BIGINT", "BIGINT", "INTEGER"}
)

// flush writes the queued rows: per chunk of up to maxRecordRows
// deliveries, the envelopes of their events (kept as they are when
// recorded before, but for created_at: a re-recorded event is not pruned
// under its new deliveries) and the deliveries (ON CONFLICT DO NOTHING:
// an (event, endpoint) recorded before is kept as it is). On PostgreSQL
// both are ONE statement (the events' INSERT in a WITH); on SQLite two.
// Each statement's VALUES is padded to a power of two with rows of an
// empty id that its WHERE drops: a handful of statement texts, kept by the
// engines' statement caches, instead of one per batch size.
func (r *recording) flush(ctx context.Context, tx *sqldb.Tx) error {
	byEvent := make(map[string]int, len(r.events))
	for i, ev := range r.events {
		byEvent[ev.id] = i
	}
	written := make(map[string]bool, len(r.events))
	for rows := r.rows; len(rows) > 0; {
		chunk := rows[:min(len(rows), maxRecordRows)]
		rows = rows[len(chunk):]
		var evs []eventRow
		for _, d := range chunk {
			if !written[d.e.ID] {
				written[d.e.ID] = true
				evs = append(evs, r.events[byEvent[d.e.ID]])
			}
		}
		if err := r.write(ctx, tx, evs, chunk); err != nil {
			return fmt.Errorf("webhooks: record deliveries: %w", err)
		}
	}
	return nil
}

func (r *recording) write(ctx context.Context, tx *sqldb.Tx, evs []eventRow, chunk []deliveryRow) error {
	var q strings.Builder
	var args []any
	pg := tx.Engine() == sqldb.Postgres
	eventsSQL := func() {
		q.WriteString(`INSERT INTO webhooks_events (event_id, customer_id, envelope, created_at)
			SELECT v.column1, v.column2, v.column3, v.column4 FROM (VALUES `)
		args = values(tx.Engine(), &q, args, eventTypes, len(evs), func(i int) []any {
			ev := evs[i]
			return []any{ev.id, ev.customer, ev.envelope, ev.at}
		})
		q.WriteString(`) AS v WHERE v.column1 <> '' ON CONFLICT (event_id) DO UPDATE SET created_at = excluded.created_at`)
	}
	if pg {
		q.WriteString("WITH ev AS (")
		eventsSQL()
		q.WriteString(") ")
	} else {
		eventsSQL()
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
		q.Reset()
		args = args[:0]
	}
	q.WriteString(`INSERT INTO webhooks_deliveries (id, endpoint_id, event_id, event_type, aggregate_type, aggregate_id,
			sequence, status, next_at, created_at, fifo, attempts, updated_at)
		SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9,
			v.column10, v.column11, 0, v.column10 FROM (VALUES `)
	args = values(tx.Engine(), &q, args, deliveryTypes, len(chunk), func(i int) []any {
		d := chunk[i]
		return []any{d.id, d.endpointID, d.e.ID, d.e.Type, d.e.AggregateType, d.e.AggregateID, d.e.Sequence, d.status,
			d.next, sqldb.Micros(tx.Now), boolInt(d.fifo)}
	})
	q.WriteString(`) AS v WHERE v.column1 <> '' ON CONFLICT (event_id, endpoint_id) DO NOTHING RETURNING id`)
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	inserted := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		inserted[id] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, d := range chunk {
		if d.claim != nil && inserted[d.id] {
			r.handoff = append(r.handoff, *d.claim)
		}
	}
	return nil
}

// values writes n rows of parameters typed by types to q, padded to a
// power of two with rows of zero values (an empty first column, which the
// statement's WHERE drops), and returns args with theirs appended.
func values(e sqldb.Engine, q *strings.Builder, args []any, types []string, n int, row func(int) []any) []any {
	padded := 1
	for padded < n {
		padded *= 2
	}
	for i := range padded {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		for k, typ := range types {
			if k > 0 {
				q.WriteString(", ")
			}
			if i == 0 {
				q.WriteString("CAST(")
				sqldb.Params(e, q, len(args)+k+1, 1)
				q.WriteString(" AS " + typ + ")")
			} else {
				sqldb.Params(e, q, len(args)+k+1, 1)
			}
		}
		q.WriteByte(')')
		if i < n {
			args = append(args, row(i)...)
			continue
		}
		for _, typ := range types {
			if typ == "TEXT" {
				args = append(args, "")
			} else {
				args = append(args, 0)
			}
		}
	}
	return args
}

// insertDelivery records e's delivery to endpointID (fifo: whether the
// endpoint is) with status, due at next, and e's envelope (body) unless
// recorded before, one at a time (a test event); it returns the
// delivery's id, "" when the endpoint has it already.
func insertDelivery(ctx context.Context, tx *sqldb.Tx, endpointID string, fifo bool, e event.Envelope, body []byte, status string, next time.Time) (string, error) {
	if err := putEvent(ctx, tx, e, body); err != nil {
		return "", err
	}
	id := event.NewID()
	res, err := tx.ExecContext(ctx, `INSERT INTO webhooks_deliveries (id, endpoint_id, event_id, event_type,
			aggregate_type, aggregate_id, sequence, status, attempts, next_at, created_at, updated_at, fifo)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $10, $11)
		ON CONFLICT (event_id, endpoint_id) DO NOTHING`,
		id, endpointID, e.ID, e.Type, e.AggregateType, e.AggregateID, e.Sequence, status,
		sqldb.Micros(next), sqldb.Micros(tx.Now), boolInt(fifo))
	if err != nil {
		return "", fmt.Errorf("webhooks: record delivery: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return "", err
	}
	return id, nil
}

// putEvent keeps e's envelope (body) for its deliveries: a new row, or the
// one recorded before as it is but for its created_at (so that the prune
// leaves it under the deliveries being recorded).
func putEvent(ctx context.Context, tx *sqldb.Tx, e event.Envelope, body []byte) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO webhooks_events (event_id, customer_id, envelope, created_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO UPDATE SET created_at = excluded.created_at`,
		e.ID, customerOf(e), string(body), sqldb.Micros(tx.Now))
	if err != nil {
		return fmt.Errorf("webhooks: record event: %w", err)
	}
	return nil
}

// setDeliveriesFIFO keeps the undelivered deliveries of endpoint id (dead
// ones too: a replay makes them pending) in step with its fifo setting (the
// per-aggregate index holds fifo ones only).
func setDeliveriesFIFO(ctx context.Context, tx *sqldb.Tx, id string, fifo bool) error {
	_, err := tx.ExecContext(ctx, `UPDATE webhooks_deliveries SET fifo = $2
		WHERE endpoint_id = $1 AND status <> 'delivered' AND fifo <> $2`, id, boolInt(fifo))
	return err
}

func (s *Service) loadTargets(ctx context.Context, tx *sqldb.Tx) ([]*target, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, events, channels, url, fifo, secret_sealed, previous_secret_sealed,
			previous_secret_until FROM webhooks_endpoints WHERE enabled = 1 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("webhooks: endpoints: %w", err)
	}
	defer rows.Close()
	var out []*target
	for rows.Next() {
		t := &target{}
		var events, channels string
		var fifo int
		if err := rows.Scan(&t.id, &events, &channels, &t.url, &fifo, &t.sealed, &t.prevSealed, &t.prevUntil); err != nil {
			return nil, fmt.Errorf("webhooks: endpoints: %w", err)
		}
		t.fifo = fifo == 1
		if err := json.Unmarshal([]byte(channels), &t.channels); err != nil {
			return nil, fmt.Errorf("webhooks: endpoint %s channels: %w", t.id, err)
		}
		if len(t.channels) == 0 {
			t.channels = nil
		}
		var fs []string
		if err := json.Unmarshal([]byte(events), &fs); err != nil {
			return nil, fmt.Errorf("webhooks: endpoint %s filters: %w", t.id, err)
		}
		for _, f := range fs {
			if p, err := event.ParsePattern(f); err == nil {
				t.patterns = append(t.patterns, p)
			}
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
