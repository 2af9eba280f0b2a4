package inbox

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
)

// item is one delivery of a batch.
type item struct {
	d   bus.Delivery
	e   event.Envelope
	bad error // the message is not an envelope
}

// settlement is how a delivery is settled: Ack, or Nak(delay).
type settlement struct {
	nak   bool
	delay time.Duration
}

type aggKey struct{ typ, id string }

// kept is what the outbox keeps of an aggregate's events before a sequence:
// how many, and whether one of them is of a type the consumer handles.
type kept struct {
	n       int64
	handled bool
}

func keyOf(e event.Envelope) aggKey { return aggKey{e.AggregateType, e.AggregateID} }

// batchResult is what a committed batch changed, for metrics.
type batchResult struct {
	processed, failed, parked int
	lastOccurred              time.Time
}

// batchState is what one try of a batch's transaction read and decided
// (sqldb.RunBatch may try a batch more than once; Begin makes it afresh).
type batchState struct {
	done     map[string]bool  // event ids already in the inbox
	pos      map[aggKey]int64 // last applied sequence per aggregate
	before   map[aggKey]int64 // the sequence of each aggregate's first handled event in the batch, where not its first
	earlier  map[aggKey]kept  // for those of before without a position: what the outbox keeps below it
	attempts map[string]int   // recorded failed attempts per event
	failing  map[aggKey]bool  // aggregates with a retrying event
	moved    map[aggKey]int64 // positions to write
	applied  []string         // event ids to write to the inbox
	settled  map[*item]settlement
	res      batchResult
}

// handle applies one batch of deliveries in one transaction, then settles
// them. It is the bus.Subscriber callback.
//
// Each delivery is a unit of the write path (sqldb.RunBatch): its handler's
// writes are rolled back alone when it fails, and the failure (or the
// parking of its last attempt) is recorded by the unit's OnFail. A batch of
// first deliveries runs its handlers without savepoints (two statements
// fewer per event); a batch that may hold retries runs guarded from the
// start.
func (w *worker) handle(ctx context.Context, ds []bus.Delivery) {
	items := make([]*item, len(ds))
	for i, d := range ds {
		it := &item{d: d}
		if err := json.Unmarshal(d.Message().Data, &it.e); err != nil {
			it.bad = err
		} else if it.e.ID == "" || it.e.AggregateType == "" || it.e.AggregateID == "" {
			it.bad = errors.New("envelope lacks id or aggregate")
		}
		items[i] = it
	}
	// Apply each aggregate's events in sequence order, whatever order the
	// bus delivered them in; aggregates are independent of each other.
	slices.SortStableFunc(items, func(a, b *item) int {
		if a.bad != nil || b.bad != nil {
			return cmp.Compare(boolInt(a.bad == nil), boolInt(b.bad == nil))
		}
		return cmp.Or(cmp.Compare(a.e.AggregateType, b.e.AggregateType),
			cmp.Compare(a.e.AggregateID, b.e.AggregateID), cmp.Compare(a.e.Sequence, b.e.Sequence))
	})
	// Let a batch in flight commit when the Runner stops.
	dbctx := context.WithoutCancel(ctx)
	if st, ok := w.shared(dbctx, items); ok {
		w.settle(items, st)
		return
	}
	var st *batchState
	b := sqldb.Batch{Logger: w.r.cfg.Logger, Begin: func(tx *sqldb.Tx) (err error) {
		st, err = w.begin(dbctx, tx, items, false)
		return err
	}}
	for _, it := range items {
		b.Guarded = b.Guarded || it.d.Attempt() > 1
		b.Units = append(b.Units, sqldb.Unit{
			Run:    func(tx *sqldb.Tx) error { return w.apply(dbctx, tx, st, it) },
			OnFail: func(tx *sqldb.Tx, herr error) error { return w.failed(dbctx, tx, st, it, herr) },
		})
	}
	if res := w.r.db.RunBatch(dbctx, b); res.Err != nil {
		// Nothing was recorded: every delivery comes back, none counts as a
		// failure of its handler.
		w.r.cfg.Logger.Error("inbox: batch", "consumer", w.c.Name, "events", len(items), "err", res.Err)
		for _, it := range items {
			it.d.Nak(w.r.cfg.RetryBase)
		}
		return
	}
	w.settle(items, st)
}

