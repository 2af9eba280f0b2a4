// Package outbox is the transactional outbox: a module appends its domain
// events to the outbox table in the same transaction as the state change
// (Append), and a Relay publishes committed rows to the bus in order,
// marking them published. Published rows are kept for a retention period so
// that the bus can be re-fed: after an unclean stop the relay re-publishes
// the recent tail, which JetStream's lazy disk sync may have lost.
//
// Ordering: each event gets the next Sequence of its aggregate
// (outbox_sequences, one upsert of all a transaction's aggregates just
// before it commits, followed by the outbox rows' INSERT). On PostgreSQL
// that upsert's row locks serialise the writers of one aggregate, so an
// aggregate's outbox ids, sequences and commits are in the same order, and a
// relay that publishes unpublished rows in id order hands every aggregate's
// events to the bus in sequence. The relay never reads "after the last id it
// saw", so a transaction that commits after one with a later id is still
// picked up.
//
// The relay's order guarantee stops at the hand-off: it never hands the bus
// an event while an earlier one of its aggregate is unacknowledged, but a
// publish that fails partway may leave the bus holding a later event before
// an earlier one (stored by the retry), and the bus redelivers out of order
// anyway. Consumers order by sequence (package inbox).
//
// Waking the relay: Append wakes the Waker carried by its context (see
// WithWaker) after the transaction commits; a process wires its Relay once
// into its base context. On PostgreSQL, Append also notifies the relays of
// other replicas (pg_notify in the transaction). Polling is the fallback, so
// a command-line process that appends with no waker is picked up too.
package outbox

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the outbox tables' migrations.
func Migrations() migrate.Source { return migrate.Embedded("outbox", migrations) }

// Waker is told that events were committed. *Relay is one. Wake must not
// block.
type Waker interface{ Wake() }

type wakerKey struct{}

// WithWaker returns a context whose Appends wake w after their transaction
// commits. A process calls it once on its base context (the HTTP server's
// BaseContext, the consumer runner's context) with its Relay; an Append under
// a context without a waker is published at the relay's next poll.
func WithWaker(ctx context.Context, w Waker) context.Context {
	return context.WithValue(ctx, wakerKey{}, w)
}

func wakerFrom(ctx context.Context) Waker {
	w, _ := ctx.Value(wakerKey{}).(Waker)
	return w
}

// notifyChannel is the PostgreSQL LISTEN/NOTIFY channel of the outbox of the
// current schema, computed by the server so that Append needs no state.
const notifySQL = `SELECT pg_notify('mercato_outbox.' || current_schema(), '')`

// seqUpsert ends the sequence upsert: each row's count is added to the
// aggregate's last sequence, which the statement returns. On PostgreSQL the
// rows are locked in VALUES order (sorted), until the transaction ends.
const seqUpsert = ` ON CONFLICT (aggregate_type, aggregate_id)
DO UPDATE SET last_sequence = outbox_sequences.last_sequence + excluded.last_sequence
RETURNING aggregate_type, aggregate_id, last_sequence`

// insertChunk bounds the rows of one INSERT (8 parameters each), well
// under both engines' parameter limits.
const insertChunk = 500

