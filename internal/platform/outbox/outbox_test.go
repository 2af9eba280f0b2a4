package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// recorder is a bus.Publisher that keeps what it was given and signals each
// call.
type recorder struct {
	mu     sync.Mutex
	msgs   []bus.Message
	signal chan struct{}
}

func newRecorder() *recorder { return &recorder{signal: make(chan struct{}, 1)} }

func (p *recorder) Publish(ctx context.Context, msgs []bus.Message) error {
	p.mu.Lock()
	p.msgs = append(p.msgs, msgs...)
	p.mu.Unlock()
	select {
	case p.signal <- struct{}{}:
	default:
	}
	return nil
}

func (p *recorder) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, len(p.msgs))
	for i, m := range p.msgs {
		out[i] = m.ID
	}
	return out
}

// waitIDs waits until the recorder has published exactly want (in order).
func (p *recorder) waitIDs(t *testing.T, want []string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if got := p.ids(); slices.Equal(got, want) {
			return
		} else if len(got) > len(want) {
			t.Fatalf("published %v, want %v", got, want)
		}
		select {
		case <-p.signal:
		case <-deadline:
			t.Fatalf("published %v, want %v", p.ids(), want)
		}
	}
}

// appendEvents appends one event per aggregate id given, in one transaction.
func appendEvents(t *testing.T, db *sqldb.DB, aggIDs ...string) []*event.Envelope {
	t.Helper()
	var evs []*event.Envelope
	err := db.InTx(context.Background(), func(tx *sqldb.Tx) error {
		for _, id := range aggIDs {
			e, err := orderPlaced.New(id, time.Time{}, orderRef{Order: id})
			if err != nil {
				return err
			}
			evs = append(evs, &e)
		}
		return Append(context.Background(), tx, evs...)
	})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return evs
}

// The kinds the outbox tests append.
var (
	orderPlaced = event.Define[orderRef]("order.placed", 1, "test: an order was placed")
	orderPaid   = event.Define[struct{}]("order.paid", 1, "test: an order was paid")
)

type orderRef struct {
	Order string `json:"order"`
}

func idsOf(evs ...[]*event.Envelope) []string {
	var out []string
	for _, es := range evs {
		for _, e := range es {
			out = append(out, e.ID)
		}
	}
	return out
}

func pending(t *testing.T, db *sqldb.DB) int64 {
	t.Helper()
	n, err := Pending(context.Background(), db)
	if err != nil {
		t.Fatalf("pending: %v", err)
	}
	return n
}