// errSharedFailed fails the shared unit of a batch with a failing item.
var errSharedFailed = errors.New("inbox: an event of the batch failed")

// shared applies a batch of first deliveries as ONE unit on the Runner's
// shared write path (RunnerConfig.Write), so that it commits together with
// the other consumers' batches and the requests' units instead of paying a
// commit of its own. It reports false when there is no shared path, when
// the batch may hold retries, or when one of its events failed: the unit
// is then rolled back whole and the caller applies the batch in its own
// transaction, each event decided on its own.
func (w *worker) shared(ctx context.Context, items []*item) (*batchState, bool) {
	if w.r.cfg.Write == nil {
		return nil, false
	}
	for _, it := range items {
		if it.bad != nil || it.d.Attempt() > 1 {
			return nil, false
		}
	}
	var st *batchState
	err := w.r.cfg.Write.Run(ctx, sqldb.Unit{Run: func(tx *sqldb.Tx) error {
		s, err := w.begin(ctx, tx, items, true)
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := w.apply(ctx, tx, s, it); err != nil {
				return errSharedFailed
			}
		}
		st = s // the run that committed is the last that succeeded
		return nil
	}})
	if err != nil {
		return nil, false
	}
	return st, true
}

// settle acknowledges or sends back the deliveries of a committed batch as
// st decided, and records its metrics.
func (w *worker) settle(items []*item, st *batchState) {
	for _, it := range items {
		var err error
		// An item the committed try did not settle broke the transaction or
		// could not record its failure: it comes back.
		s, ok := st.settled[it]
		switch {
		case !ok:
			err = it.d.Nak(w.r.cfg.RetryBase)
		case s.nak:
			err = it.d.Nak(s.delay)
		default:
			err = it.d.Ack()
		}
		if err != nil {
			w.r.cfg.Logger.Warn("inbox: settle", "consumer", w.c.Name, "err", err)
		}
	}
	w.m.observe(st.res)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// begin reads, in a try's transaction, what the batch's units decide on,
// and registers the batch's own writes (inbox rows, positions, stats) to
// run after the last unit. first says every delivery of the batch is its
// event's first.
func (w *worker) begin(ctx context.Context, tx *sqldb.Tx, items []*item, first bool) (*batchState, error) {
	var ids []string
	var aggs []aggKey
	seenAgg := map[aggKey]bool{}
	// before: per aggregate whose first handled event of the batch is not
	// its first, that event's sequence (the outbox rows below it are looked
	// up, for when the consumer has no position for the aggregate yet).
	before := map[aggKey]int64{}
	handled := map[aggKey]bool{}
	for _, it := range items {
		if it.bad != nil {
			continue
		}
		k := keyOf(it.e)
		if !seenAgg[k] {
			seenAgg[k] = true
			aggs = append(aggs, k)
		}
		if !w.selects(it.e.Type) {
			continue
		}
		ids = append(ids, it.e.ID)
		if !handled[k] && it.e.Sequence > 1 {
			before[k] = it.e.Sequence
		}
		handled[k] = true
	}
	st := &batchState{before: before, moved: map[aggKey]int64{}, settled: map[*item]settlement{}}
	var err error
	if st.done, st.pos, st.earlier, err = w.lookup(ctx, tx, ids, aggs, before); err != nil {
		return nil, fmt.Errorf("inbox and positions lookup: %w", err)
	}
	if first && w.r.cfg.GapPatience > 1 {
		// No event of the batch was tried before, so none has a failure
		// recorded; a retrying predecessor of one of them only matters to
		// a delivery that waited GapPatience times, never a first.
		st.attempts, st.failing = map[string]int{}, map[aggKey]bool{}
	} else if st.attempts, st.failing, err = w.failures(ctx, tx, aggs); err != nil {
		return nil, fmt.Errorf("failures lookup: %w", err)
	}
	if err := sqldb.AtCommit(ctx, tx, bookkeepingKey{}, writeBookkeeping, bookkeeping{w.c.Name, st}); err != nil {
		return nil, err
	}
	return st, nil
}

// bookkeeping is one batch's inbox rows, positions and stats, written when
// its transaction commits together with those of the other consumers'
// batches in it (sqldb.AtCommit: on the shared write path one insert and
// two upserts per transaction, not per batch). What a batch reads in
// begin never saw another batch's of the same transaction anyway.
type bookkeeping struct {
	consumer string
	st       *batchState
}

type bookkeepingKey struct{}

// writeBookkeeping writes the batches' inbox rows, their positions (each
// (consumer, aggregate) once, at its highest sequence, in key order) and
// their stats (one row per consumer, in name order).
func writeBookkeeping(ctx context.Context, tx *sqldb.Tx, bs []bookkeeping) error {
	type inboxRow struct{ consumer, id string }
	type posKey struct{ consumer, typ, id string }
	var applied []inboxRow
	moved := map[posKey]int64{}
	stats := map[string]*batchResult{}
	for _, b := range bs {
		for _, id := range b.st.applied {
			applied = append(applied, inboxRow{b.consumer, id})
		}
		for k, seq := range b.st.moved {
			pk := posKey{b.consumer, k.typ, k.id}
			moved[pk] = max(moved[pk], seq)
		}
		r := stats[b.consumer]
		if r == nil {
			r = &batchResult{}
			stats[b.consumer] = r
		}
		r.processed += b.st.res.processed
		r.failed += b.st.res.failed
		if b.st.res.processed > 0 && b.st.res.lastOccurred.After(r.lastOccurred) {
			r.lastOccurred = b.st.res.lastOccurred
		}
	}
	at := sqldb.Micros(tx.Now)
	e := tx.Engine()
	// Each statement takes its rows as one JSON parameter, so its text is
	// the same whatever their number (sqldb.JSONTable); the SELECT's WHERE
	// keeps SQLite from reading ON CONFLICT as a join's ON.
	if len(applied) > 0 {
		rows := make([][]any, len(applied))
		for i, r := range applied {
			rows[i] = []any{r.consumer, r.id}
		}
		if err := execRows(ctx, tx, `INSERT INTO inbox (consumer, event_id, processed_at)
			SELECT r.c, r.e, $1 FROM `+sqldb.JSONTable(e, "$2", "c text", "e text")+` AS r`, rows, at); err != nil {
			return fmt.Errorf("inbox insert: %w", err)
		}
	}
	keys := slices.SortedFunc(maps.Keys(moved), func(a, b posKey) int {
		return cmp.Or(cmp.Compare(a.consumer, b.consumer), cmp.Compare(a.typ, b.typ), cmp.Compare(a.id, b.id))
	})
	if len(keys) > 0 {
		rows := make([][]any, len(keys))
		for i, k := range keys {
			rows[i] = []any{k.consumer, k.typ, k.id, moved[k]}
		}
		if err := execRows(ctx, tx, `INSERT INTO consumer_positions (consumer, aggregate_type, aggregate_id, last_sequence)
			SELECT r.c, r.t, r.i, r.s FROM `+sqldb.JSONTable(e, "$1", "c text", "t text", "i text", "s bigint")+` AS r WHERE true
			ON CONFLICT (consumer, aggregate_type, aggregate_id) DO UPDATE SET last_sequence = excluded.last_sequence
			WHERE consumer_positions.last_sequence < excluded.last_sequence`, rows); err != nil {
			return fmt.Errorf("positions: %w", err)
		}
	}
	var rows [][]any
	for _, c := range slices.Sorted(maps.Keys(stats)) {
		r := stats[c]
		if r.processed == 0 && r.failed == 0 {
			continue
		}
		var lastAt, lastOcc any
		if r.processed > 0 {
			lastAt, lastOcc = at, sqldb.Micros(r.lastOccurred)
		}
		rows = append(rows, []any{c, r.processed, r.failed, lastAt, lastOcc})
	}
	if len(rows) == 0 {
		return nil
	}
	if err := execRows(ctx, tx, `INSERT INTO consumer_stats (consumer, processed, failed, last_processed_at, last_occurred_at)
		SELECT r.c, r.p, r.f, r.a, r.o FROM `+sqldb.JSONTable(e, "$1", "c text", "p bigint", "f bigint", "a bigint", "o bigint")+` AS r WHERE true
		ON CONFLICT (consumer) DO UPDATE SET processed = consumer_stats.processed + excluded.processed,
		failed = consumer_stats.failed + excluded.failed,
		last_processed_at = COALESCE(excluded.last_processed_at, consumer_stats.last_processed_at),
		last_occurred_at = COALESCE(excluded.last_occurred_at, consumer_stats.last_occurred_at)`, rows); err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	return nil
}

// execRows runs query with rows as its last parameter (a JSONTable's),
// after args.
func execRows(ctx context.Context, tx *sqldb.Tx, query string, rows [][]any, args ...any) error {
	js, err := sqldb.JSONRows(rows)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, query, append(args, js)...)
	return err
}

