package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

func TestRedeliveryAppliedOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		b := openBus(t)
		p := newProbe("once")
		x1, x2 := envelope("x", 1), envelope("x", 2)
		publish(t, b, x1, x2)
		runRunner(t, db, b, RunnerConfig{}, p.consumer("order.*"))
		p.waitApplied(t, 2)
		// The same events again, as a lost ack or a re-published outbox tail
		// would bring them: caught by the position, and by the inbox when
		// the position is gone.
		publishAs(t, b, x1.ID+"-again", x1)
		publishAs(t, b, x2.ID+"-again", x2)
		waitPending(t, b, "once", 0)
		if _, err := db.Writer().Exec(`DELETE FROM consumer_positions`); err != nil {
			t.Fatal(err)
		}
		publishAs(t, b, x1.ID+"-third", x1)
		waitPending(t, b, "once", 0)
		for _, e := range []event.Envelope{x1, x2} {
			if n := effects(t, db, "once", e.ID); n != 1 {
				t.Fatalf("event %d applied %d times", e.Sequence, n)
			}
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if want := []string{"x:1", "x:2"}; !slices.Equal(p.applied, want) {
			t.Fatalf("applied %v, want %v", p.applied, want)
		}
	})
}

func TestOutOfOrderArrivalAppliedInSequence(t *testing.T) {
	for _, batch := range []int{1, 256} {
		t.Run(map[int]string{1: "one per batch", 256: "one batch"}[batch], func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
				b := openBus(t)
				p := newProbe("ooo")
				y := []event.Envelope{envelope("y", 1), envelope("y", 2), envelope("y", 3), envelope("y", 4)}
				publish(t, b, y[3], y[1], envelope("z", 1), y[2], y[0])
				runRunner(t, db, b, RunnerConfig{BatchSize: batch}, p.consumer("order.*"))
				p.waitApplied(t, 5)
				var ys []string
				for _, a := range p.applied {
					if strings.HasPrefix(a, "y:") {
						ys = append(ys, a)
					}
				}
				if want := []string{"y:1", "y:2", "y:3", "y:4"}; !slices.Equal(ys, want) {
					t.Fatalf("applied %v, want %v", ys, want)
				}
			})
		})
	}
}

func TestMissingPredecessorsGiveUpAfterPatience(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		b := openBus(t)
		p := newProbe("late")
		// The consumer joined after the aggregate's first events left the
		// bus: its first-seen event waits GapPatience deliveries, then
		// starts the aggregate; the next one follows at once.
		publish(t, b, envelope("old", 7), envelope("old", 8))
		runRunner(t, db, b, RunnerConfig{GapPatience: 3, GapDelay: 5 * time.Millisecond}, p.consumer("order.*"))
		p.waitApplied(t, 2)
		if want := []string{"old:7", "old:8"}; !slices.Equal(p.applied, want) {
			t.Fatalf("applied %v, want %v", p.applied, want)
		}
	})
}

// TestKeptPredecessorIsAwaited is the crash case: an aggregate's first
// event was in flight when a process died (the bus brings it back only
// after its AckWait) while the next one arrives. The outbox still keeps the
// first, so the next waits past GapPatience instead of starting the
// aggregate without it; once the first comes, both apply in order.
func TestKeptPredecessorIsAwaited(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		b := openBus(t)
		rec := record(b)
		p := newProbe("await")
		x1, x2 := envelope("kept", 1), envelope("kept", 2)
		if err := db.InTx(context.Background(), func(tx *sqldb.Tx) error {
			return outbox.Append(context.Background(), tx, &x1, &x2)
		}); err != nil {
			t.Fatal(err)
		}
		const patience = 3
		publish(t, b, x2)
		runRunner(t, db, rec, RunnerConfig{GapPatience: patience, GapDelay: 2 * time.Millisecond}, p.consumer("order.*"))
		heldBack(t, p, "the successor was not delivered past its patience", func() bool {
			attempts, _ := rec.of(x2.ID)
			return len(attempts) >= patience+3
		})
		publish(t, b, x1)
		p.waitApplied(t, 2)
		if want := []string{"kept:1", "kept:2"}; !slices.Equal(p.applied, want) {
			t.Fatalf("applied %v, want %v", p.applied, want)
		}
	})
}

