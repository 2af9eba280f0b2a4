package inbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// t0 is the replay tests' "now".
var t0 = time.Date(2030, 3, 4, 12, 0, 0, 0, time.UTC)

// replayShop is an outbox of events at known times, a replayable probe
// consumer of order.* ("idx") and one that is not ("stock").
type replayShop struct {
	db    *sqldb.DB
	clock *sqldbtest.Clock
	idx   *probe
	write sqldb.Committer
	all   []Consumer
}

func newReplayShop(t *testing.T, db *sqldb.DB) *replayShop {
	t.Helper()
	clk := sqldbtest.NewClock(t0)
	db.SetClock(clk.Now)
	b := groupcommit.New(db, groupcommit.Config{Logger: quiet})
	t.Cleanup(b.Close)
	s := &replayShop{db: db, clock: clk, idx: newProbe("idx"), write: b}
	idx := s.idx.consumer("order.*")
	idx.Replayable = true
	s.all = []Consumer{idx, newProbe("stock").consumer("order.paid")}
	return s
}

func (s *replayShop) replays(cfg ReplayConfig) *Replays {
	cfg.Logger = quiet
	return NewReplays(s.db, s.write, cfg, func() []Consumer { return s.all })
}

// append appends an event of kind k about aggID that occurred ago before t0.
func (s *replayShop) append(t *testing.T, k event.Kind[seqPayload], aggID string, ago time.Duration) event.Envelope {
	t.Helper()
	e, err := k.New(aggID, t0.Add(-ago), seqPayload{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.InTx(context.Background(), func(tx *sqldb.Tx) error { return outbox.Append(context.Background(), tx, &e) }); err != nil {
		t.Fatal(err)
	}
	return e
}

func (s *replayShop) start(t *testing.T, r *Replays, consumer string, since time.Time) (Replay, error) {
	t.Helper()
	ctx := context.Background()
	plan, err := r.Plan(ctx, consumer, since)
	if err != nil {
		return Replay{}, err
	}
	var rep Replay
	err = s.write.Do(ctx, func(tx *sqldb.Tx) (err error) { rep, err = r.StartTx(ctx, tx, plan, "u-op"); return err })
	return rep, err
}

// TestReplay: a replay since a point in time runs the consumer's handler
// again over exactly the retained events since then that it handles, up to
// those committed when it was asked for, in chunks, in per-aggregate
// sequence order, and once: a later run does nothing. Refusals name why.
func TestReplay(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		s := newReplayShop(t, db)
		ctx := context.Background()
		s.append(t, orderPlaced, "o1", 2*time.Hour) // before since
		s.append(t, orderPaid, "o1", time.Hour)
		s.append(t, productCreated, "p1", time.Hour) // not the consumer's
		s.append(t, orderPlaced, "o2", 30*time.Minute)
		s.append(t, orderPaid, "o2", 20*time.Minute)
		s.append(t, orderCancelled, "o1", 10*time.Minute)
		r := s.replays(ReplayConfig{Chunk: 2, MaxChunks: 2, Retention: 24 * time.Hour})
		since := t0.Add(-90 * time.Minute)

		for _, c := range []struct {
			name     string
			consumer string
			since    time.Time
			kind     errs.Kind
			code     errs.Code
		}{
			{"unknown consumer", "nope", since, errs.NotFound, errs.CodeNotFound},
			{"not replayable", "stock", since, errs.Conflict, CodeNotReplayable},
			{"in the future", "idx", t0.Add(time.Minute), errs.Invalid, errs.CodeValidation},
			{"beyond the retention", "idx", t0.Add(-25 * time.Hour), errs.Invalid, errs.CodeValidation},
		} {
			t.Run(c.name, func(t *testing.T) {
				if _, err := r.Plan(ctx, c.consumer, c.since); !errs.Is(err, c.kind) || errs.CodeOf(err) != c.code {
					t.Fatalf("Plan = %v, want %v %s", err, c.kind, c.code)
				}
			})
		}

		rep, err := s.start(t, r, "idx", since)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Queued != 4 || rep.Status != ReplayRunning || rep.RequestedBy != "u-op" {
			t.Fatalf("started %+v; want 4 queued, running", rep)
		}
		if _, err := s.start(t, r, "idx", since); errs.CodeOf(err) != CodeReplayRunning {
			t.Fatalf("a second replay while one runs: %v", err)
		}
		if running, err := r.Running(ctx); err != nil || len(running) != 1 || running[0].ID != rep.ID {
			t.Fatalf("Running = %+v, %v", running, err)
		}
		s.append(t, orderPaid, "o3", 0) // after the request: the live consumer's, not the replay's

		n, err := r.Run(ctx, "idx") // two chunks of two rows: o1 paid, (p1); o2 placed, o2 paid
		if err != nil || n != 3 {
			t.Fatalf("first run: %d, %v; want 3", n, err)
		}
		if got, _ := r.Get(ctx, rep.ID); got.Status != ReplayRunning || got.Replayed != 3 {
			t.Fatalf("after the first run %+v", got)
		}
		if n, err = r.Run(ctx, "idx"); err != nil || n != 1 { // o1 cancelled
			t.Fatalf("second run: %d, %v; want 1", n, err)
		}
		got, err := r.Get(ctx, rep.ID)
		if err != nil || got.Status != ReplayDone || got.Replayed != 4 || got.FinishedAt == nil {
			t.Fatalf("after the second run %+v, %v", got, err)
		}
		s.idx.mu.Lock()
		applied := slices.Clone(s.idx.applied)
		s.idx.mu.Unlock()
		if want := []string{"o1:2", "o2:1", "o2:2", "o1:3"}; !slices.Equal(applied, want) {
			t.Fatalf("replayed %v, want %v", applied, want)
		}
		if n, err := r.Run(ctx, "idx"); err != nil || n != 0 {
			t.Fatalf("a run after the end: %d, %v", n, err)
		}
		var effects int
		db.Reader().QueryRow(`SELECT count(*) FROM effects WHERE consumer = 'idx'`).Scan(&effects)
		if effects != 4 {
			t.Fatalf("%d effects, want 4", effects)
		}
		// Nothing of the consumer's own bookkeeping moved.
		var rows int
		db.Reader().QueryRow(`SELECT (SELECT count(*) FROM inbox) + (SELECT count(*) FROM consumer_positions)`).Scan(&rows)
		if rows != 0 {
			t.Errorf("the replay wrote %d inbox or position rows", rows)
		}
		// Nothing since then: done at once.
		s.clock.Advance(time.Minute)
		empty, err := s.start(t, r, "idx", t0.Add(30*time.Second))
		if err != nil || empty.Status != ReplayDone || empty.Queued != 0 {
			t.Fatalf("an empty replay: %+v, %v", empty, err)
		}
		list, next, err := r.List(ctx, 1, "")
		if err != nil || len(list) != 1 || list[0].ID != empty.ID || next == "" {
			t.Fatalf("List page 1: %+v %q %v", list, next, err)
		}
		if list, next, err = r.List(ctx, 1, next); err != nil || len(list) != 1 || list[0].ID != rep.ID || next != "" {
			t.Fatalf("List page 2: %+v %q %v", list, next, err)
		}
		if jobs := r.Jobs("idx", "stock", "other"); len(jobs) != 1 || jobs[0].Name != "inbox.replay.idx" {
			t.Fatalf("jobs %+v", jobs)
		}
	})
}