// bookkeepingError is a failure of the inbox's own writes inside a unit: no
// handler failure is recorded for it and the delivery comes back.
type bookkeepingError struct{ err error }

func (e bookkeepingError) Error() string { return e.err.Error() }
func (e bookkeepingError) Unwrap() error { return e.err }

// apply is the Run of an item's unit: it settles a duplicate or early delivery
// without effect, or runs the handler and marks the event applied. State
// changes only after every write succeeded, so a rolled-back unit leaves
// none (no OnRollback needed).
func (w *worker) apply(ctx context.Context, tx *sqldb.Tx, st *batchState, it *item) error {
	if it.bad != nil {
		if err := w.parkMalformed(ctx, tx, it); err != nil {
			return bookkeepingError{err}
		}
		st.res.parked++
		st.settled[it] = settlement{}
		return nil
	}
	e, k := it.e, keyOf(it.e)
	last, known := st.pos[k]
	if !w.selects(e.Type) {
		// No effect. The position moves only where it is the event's
		// predecessor — a position starts with the first event of its
		// aggregate the consumer handles — so that the next event finds it
		// without asking the outbox; otherwise nothing is written.
		if known && e.Sequence == last+1 {
			st.pos[k], st.moved[k] = e.Sequence, e.Sequence
		}
		st.settled[it] = settlement{}
		return nil
	}
	switch {
	case st.done[e.ID] || e.Sequence <= last:
		st.settled[it] = settlement{} // duplicate: ack, no effect
		return nil
	case e.Sequence > last+1:
		wait, err := w.awaitEarlier(ctx, tx, st, it, last, known)
		if err != nil {
			return bookkeepingError{err}
		}
		if wait {
			st.settled[it] = settlement{nak: true, delay: w.gapDelay(it.d.Attempt())}
			return nil
		}
	}
	if err := call(ctx, w.c.Handle, tx, e); err != nil {
		return err
	}
	if _, ok := st.attempts[e.ID]; ok {
		if _, err := tx.ExecContext(ctx, `DELETE FROM consumer_failures WHERE consumer = $1 AND event_id = $2`,
			w.c.Name, e.ID); err != nil {
			return bookkeepingError{err}
		}
	}
	st.pos[k], st.moved[k] = e.Sequence, e.Sequence
	st.applied = append(st.applied, e.ID)
	st.res.processed++
	if e.OccurredAt.After(st.res.lastOccurred) {
		st.res.lastOccurred = e.OccurredAt
	}
	st.settled[it] = settlement{}
	return nil
}