// TestFailingHandlerRetriedWithBackoff fails an event's first three
// attempts. It asserts what the inbox decides — four attempts, each failure
// sent back with the backoff of its attempt (growing), the successor held
// until the event succeeds, one effect — from counted attempts and the Nak
// delays requested, never from how long anything took.
func TestFailingHandlerRetriedWithBackoff(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		b := openBus(t)
		rec := record(b)
		p := newProbe("retry")
		x1, x2 := envelope("x", 1), envelope("x", 2)
		p.fail = func(e event.Envelope, try int) error {
			if e.ID == x1.ID && try <= 3 {
				return errors.New("downstream unavailable")
			}
			return nil
		}
		publish(t, b, x1, x2)
		const base = 20 * time.Millisecond
		r, _ := runRunner(t, db, rec, RunnerConfig{RetryBase: base, RetryCap: time.Hour}, p.consumer("order.*"))
		p.waitApplied(t, 2)
		waitPending(t, b, "retry", 0)

		p.mu.Lock()
		tries := p.tries(x1.ID)
		p.mu.Unlock()
		if got := len(tries); got != 4 || tries[3].try != 4 {
			t.Fatalf("attempts at the failing event %v, want tries 1..4", tries)
		}
		attempts, naks := rec.of(x1.ID)
		if !slices.Equal(attempts, []int{1, 2, 3, 4}) {
			t.Errorf("deliveries of the failing event: attempts %v, want [1 2 3 4]", attempts)
		}
		if len(naks) != 3 {
			t.Fatalf("failing event sent back with delays %v, want 3", naks)
		}
		for i, d := range naks {
			// RetryBase·2^(n-1) minus up to a quarter of jitter.
			full := base << i
			if d > full || d < full-full/4 {
				t.Errorf("retry %d after %v, want in [%v, %v]", i+1, d, full-full/4, full)
			}
			if i > 0 && d <= naks[i-1] {
				t.Errorf("retry delays %v do not grow", naks)
			}
		}
		if _, x2naks := rec.of(x2.ID); len(x2naks) == 0 {
			t.Error("the successor was never held back while its predecessor retried")
		}
		if want := []string{"x:1", "x:2"}; !slices.Equal(p.applied, want) {
			t.Fatalf("applied %v, want %v", p.applied, want)
		}
		if n := effects(t, db, "retry", x1.ID); n != 1 {
			t.Fatalf("failing-then-succeeding event applied %d times", n)
		}
		st, err := r.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if c := st.Consumers[0]; c.Name != "retry" || c.Processed != 2 || c.Failed != 3 || c.LastProcessedAt == nil {
			t.Fatalf("status %+v, want 2 processed, 3 failed", c)
		}
		var left int
		db.Reader().QueryRow(`SELECT COUNT(*) FROM consumer_failures`).Scan(&left)
		if left != 0 {
			t.Fatalf("%d failure rows left after success", left)
		}
	})
}

func TestPoisonEventParkedWhileOthersFlow(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		b := openBus(t)
		p := newProbe("park")
		bad1, bad2 := envelope("bad", 1), envelope("bad", 2)
		p.fail = func(e event.Envelope, _ int) error {
			if e.ID == bad1.ID {
				return errors.New("cannot apply: SELECT secret FROM internals")
			}
			return nil
		}
		goods := []event.Envelope{envelope("g1", 1), envelope("g2", 1), envelope("g1", 2)}
		publish(t, b, bad1, bad2)
		publish(t, b, goods...)
		c := p.consumer("order.*")
		c.MaxAttempts = 4
		r, _ := runRunner(t, db, b, RunnerConfig{RetryBase: 60 * time.Millisecond}, c)
		p.waitFor(t, "bad:2 applied", func() bool { return slices.Contains(p.applied, "bad:2") })

		calls := p.tries(bad1.ID)
		if len(calls) != 4 {
			t.Fatalf("poison event tried %d times, want 4", len(calls))
		}
		for _, g := range goods {
			if p.at[g.ID] >= calls[3].tick {
				t.Fatalf("event %s:%d was applied at tick %d, not before the poison event's last try at %d",
					g.AggregateID, g.Sequence, p.at[g.ID], calls[3].tick)
			}
		}
		if p.at[bad2.ID] <= calls[3].tick {
			t.Fatal("the poisoned aggregate's next event was applied before its predecessor was parked")
		}
		if n := effects(t, db, "park", bad1.ID); n != 0 {
			t.Fatalf("parked event left %d effects", n)
		}
		for _, e := range append(goods, bad2) {
			if n := effects(t, db, "park", e.ID); n != 1 {
				t.Fatalf("event %s:%d applied %d times", e.AggregateID, e.Sequence, n)
			}
		}
		dls, next, err := r.DeadLetters().List(context.Background(), 10, "")
		if err != nil || next != "" || len(dls) != 1 {
			t.Fatalf("dead letters %+v, %q, %v; want one", dls, next, err)
		}
		dl := dls[0]
		if dl.Consumer != "park" || dl.Event.ID != bad1.ID || dl.Event.Sequence != 1 || dl.Attempts != 4 ||
			!strings.Contains(dl.LastError, "cannot apply") {
			t.Fatalf("dead letter %+v", dl)
		}
		if js, _ := json.Marshal(dl); strings.Contains(string(js), "secret") {
			t.Fatalf("dead letter JSON shows the error text: %s", js)
		}
		st, err := r.Status(context.Background())
		if err != nil || st.DeadLetters != 1 || st.Consumers[0].Failed != 4 || st.Consumers[0].Processed != 4 {
			t.Fatalf("status %+v, %v", st, err)
		}
	})
}