// Append adds events to the outbox inside the caller's transaction tx, so
// they commit (and are later published) exactly when the caller's state
// change does, or not at all.
//
// For each event Append fills ID (a new event id) and OccurredAt (tx.Now)
// when they are empty and defaults empty Data to {}; just before tx
// commits, Sequence is set to the next sequence of its aggregate, in the
// order of the transaction's Appends and their arguments: events of one
// aggregate get consecutive sequences. The envelopes are changed in place
// (a rolled-back unit's keep Sequence 0). Type (a valid noun.verb), SchemaVersion (1 or
// more), AggregateType and AggregateID are required, the type's noun must be
// the aggregate type (order.placed is about an order), and Data must be
// valid JSON; an event breaking these rules is refused (Internal) and
// nothing is appended. Envelopes made by an event.Kind satisfy them.
//
// The sequences of all the events the transaction's units appended are
// taken together, and the rows inserted together, by one BeforeCommit hook
// (one sequence upsert and one INSERT per transaction, however many units
// and aggregates), so a read of the outbox or of Sequence inside a unit
// does not see them yet: a use case that needs an event's sequence reads
// it in a BeforeCommit hook registered after its Append. A unit whose
// writes are rolled back takes its events back. An Append made after that
// hook ran (by a later hook) takes its sequences and inserts at once.
//
// The hook locks the aggregates' sequence rows in one sorted statement, so
// concurrent transactions do not deadlock each other over them.
func Append(ctx context.Context, tx *sqldb.Tx, events ...*event.Envelope) error {
	const op = "outbox.Append"
	if len(events) == 0 {
		return nil
	}
	for _, e := range events {
		if e == nil || e.Type == "" || e.AggregateType == "" || e.AggregateID == "" {
			return errs.E(op, errs.Internal, "event needs a type, aggregate type and aggregate id")
		}
		if err := event.CheckType(e.Type); err != nil {
			return errs.E(op, errs.Internal, err)
		}
		if noun := event.Noun(e.Type); noun != e.AggregateType {
			return errs.E(op, errs.Internal, fmt.Sprintf("event %s names the aggregate type %q, not %q: the noun of a type is its aggregate type",
				e.Type, noun, e.AggregateType))
		}
		if e.SchemaVersion < 1 {
			return errs.E(op, errs.Internal, fmt.Sprintf("event %s has no schema version", e.Type))
		}
		if e.ID == "" {
			e.ID = event.NewID()
		}
		if e.OccurredAt.IsZero() {
			e.OccurredAt = tx.Now
		}
		e.OccurredAt = e.OccurredAt.UTC()
		if len(e.Data) == 0 {
			e.Data = json.RawMessage("{}")
		} else if !json.Valid(e.Data) {
			return errs.E(op, errs.Internal, fmt.Sprintf("event %s: data is not valid JSON", e.Type))
		}
	}
	if err := queue(ctx, tx, events); err != nil {
		return errs.E(op, err)
	}
	if w := wakerFrom(ctx); w != nil {
		tx.AfterCommit(w.Wake)
	}
	return nil
}

// queuedRow is an appended event as it will be inserted (a copy: the caller's
// envelope may change after Append returns).
type queuedRow struct {
	id, typ, aggType, aggID string
	version                 int
	seq                     int64
	at                      int64
	data                    string
	env                     *event.Envelope // told its Sequence
}

type queuedKey struct{}

// queue makes events' rows part of tx's pending write (sqldb.AtCommit):
// their sequences are taken and their rows inserted together, just before
// it commits (the checkout loop's requests and consumers append several
// events each; a batch of them is one sequence upsert and one INSERT
// instead of one of each per aggregate and use case). The sequences are
// taken right before the rows are inserted, under the aggregates' locks,
// so the order of ids, sequences and commits of one aggregate holds.
func queue(ctx context.Context, tx *sqldb.Tx, events []*event.Envelope) error {
	rs := make([]queuedRow, len(events))
	for i, e := range events {
		rs[i] = queuedRow{id: e.ID, typ: e.Type, aggType: e.AggregateType, aggID: e.AggregateID, version: e.SchemaVersion,
			at: sqldb.Micros(e.OccurredAt), data: string(e.Data), env: e}
	}
	return sqldb.AtCommit(ctx, tx, queuedKey{}, flush, rs...)
}

// flush takes rows' sequences, inserts them in order and, on PostgreSQL,
// notifies the other replicas' relays once.
func flush(ctx context.Context, tx *sqldb.Tx, rows []queuedRow) error {
	if len(rows) == 0 {
		return nil
	}
	if err := sequence(ctx, tx, rows); err != nil {
		return err
	}
	for start := 0; start < len(rows); start += insertChunk {
		if err := insertRows(ctx, tx, rows[start:min(start+insertChunk, len(rows))]); err != nil {
			return err
		}
	}
	if tx.Engine() == sqldb.Postgres {
		if _, err := tx.ExecContext(ctx, notifySQL); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
	}
	return nil
}