// awaitEarlier decides for a handled event that is not the successor of
// the consumer's position last (none when !known) whether it waits for an
// earlier event: while one of its aggregate's is retrying; while the
// outbox keeps an earlier event of a type the consumer handles (it is on
// its way: in flight when a process died, it comes back after the bus's
// AckWait; lost by the bus, the relay publishes it again); not at all when
// the outbox keeps every earlier event and none is one to handle (they
// were applied with no effect, or will be). When the outbox no longer
// keeps some of them (pruned after its retention, or never written there)
// it waits GapPatience deliveries, then goes on: they may have aged out of
// the bus before the consumer existed.
func (w *worker) awaitEarlier(ctx context.Context, tx *sqldb.Tx, st *batchState, it *item, last int64, known bool) (bool, error) {
	e, k := it.e, keyOf(it.e)
	if st.failing[k] {
		return true, nil
	}
	p, ok := st.earlier[k], !known && st.before[k] == e.Sequence // looked up with the batch's positions
	if !ok {
		var err error
		if p, err = w.keptBetween(ctx, tx, k, last, e.Sequence); err != nil {
			return false, err
		}
	}
	switch {
	case p.handled:
		return true, nil
	case p.n == e.Sequence-last-1:
		return false, nil
	case it.d.Attempt() < w.r.cfg.GapPatience:
		return true, nil
	}
	w.r.cfg.Logger.Warn("inbox: earlier events never arrived and the outbox no longer keeps them; going on without them",
		"consumer", w.c.Name, "aggregate_type", k.typ, "aggregate_id", k.id, "sequence", e.Sequence, "position", last)
	return false, nil
}