// TestReplayFailure: a chunk whose handler fails is rolled back whole and
// tried again at the next run; after MaxAttempts the replay fails where it
// stands, with the error and the count of what it did, and the consumer
// may be replayed again.
func TestReplayFailure(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		s := newReplayShop(t, db)
		ctx := context.Background()
		s.append(t, orderPlaced, "o1", time.Hour)
		s.append(t, orderPlaced, "o2", time.Hour)
		bad := s.append(t, orderPaid, "o2", time.Hour)
		s.idx.fail = func(e event.Envelope, _ int) error {
			if e.ID == bad.ID {
				return errors.New("index unavailable")
			}
			return nil
		}
		r := s.replays(ReplayConfig{Chunk: 2, MaxAttempts: 3})
		rep, err := s.start(t, r, "idx", t0.Add(-2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for try := 1; try <= 3; try++ {
			n, err := r.Run(ctx, "idx")
			if err == nil || (try == 1) != (n == 2) {
				t.Fatalf("run %d: %d, %v", try, n, err)
			}
			got, _ := r.Get(ctx, rep.ID)
			want := ReplayRunning
			if try == 3 {
				want = ReplayFailed
			}
			if got.Status != want || got.Attempts != try || got.Replayed != 2 || !strings.Contains(got.Error, "index unavailable") {
				t.Fatalf("after run %d: %+v", try, got)
			}
		}
		var effects int
		db.Reader().QueryRow(`SELECT count(*) FROM effects WHERE consumer = 'idx'`).Scan(&effects)
		if effects != 2 {
			t.Fatalf("%d effects, want the first chunk's 2 (the failing chunk rolled back)", effects)
		}
		if n, err := r.Run(ctx, "idx"); n != 0 || err != nil {
			t.Fatalf("a run after the failure: %d %v", n, err)
		}
		s.idx.fail = nil
		if _, err := s.start(t, r, "idx", t0.Add(-2*time.Hour)); err != nil {
			t.Fatalf("a new replay after a failed one: %v", err)
		}
	})
}

// TestReplayRace: two processes' replay jobs run one replay at once (one
// row per chunk): each chunk commits once, so every event's effect is
// applied exactly once and the count adds up.
func TestReplayRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		s := newReplayShop(t, db)
		ctx := context.Background()
		for i := range 30 {
			s.append(t, orderPaid, fmt.Sprintf("o%02d", i), time.Minute)
		}
		a, b := s.replays(ReplayConfig{Chunk: 1, MaxChunks: 100}), s.replays(ReplayConfig{Chunk: 1, MaxChunks: 100})
		rep, err := s.start(t, a, "idx", t0.Add(-time.Hour))
		if err != nil || rep.Queued != 30 {
			t.Fatalf("start %+v %v", rep, err)
		}
		var wg sync.WaitGroup
		var na, nb int64
		var ea, eb error
		wg.Go(func() { na, ea = a.Run(ctx, "idx") })
		wg.Go(func() { nb, eb = b.Run(ctx, "idx") })
		wg.Wait()
		if ea != nil || eb != nil {
			t.Fatalf("runs: %v, %v", ea, eb)
		}
		if na+nb != 30 {
			t.Fatalf("the runs applied %d + %d events, want 30 in all", na, nb)
		}
		var effects, distinct int
		db.Reader().QueryRow(`SELECT count(*), count(DISTINCT event_id) FROM effects WHERE consumer = 'idx'`).Scan(&effects, &distinct)
		if effects != 30 || distinct != 30 {
			t.Fatalf("%d effects of %d events, want 30 of 30", effects, distinct)
		}
		if got, _ := a.Get(ctx, rep.ID); got.Status != ReplayDone || got.Replayed != 30 {
			t.Fatalf("replay %+v", got)
		}
	})
}