func TestDeadLetterReplay(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		b := openBus(t)
		p := newProbe("replay")
		var broken atomic.Bool
		broken.Store(true)
		p.fail = func(event.Envelope, int) error {
			if broken.Load() {
				return errors.New("broken")
			}
			return nil
		}
		c := p.consumer("order.*")
		c.MaxAttempts = 2
		x1 := envelope("x", 1)
		publish(t, b, x1)
		r, _ := runRunner(t, db, b, RunnerConfig{RetryBase: 60 * time.Millisecond}, c)
		p.waitFor(t, "two tries", func() bool { return len(p.tries(x1.ID)) == 2 })
		waitPending(t, b, "replay", 0)
		dls, _, err := r.DeadLetters().List(ctx, 0, "")
		if err != nil || len(dls) != 1 {
			t.Fatalf("dead letters %+v, %v", dls, err)
		}
		id := dls[0].ID

		t.Run("failing again keeps it parked", func(t *testing.T) {
			err := r.DeadLetters().Replay(ctx, id)
			if !errs.Is(err, errs.Conflict) {
				t.Fatalf("Replay = %v, want Conflict", err)
			}
			dls, _, _ := r.DeadLetters().List(ctx, 0, "")
			if len(dls) != 1 || dls[0].Attempts != 3 {
				t.Fatalf("dead letters %+v, want one with 3 attempts", dls)
			}
		})
		t.Run("applies once", func(t *testing.T) {
			broken.Store(false)
			if err := r.DeadLetters().Replay(ctx, id); err != nil {
				t.Fatalf("Replay: %v", err)
			}
			if err := r.DeadLetters().Replay(ctx, id); !errs.Is(err, errs.NotFound) {
				t.Fatalf("second Replay = %v, want NotFound", err)
			}
			publishAs(t, b, x1.ID+"-again", x1)
			waitPending(t, b, "replay", 0)
			if n := effects(t, db, "replay", x1.ID); n != 1 {
				t.Fatalf("replayed event applied %d times", n)
			}
			dls, next, err := r.DeadLetters().List(ctx, 0, "")
			if err != nil || dls == nil || len(dls) != 0 || next != "" {
				t.Fatalf("dead letters after replay %v, %q, %v; want []", dls, next, err)
			}
		})
		t.Run("a consumer not running here cannot replay", func(t *testing.T) {
			if _, err := db.Writer().Exec(`INSERT INTO dead_letters (consumer, event_id, envelope, attempts, last_error, parked_at)
				VALUES ('elsewhere', 'e1', '{}', 1, 'x', 1)`); err != nil {
				t.Fatal(err)
			}
			dls, _, _ := r.DeadLetters().List(ctx, 0, "")
			if err := r.DeadLetters().Replay(ctx, dls[0].ID); !errs.Is(err, errs.Unavailable) {
				t.Fatalf("Replay = %v, want Unavailable", err)
			}
		})
	})
}