// keptBetween reports what the outbox keeps of aggregate k's events with a
// sequence between last and seq (exclusive).
func (w *worker) keptBetween(ctx context.Context, tx *sqldb.Tx, k aggKey, last, seq int64) (kept, error) {
	rows, err := tx.QueryContext(ctx, `SELECT type FROM outbox WHERE aggregate_type = $1 AND aggregate_id = $2
		AND sequence > $3 AND sequence < $4`, k.typ, k.id, last, seq)
	if err != nil {
		return kept{}, fmt.Errorf("earlier events lookup: %w", err)
	}
	defer rows.Close()
	var p kept
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			return kept{}, fmt.Errorf("earlier events lookup: %w", err)
		}
		p.n++
		p.handled = p.handled || w.selects(typ)
	}
	if err := rows.Err(); err != nil {
		return kept{}, fmt.Errorf("earlier events lookup: %w", err)
	}
	return p, nil
}

// failed is the OnFail of an item's unit, after the handler's writes were rolled
// back: it records the failed attempt (the delivery comes back after a
// backoff) or, at the last attempt, parks the event in the dead letters.
func (w *worker) failed(ctx context.Context, tx *sqldb.Tx, st *batchState, it *item, herr error) error {
	if it.bad != nil || errors.As(herr, new(bookkeepingError)) {
		return nil // unsettled: the delivery comes back
	}
	e, k := it.e, keyOf(it.e)
	n := st.attempts[e.ID] + 1
	if n >= w.c.MaxAttempts {
		if err := w.park(ctx, tx, it, n, herr); err != nil {
			return err
		}
		st.pos[k], st.moved[k] = e.Sequence, e.Sequence
		st.res.failed++
		st.res.parked++
		st.settled[it] = settlement{}
		return nil
	}
	if err := w.recordFailure(ctx, tx, e, n, herr); err != nil {
		return err
	}
	st.res.failed++
	st.failing[k] = true
	delay := w.backoff(n)
	st.settled[it] = settlement{nak: true, delay: delay}
	w.r.cfg.Logger.Warn("inbox: handler failed; will retry", "consumer", w.c.Name, "event_id", e.ID,
		"type", e.Type, "attempt", n, "retry_in", delay, "err", herr)
	return nil
}

// call runs h, turning a panic into an error so that only its own writes
// are rolled back and the failure is recorded like any other.
func call(ctx context.Context, h Handler, tx *sqldb.Tx, e event.Envelope) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v", p)
		}
	}()
	return h(ctx, tx, e)
}