func TestAppend(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		t.Run("sequences per aggregate", func(t *testing.T) {
			first := appendEvents(t, db, "a", "a", "b", "a")
			second := appendEvents(t, db, "b", "a")
			var got []string
			for _, e := range append(first, second...) {
				got = append(got, fmt.Sprintf("%s%d", e.AggregateID, e.Sequence))
			}
			if want := []string{"a1", "a2", "b1", "a3", "b2", "a4"}; !slices.Equal(got, want) {
				t.Fatalf("sequences %v, want %v", got, want)
			}
			rows, err := db.Reader().QueryContext(ctx, `SELECT aggregate_id, sequence FROM outbox ORDER BY id`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var stored []string
			for rows.Next() {
				var id string
				var seq int64
				if err := rows.Scan(&id, &seq); err != nil {
					t.Fatal(err)
				}
				stored = append(stored, fmt.Sprintf("%s%d", id, seq))
			}
			if !slices.Equal(stored, got) {
				t.Fatalf("stored in id order %v, want %v", stored, got)
			}
		})
		t.Run("fills id, time and data", func(t *testing.T) {
			at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			db.SetClock(func() time.Time { return at })
			defer db.SetClock(time.Now)
			e := &event.Envelope{Type: "product.created", SchemaVersion: 1, AggregateType: "product", AggregateID: "p1"}
			if err := db.InTx(ctx, func(tx *sqldb.Tx) error { return Append(ctx, tx, e) }); err != nil {
				t.Fatal(err)
			}
			if e.ID == "" || !e.OccurredAt.Equal(at) || string(e.Data) != "{}" || e.Sequence != 1 {
				t.Fatalf("envelope not filled: %+v", e)
			}
		})
		t.Run("rollback leaves nothing", func(t *testing.T) {
			before := pending(t, db)
			boom := errors.New("boom")
			err := db.InTx(ctx, func(tx *sqldb.Tx) error {
				e, _ := orderPaid.New("rb", time.Time{}, struct{}{})
				if err := Append(ctx, tx, &e); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("InTx: %v", err)
			}
			if n := pending(t, db); n != before {
				t.Fatalf("pending %d after rollback, want %d", n, before)
			}
			if e := appendEvents(t, db, "rb"); e[0].Sequence != 1 {
				t.Fatalf("sequence after a rolled-back append = %d, want 1", e[0].Sequence)
			}
		})
		t.Run("rejects invalid events", func(t *testing.T) {
			valid := func(change func(e *event.Envelope)) *event.Envelope {
				e, _ := orderPaid.New("x", time.Time{}, struct{}{})
				change(&e)
				return &e
			}
			cases := []struct {
				name string
				e    *event.Envelope
				want string
			}{
				{"no type", valid(func(e *event.Envelope) { e.Type = "" }), "needs a type"},
				{"no aggregate", valid(func(e *event.Envelope) { e.AggregateType = "" }), "aggregate type"},
				{"no id", valid(func(e *event.Envelope) { e.AggregateID = "" }), "aggregate id"},
				{"bad data", valid(func(e *event.Envelope) { e.Data = json.RawMessage("{") }), "not valid JSON"},
				{"malformed type", valid(func(e *event.Envelope) { e.Type = "OrderPaid" }), "not noun.verb"},
				{"no schema version", valid(func(e *event.Envelope) { e.SchemaVersion = 0 }), "no schema version"},
				{"noun names another aggregate", valid(func(e *event.Envelope) { e.AggregateType = "payment" }),
					`aggregate type "order", not "payment"`},
				{"plural noun", valid(func(e *event.Envelope) { e.AggregateType = "orders" }), `not "orders"`},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					before := pending(t, db)
					good, _ := orderPaid.New("fine", time.Time{}, struct{}{})
					err := db.InTx(ctx, func(tx *sqldb.Tx) error { return Append(ctx, tx, &good, tc.e) })
					var e *errs.Error
					if !errors.As(err, &e) || e.Kind != errs.Internal || !strings.Contains(err.Error(), tc.want) {
						t.Fatalf("Append = %v, want an Internal error about %q", err, tc.want)
					}
					if n := pending(t, db); n != before {
						t.Fatalf("pending %d after a refused Append, want %d", n, before)
					}
				})
			}
		})
		t.Run("wakes the waker after commit only", func(t *testing.T) {
			w := &countWaker{}
			wctx := WithWaker(ctx, w)
			db.InTx(wctx, func(tx *sqldb.Tx) error {
				e, _ := orderPaid.New("w", time.Time{}, struct{}{})
				Append(wctx, tx, &e)
				return errors.New("roll back")
			})
			if w.n != 0 {
				t.Fatalf("woken %d times by a rolled-back append", w.n)
			}
			db.InTx(wctx, func(tx *sqldb.Tx) error {
				e, _ := orderPaid.New("w", time.Time{}, struct{}{})
				return Append(wctx, tx, &e)
			})
			if w.n != 1 {
				t.Fatalf("woken %d times by a committed append, want 1", w.n)
			}
		})
	}, Migrations())
}

type countWaker struct{ n int }

func (w *countWaker) Wake() { w.n++ }

func TestFlushAndPrune(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		evs := appendEvents(t, db, "f1", "f2", "f1")
		p := newRecorder()
		r := NewRelay(db, p, RelayConfig{BatchSize: 2, Retention: time.Hour})
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		p.waitIDs(t, idsOf(evs))
		if n := pending(t, db); n != 0 {
			t.Fatalf("pending %d after flush", n)
		}
		var m event.Envelope
		if err := json.Unmarshal(p.msgs[2].Data, &m); err != nil {
			t.Fatal(err)
		}
		if m.ID != evs[2].ID || m.Sequence != 2 || m.AggregateID != "f1" || p.msgs[2].Subject != "mercato.order.placed" ||
			string(m.Data) != `{"order":"f1"}` {
			t.Fatalf("message %+v / %s, want the envelope of %+v", p.msgs[2], m.Data, evs[2])
		}
		// Two of the three were published two hours ago: past retention.
		old := sqldb.Micros(time.Now().Add(-2 * time.Hour))
		if _, err := db.Writer().ExecContext(ctx, `UPDATE outbox SET published_at = $1 WHERE event_id IN ($2, $3)`,
			old, evs[0].ID, evs[1].ID); err != nil {
			t.Fatal(err)
		}
		unpublished := appendEvents(t, db, "f3")
		n, err := r.Prune(ctx)
		if err != nil || n != 2 {
			t.Fatalf("prune = %d, %v; want 2", n, err)
		}
		var left []string
		rows, _ := db.Reader().QueryContext(ctx, `SELECT event_id FROM outbox ORDER BY id`)
		for rows.Next() {
			var id string
			rows.Scan(&id)
			left = append(left, id)
		}
		rows.Close()
		if want := []string{evs[2].ID, unpublished[0].ID}; !slices.Equal(left, want) {
			t.Fatalf("rows left %v, want %v", left, want)
		}
		// Sequences survive pruning.
		if e := appendEvents(t, db, "f1"); e[0].Sequence != 3 {
			t.Fatalf("sequence after prune = %d, want 3", e[0].Sequence)
		}
	}, Migrations())
}