func TestInboxPrune(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		old, recent := sqldb.Micros(time.Now().Add(-48*time.Hour)), sqldb.Micros(time.Now())
		for i, at := range []int64{old, old, recent} {
			if _, err := db.Writer().Exec(`INSERT INTO inbox (consumer, event_id, processed_at) VALUES ('c', $1, $2)`,
				string(rune('a'+i)), at); err != nil {
				t.Fatal(err)
			}
		}
		r := NewRunner(db, openBus(t), RunnerConfig{InboxRetention: 24 * time.Hour})
		n, err := r.Prune(context.Background())
		if err != nil || n != 2 {
			t.Fatalf("prune = %d, %v; want 2", n, err)
		}
		var left string
		if err := db.Reader().QueryRow(`SELECT event_id FROM inbox`).Scan(&left); err != nil || left != "c" {
			t.Fatalf("left %q, %v; want the recent row", left, err)
		}
	})
}

// TestSubscriptionByPattern runs consumers on types and patterns: each
// handler sees exactly its types, each aggregate's in sequence, whatever the
// arrival order, and the events it does not handle still move its position
// (so that its own next event is not held for them).
func TestSubscriptionByPattern(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		b := openBus(t)
		paid := newProbe("paid-or-cancelled")
		created := newProbe("created")
		all := newProbe("everything")
		o1 := []event.Envelope{envelopeOf(orderPlaced, "o1", 1), envelopeOf(orderPaid, "o1", 2),
			envelopeOf(orderCancelled, "o1", 3)}
		publish(t, b, o1[2], envelopeOf(productCreated, "p1", 1), o1[0], envelopeOf(orderPlaced, "o2", 1), o1[1])
		runRunner(t, db, b, RunnerConfig{}, paid.consumer("order.paid", "order.cancelled"),
			created.consumer("*.created"), all.consumer("*"))
		paid.waitApplied(t, 2)
		created.waitApplied(t, 1)
		all.waitApplied(t, 5)
		for _, name := range []string{"paid-or-cancelled", "created", "everything"} {
			waitPending(t, b, name, 0)
		}
		tests := []struct {
			p    *probe
			want []string
		}{
			{paid, []string{"o1:2", "o1:3"}},
			{created, []string{"p1:1"}},
		}
		for _, tc := range tests {
			tc.p.mu.Lock()
			if !slices.Equal(tc.p.applied, tc.want) {
				t.Errorf("%s applied %v, want %v", tc.p.name, tc.p.applied, tc.want)
			}
			tc.p.mu.Unlock()
		}
		all.mu.Lock()
		var o1seen []string
		for _, a := range all.applied {
			if strings.HasPrefix(a, "o1:") {
				o1seen = append(o1seen, a)
			}
		}
		all.mu.Unlock()
		if want := []string{"o1:1", "o1:2", "o1:3"}; !slices.Equal(o1seen, want) {
			t.Errorf("everything applied o1 as %v, want %v", o1seen, want)
		}
		// The position moved past the unhandled order.placed of o1.
		var last int64
		if err := db.Reader().QueryRow(`SELECT last_sequence FROM consumer_positions
			WHERE consumer = 'paid-or-cancelled' AND aggregate_id = 'o1'`).Scan(&last); err != nil || last != 3 {
			t.Errorf("position of o1 = %d, %v; want 3", last, err)
		}
	})
}

func TestAggregateSubjects(t *testing.T) {
	tests := []struct {
		events []string
		want   []string
	}{
		{[]string{"order.paid"}, []string{"mercato.order.*"}},
		{[]string{"order.paid", "order.cancelled", "order.*"}, []string{"mercato.order.*"}},
		{[]string{"payment.captured", "order.paid"}, []string{"mercato.order.*", "mercato.payment.*"}},
		{[]string{"order.paid", "*.created"}, []string{"mercato.*.*"}},
		{[]string{"*"}, []string{"mercato.*.*"}},
	}
	for _, tc := range tests {
		c := Consumer{Name: "c", Events: tc.events, Handle: func(context.Context, *sqldb.Tx, event.Envelope) error { return nil }}
		r := NewRunner(nil, nil, RunnerConfig{}, c)
		if got := r.subjects["c"]; !slices.Equal(got, tc.want) {
			t.Errorf("%v subscribes to %v, want %v", tc.events, got, tc.want)
		}
	}
}