// backoff is the delay before the attempt after the nth failure:
// RetryBase·2^(n-1) capped at RetryCap, minus up to a quarter of jitter (so
// that successive delays still grow).
func (w *worker) backoff(n int) time.Duration {
	d := w.r.cfg.RetryCap
	if n-1 < 40 {
		d = min(d, w.r.cfg.RetryBase<<(n-1))
	}
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

// gapDelay is how long a delivery waits for its predecessor, growing with
// its delivery count.
func (w *worker) gapDelay(attempt int) time.Duration {
	return w.r.cfg.GapDelay * time.Duration(min(max(attempt, 1), 20))
}

// maxErrText bounds the error text kept for operators.
const maxErrText = 2000

func errText(err error) string {
	s := err.Error()
	if len(s) > maxErrText {
		s = s[:maxErrText]
	}
	return s
}

func (w *worker) recordFailure(ctx context.Context, tx *sqldb.Tx, e event.Envelope, n int, herr error) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO consumer_failures (consumer, event_id, aggregate_type, aggregate_id,
			sequence, attempts, last_error, first_failed_at, last_failed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
		ON CONFLICT (consumer, event_id) DO UPDATE SET attempts = excluded.attempts,
			last_error = excluded.last_error, last_failed_at = excluded.last_failed_at`,
		w.c.Name, e.ID, e.AggregateType, e.AggregateID, e.Sequence, n, errText(herr), sqldb.Micros(tx.Now))
	if err != nil {
		return fmt.Errorf("record failure: %w", err)
	}
	return nil
}

// park moves an event that failed its last attempt to the dead letters.
func (w *worker) park(ctx context.Context, tx *sqldb.Tx, it *item, n int, herr error) error {
	if err := insertDeadLetter(ctx, tx, w.c.Name, it.e.ID, it.d.Message().Data, n, errText(herr)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM consumer_failures WHERE consumer = $1 AND event_id = $2`,
		w.c.Name, it.e.ID); err != nil {
		return fmt.Errorf("park: %w", err)
	}
	w.r.cfg.Logger.Error("inbox: event parked in dead letters", "consumer", w.c.Name, "event_id", it.e.ID,
		"type", it.e.Type, "attempts", n, "err", herr)
	return nil
}

// parkMalformed parks a message that is not an envelope: no handler can
// ever apply it.
func (w *worker) parkMalformed(ctx context.Context, tx *sqldb.Tx, it *item) error {
	w.r.cfg.Logger.Error("inbox: malformed message parked", "consumer", w.c.Name, "id", it.d.Message().ID, "err", it.bad)
	return insertDeadLetter(ctx, tx, w.c.Name, it.d.Message().ID, it.d.Message().Data, 1, "malformed envelope: "+errText(it.bad))
}