// TestAppendInsertsAtCommit checks the deferred insert: the events of a
// batch's units are inserted together before the commit, in append order
// (ids follow sequences per aggregate); a failed unit's events are taken
// back with its writes; an event appended by a BeforeCommit hook after the
// insert ran is still inserted.
func TestAppendInsertsAtCommit(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		place := func(tx *sqldb.Tx, agg string) (*event.Envelope, error) {
			e, err := orderPlaced.New(agg, time.Time{}, orderRef{Order: agg})
			if err != nil {
				return nil, err
			}
			return &e, Append(ctx, tx, &e)
		}
		var kept []string
		var late *event.Envelope
		unit := func(agg string, fail bool) sqldb.Unit {
			return sqldb.Unit{Run: func(tx *sqldb.Tx) error {
				e, err := place(tx, agg)
				if err != nil {
					return err
				}
				if fail {
					return errors.New("refused")
				}
				kept = append(kept, e.ID)
				return nil
			}}
		}
		b := sqldb.Batch{Begin: func(*sqldb.Tx) error { kept = nil; return nil }, Units: []sqldb.Unit{unit("x", false), unit("y", false), unit("x", true), unit("x", false),
			{Run: func(tx *sqldb.Tx) error {
				tx.BeforeCommit(func(context.Context) error {
					var err error
					late, err = place(tx, "z")
					return err
				})
				return nil
			}}}}
		res := db.RunBatch(ctx, b)
		if res.Err != nil || res.Outcomes[2] == nil {
			t.Fatalf("batch: %v, outcomes %v", res.Err, res.Outcomes)
		}
		want := append(kept, late.ID)
		rows, err := db.Reader().QueryContext(ctx, `SELECT event_id, aggregate_id, sequence FROM outbox ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got, seqs []string
		for rows.Next() {
			var id, agg string
			var seq int64
			if err := rows.Scan(&id, &agg, &seq); err != nil {
				t.Fatal(err)
			}
			got = append(got, id)
			seqs = append(seqs, fmt.Sprintf("%s%d", agg, seq))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("outbox ids %v, want %v (the failed unit's event taken back)", got, want)
		}
		if want := []string{"x1", "y1", "x2", "z1"}; !slices.Equal(seqs, want) {
			t.Fatalf("sequences in id order %v, want %v", seqs, want)
		}
	}, Migrations())
}

// TestAppendBatchStatements: the Appends of a batch's units (several
// aggregates each, one unit rolled back) cost the transaction one sequence
// upsert and one INSERT, and the sequences still follow the kept units'
// order.
func TestAppendBatchStatements(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite, Migrations())
	ctx := context.Background()
	db.ProfileStatements()
	var kept [][]*event.Envelope
	unit := func(fail bool, ids ...string) sqldb.Unit {
		return sqldb.Unit{Run: func(tx *sqldb.Tx) error {
			var evs []*event.Envelope
			for _, id := range ids {
				e, err := orderPlaced.New(id, time.Time{}, orderRef{Order: id})
				if err != nil {
					return err
				}
				evs = append(evs, &e)
			}
			if err := Append(ctx, tx, evs...); err != nil {
				return err
			}
			if fail {
				return errors.New("no")
			}
			kept = append(kept, evs)
			return nil
		}, OnFail: func(*sqldb.Tx, error) error { return nil }}
	}
	res := db.RunBatch(ctx, sqldb.Batch{Guarded: true, Units: []sqldb.Unit{
		unit(false, "x", "y"), unit(true, "x", "z"), unit(false, "y", "x", "w"), unit(false, "x"),
	}})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var got []string
	for _, evs := range kept {
		for _, e := range evs {
			got = append(got, fmt.Sprintf("%s%d", e.AggregateID, e.Sequence))
		}
	}
	if want := []string{"x1", "y1", "y2", "x2", "w1", "x3"}; !slices.Equal(got, want) {
		t.Errorf("sequences %v, want %v", got, want)
	}
	var upserts, inserts int64
	for q, n := range db.StatementsByQuery() {
		switch {
		case strings.HasPrefix(q, "INSERT INTO outbox_sequences"):
			upserts += n
		case strings.HasPrefix(q, "INSERT INTO outbox "):
			inserts += n
		}
	}
	if upserts != 1 || inserts != 1 {
		t.Errorf("%d sequence upserts and %d inserts for one transaction, want 1 and 1 (%v)", upserts, inserts, db.StatementsByQuery())
	}
	if n := pending(t, db); n != 6 {
		t.Errorf("%d events pending, want 6", n)
	}
}