func TestNewRunnerRefusesWiringMistakes(t *testing.T) {
	h := func(context.Context, *sqldb.Tx, event.Envelope) error { return nil }
	tests := []struct {
		name      string
		consumers []Consumer
		want      string
	}{
		{"no name", []Consumer{{Events: []string{"order.paid"}, Handle: h}}, "needs a name"},
		{"no events", []Consumer{{Name: "c", Handle: h}}, "needs a name, events"},
		{"no handler", []Consumer{{Name: "c", Events: []string{"order.paid"}}}, "a handler"},
		{"malformed pattern", []Consumer{{Name: "c", Events: []string{"order.paid", "order.>"}, Handle: h}}, `"order.>"`},
		{"aggregate type as pattern", []Consumer{{Name: "c", Events: []string{"order"}, Handle: h}}, `"order"`},
		{"same name twice", []Consumer{{Name: "c", Events: []string{"order.paid"}, Handle: h},
			{Name: "c", Events: []string{"order.*"}, Handle: h}}, "two consumers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				p := recover()
				if msg, _ := p.(string); !strings.Contains(msg, tc.want) {
					t.Errorf("NewRunner panicked with %v, want a message with %q", p, tc.want)
				}
			}()
			NewRunner(nil, nil, RunnerConfig{}, tc.consumers...)
		})
	}
}

// countingCommitter is a shared write path that counts the units it runs.
type countingCommitter struct {
	sqldb.Committer
	units atomic.Int64
}

func (c *countingCommitter) Run(ctx context.Context, u sqldb.Unit) error {
	c.units.Add(1)
	return c.Committer.Run(ctx, u)
}

// TestSharedWritePath checks that with RunnerConfig.Write the batches of
// first deliveries are units of that write path, that a batch with a
// failing event falls back to a transaction of its own in which the other
// events still apply, and that every event is applied once either way.
func TestSharedWritePath(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		b, ok := sharedWrite.Load(db)
		if !ok {
			return // the "own" run: nothing shared to check
		}
		w := &countingCommitter{Committer: b.(sqldb.Committer)}
		bus := openBus(t)
		p := newProbe("shared")
		var es []event.Envelope
		for i := range 10 {
			es = append(es, envelope(string(rune('a'+i)), 1))
		}
		bad := es[3]
		p.fail = func(e event.Envelope, try int) error {
			if e.ID == bad.ID && try == 1 {
				return errors.New("once")
			}
			return nil
		}
		publish(t, bus, es...)
		runRunner(t, db, bus, RunnerConfig{Write: w}, p.consumer("order.*"))
		p.waitApplied(t, len(es))
		waitPending(t, bus, "shared", 0)
		if w.units.Load() == 0 {
			t.Fatal("no batch ran on the shared write path")
		}
		for _, e := range es {
			if n := effects(t, db, "shared", e.ID); n != 1 {
				t.Errorf("event %s applied %d times", e.AggregateID, n)
			}
		}
		// More events once the failure is behind: they take the shared path.
		before := w.units.Load()
		more := []event.Envelope{envelope("a", 2), envelope("b", 2)}
		publish(t, bus, more...)
		p.waitApplied(t, len(es)+len(more))
		if w.units.Load() == before {
			t.Error("later first deliveries did not take the shared path")
		}
	})
}