func insertDeadLetter(ctx context.Context, tx *sqldb.Tx, consumer, eventID string, envelope []byte, attempts int, lastErr string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO dead_letters (consumer, event_id, envelope, attempts, last_error, parked_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (consumer, event_id) DO NOTHING`,
		consumer, eventID, string(envelope), attempts, lastErr, sqldb.Micros(tx.Now))
	if err != nil {
		return fmt.Errorf("park: %w", err)
	}
	return nil
}

// lookup returns which of ids the consumer has applied, its last sequence
// of each of aggs it has a position for and, for each aggregate of before
// it has none for, what the outbox keeps of that aggregate's events below
// before's sequence — in one statement (primary-key and index lookups, one
// UNION ALL) of one text whatever the numbers (sqldb.JSONTable).
func (w *worker) lookup(ctx context.Context, tx *sqldb.Tx, ids []string, aggs []aggKey, before map[aggKey]int64) (map[string]bool, map[aggKey]int64, map[aggKey]kept, error) {
	done, pos, earlier := map[string]bool{}, map[aggKey]int64{}, map[aggKey]kept{}
	if len(aggs) == 0 { // no event to apply
		return done, pos, earlier, nil
	}
	e := tx.Engine()
	types := "group_concat(DISTINCT o.type)"
	if e == sqldb.Postgres {
		types = "string_agg(DISTINCT o.type, ',')"
	}
	idRows := make([][]any, len(ids))
	for i, id := range ids {
		idRows[i] = []any{id}
	}
	beforeRows := make([][]any, 0, len(before))
	for k, seq := range before {
		beforeRows = append(beforeRows, []any{k.typ, k.id, seq})
	}
	var args []any
	for _, rows := range [][][]any{aggRows(aggs), idRows, beforeRows} {
		js, err := sqldb.JSONRows(rows)
		if err != nil {
			return nil, nil, nil, err
		}
		args = append(args, js)
	}
	rows, err := tx.QueryContext(ctx, `SELECT 'p', aggregate_type, aggregate_id, last_sequence, '' FROM consumer_positions
		WHERE consumer = $1 AND (aggregate_type, aggregate_id) IN (SELECT a.t, a.i FROM `+sqldb.JSONTable(e, "$2", "t text", "i text")+` AS a)
		UNION ALL SELECT 'i', event_id, '', 0, '' FROM inbox
		WHERE consumer = $1 AND event_id IN (SELECT d.e FROM `+sqldb.JSONTable(e, "$3", "e text")+` AS d)
		UNION ALL SELECT 'o', o.aggregate_type, o.aggregate_id, COUNT(*), `+types+`
		FROM outbox o JOIN `+sqldb.JSONTable(e, "$4", "t text", "i text", "s bigint")+` AS b
			ON o.aggregate_type = b.t AND o.aggregate_id = b.i AND o.sequence < b.s
		WHERE NOT EXISTS (SELECT 1 FROM consumer_positions p WHERE p.consumer = $1
			AND p.aggregate_type = o.aggregate_type AND p.aggregate_id = o.aggregate_id)
		GROUP BY o.aggregate_type, o.aggregate_id`, append([]any{w.c.Name}, args...)...)
	if err != nil {
		return nil, nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var kind, a, b string
		var typs sql.NullString
		var n int64
		if err := rows.Scan(&kind, &a, &b, &n, &typs); err != nil {
			return nil, nil, nil, err
		}
		switch kind {
		case "i":
			done[a] = true
		case "p":
			pos[aggKey{a, b}] = n
		default:
			p := kept{n: n}
			for typ := range strings.SplitSeq(typs.String, ",") {
				p.handled = p.handled || w.selects(typ)
			}
			earlier[aggKey{a, b}] = p
		}
	}
	return done, pos, earlier, rows.Err()
}

// aggRows is aggs as JSONTable rows (type, id).
func aggRows(aggs []aggKey) [][]any {
	rows := make([][]any, len(aggs))
	for i, k := range aggs {
		rows[i] = []any{k.typ, k.id}
	}
	return rows
}

// failures returns the recorded failed attempts of the retrying events of
// aggs, and which of aggs have one.
func (w *worker) failures(ctx context.Context, tx *sqldb.Tx, aggs []aggKey) (map[string]int, map[aggKey]bool, error) {
	attempts, failing := map[string]int{}, map[aggKey]bool{}
	if len(aggs) == 0 {
		return attempts, failing, nil
	}
	js, err := sqldb.JSONRows(aggRows(aggs))
	if err != nil {
		return nil, nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT event_id, aggregate_type, aggregate_id, attempts FROM consumer_failures
		WHERE consumer = $1 AND (aggregate_type, aggregate_id) IN (SELECT a.t, a.i FROM `+
		sqldb.JSONTable(tx.Engine(), "$2", "t text", "i text")+` AS a)`, w.c.Name, js)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var k aggKey
		var n int
		if err := rows.Scan(&id, &k.typ, &k.id, &n); err != nil {
			return nil, nil, err
		}
		attempts[id], failing[k] = n, true
	}
	return attempts, failing, rows.Err()
}