// sequence gives each row the next sequence of its aggregate, in order:
// one upsert of every aggregate of rows (sorted, so that on PostgreSQL
// their locks are taken in one order), adding each one's count to its
// last sequence.
func sequence(ctx context.Context, tx *sqldb.Tx, rows []queuedRow) error {
	type aggKey struct{ typ, id string }
	counts := make(map[aggKey]int64, len(rows))
	var keys []aggKey
	for _, r := range rows {
		k := aggKey{r.aggType, r.aggID}
		if counts[k] == 0 {
			keys = append(keys, k)
		}
		counts[k]++
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].typ != keys[j].typ {
			return keys[i].typ < keys[j].typ
		}
		return keys[i].id < keys[j].id
	})
	next := make(map[aggKey]int64, len(keys))
	ph := func(b *strings.Builder, n int) { sqldb.Params(tx.Engine(), b, n, 1) }
	for start := 0; start < len(keys); start += insertChunk {
		chunk := keys[start:min(start+insertChunk, len(keys))]
		var b strings.Builder
		b.WriteString(`INSERT INTO outbox_sequences (aggregate_type, aggregate_id, last_sequence) VALUES `)
		args := make([]any, 0, 3*len(chunk))
		for i, k := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			ph(&b, 3*i+1)
			b.WriteString(", ")
			ph(&b, 3*i+2)
			b.WriteString(", ")
			ph(&b, 3*i+3)
			b.WriteByte(')')
			args = append(args, k.typ, k.id, counts[k])
		}
		b.WriteString(seqUpsert)
		qrows, err := tx.QueryContext(ctx, b.String(), args...)
		if err != nil {
			return fmt.Errorf("sequence: %w", err)
		}
		for qrows.Next() {
			var k aggKey
			var last int64
			if err := qrows.Scan(&k.typ, &k.id, &last); err != nil {
				qrows.Close()
				return fmt.Errorf("sequence: %w", err)
			}
			next[k] = last - counts[k] + 1
		}
		if err := qrows.Close(); err != nil {
			return fmt.Errorf("sequence: %w", err)
		}
		if len(next) != start+len(chunk) {
			return fmt.Errorf("sequence: %d rows returned for %d aggregates", len(next)-start, len(chunk))
		}
	}
	for i := range rows {
		k := aggKey{rows[i].aggType, rows[i].aggID}
		rows[i].seq = next[k]
		rows[i].env.Sequence = next[k]
		next[k]++
	}
	return nil
}

// insertRows inserts rows with one multi-row INSERT, in order, so that on
// both engines their ids increase in argument order.
func insertRows(ctx context.Context, tx *sqldb.Tx, rows []queuedRow) error {
	const cols = 8
	var b strings.Builder
	b.WriteString(`INSERT INTO outbox (event_id, type, schema_version, aggregate_type, aggregate_id, sequence, occurred_at, data) VALUES `)
	args := make([]any, 0, cols*len(rows))
	ph := func(b *strings.Builder, n int) { sqldb.Params(tx.Engine(), b, n, 1) }
	for i, e := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range cols {
			if j > 0 {
				b.WriteString(", ")
			}
			ph(&b, cols*i+j+1)
		}
		b.WriteByte(')')
		args = append(args, e.id, e.typ, e.version, e.aggType, e.aggID, e.seq, e.at, e.data)
	}
	if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	return nil
}

// Pending reports how many committed events are not yet published.
func Pending(ctx context.Context, db *sqldb.DB) (int64, error) {
	var n int64
	err := db.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE published_at IS NULL`).Scan(&n)
	if err != nil {
		return 0, errs.E("outbox.Pending", err)
	}
	return n, nil
}