// inboxRows returns the inbox rows and positions a consumer wrote, as
// "event id" and "aggregate id:last sequence".
func inboxRows(t *testing.T, db *sqldb.DB, consumer string) (inboxIDs, positions []string) {
	t.Helper()
	for _, q := range []struct {
		sql string
		out *[]string
	}{
		{`SELECT event_id FROM inbox WHERE consumer = $1 ORDER BY event_id`, &inboxIDs},
		{`SELECT aggregate_id || ':' || CAST(last_sequence AS TEXT) FROM consumer_positions WHERE consumer = $1
			ORDER BY aggregate_id`, &positions},
	} {
		rows, err := db.Reader().Query(q.sql, consumer)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			*q.out = append(*q.out, s)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return inboxIDs, positions
}

// An event a consumer does not handle writes nothing — no inbox row, no
// position — until the consumer has a position for its aggregate; the first
// event it handles is applied on its first delivery when the outbox shows
// that no earlier event of the aggregate is one it handles, and waits when
// one is. GapPatience is far out of reach, so waiting for it could not make
// these pass.
func TestUnhandledEventsWriteNothing(t *testing.T) {
	tests := []struct {
		name    string
		handles []string
		first   []int // the events (0 placed, 1 paid, 2 cancelled) published first…
		then    []int // …and, once those are settled, the others
		applied []string
		inbox   []int // the events with an inbox row
		pos     string
		waited  bool // the first handled event was sent back before the rest came
	}{
		{name: "cancel only", handles: []string{"order.cancelled"}, first: []int{0, 1}, then: []int{2},
			applied: []string{"o1:3"}, inbox: []int{2}, pos: "o1:3"},
		{name: "paid, then moved by an unhandled event", handles: []string{"order.paid"}, first: []int{0, 1, 2},
			applied: []string{"o1:2"}, inbox: []int{1}, pos: "o1:3"},
		{name: "an earlier handled event on its way", handles: []string{"order.placed", "order.cancelled"},
			first: []int{1, 2}, then: []int{0}, applied: []string{"o1:1", "o1:3"}, inbox: []int{0, 2}, pos: "o1:3",
			waited: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
				b := openBus(t)
				rec := record(b)
				es := []event.Envelope{envelopeOf(orderPlaced, "o1", 1), envelopeOf(orderPaid, "o1", 2),
					envelopeOf(orderCancelled, "o1", 3)}
				if err := db.InTx(context.Background(), func(tx *sqldb.Tx) error {
					return outbox.Append(context.Background(), tx, &es[0], &es[1], &es[2])
				}); err != nil {
					t.Fatal(err)
				}
				name := "unhandled-" + strings.ReplaceAll(tc.name, " ", "-")
				name = strings.ReplaceAll(name, ",", "")
				p := newProbe(name)
				for _, i := range tc.first {
					publish(t, b, es[i])
				}
				runRunner(t, db, rec, RunnerConfig{GapPatience: 1 << 30, GapDelay: 2 * time.Millisecond}, p.consumer(tc.handles...))
				if tc.waited {
					// The first handled event comes back while its handled
					// predecessor is missing.
					handledFirst := es[tc.first[len(tc.first)-1]].ID
					heldBack(t, p, "the event was not sent back while its predecessor was missing", func() bool {
						_, naks := rec.of(handledFirst)
						return len(naks) >= 3
					})
				} else {
					waitPending(t, b, name, 0)
				}
				if len(tc.then) > 0 && !tc.waited {
					ids, pos := inboxRows(t, db, name)
					if len(ids) != 0 || len(pos) != 0 {
						t.Fatalf("after unhandled events only: inbox %v, positions %v; want none", ids, pos)
					}
				}
				for _, i := range tc.then {
					publish(t, b, es[i])
				}
				p.waitApplied(t, len(tc.applied))
				waitPending(t, b, name, 0)
				p.mu.Lock()
				applied := slices.Clone(p.applied)
				p.mu.Unlock()
				if !slices.Equal(applied, tc.applied) {
					t.Fatalf("applied %v, want %v", applied, tc.applied)
				}
				var want []string
				for _, i := range tc.inbox {
					want = append(want, es[i].ID)
				}
				slices.Sort(want)
				ids, pos := inboxRows(t, db, name)
				if !slices.Equal(ids, want) || !slices.Equal(pos, []string{tc.pos}) {
					t.Fatalf("inbox %v, positions %v; want %v, [%s]", ids, pos, want, tc.pos)
				}
				if !tc.waited {
					for _, a := range tc.applied {
						i := int(a[len(a)-1]-'0') - 1
						if attempts, naks := rec.of(es[i].ID); !slices.Equal(attempts, []int{1}) || len(naks) != 0 {
							t.Fatalf("%s delivered %v, sent back %v; want once, never sent back", a, attempts, naks)
						}
					}
				}
			})
		})
	}
}

// heldBack polls until delivered reports enough counted deliveries (not
// time: no handler runs meanwhile, so there is nothing to wait on), then
// asserts that p applied nothing yet.
func heldBack(t *testing.T, p *probe, timeout string, delivered func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !delivered(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(timeout)
		}
	}
	p.mu.Lock()
	early := slices.Clone(p.applied)
	p.mu.Unlock()
	if len(early) != 0 {
		t.Fatalf("applied %v while an earlier event was missing", early)
	}
}
