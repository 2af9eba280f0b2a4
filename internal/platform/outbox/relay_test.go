package outbox

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// running is a relay started in the background.
type running struct {
	r      *Relay
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, db *sqldb.DB, pub bus.Publisher, cfg RelayConfig) *running {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	cfg.LockRetry = 50 * time.Millisecond
	cfg.Logger = quiet
	ctx, cancel := context.WithCancel(context.Background())
	x := &running{r: NewRelay(db, pub, cfg), cancel: cancel, done: make(chan error, 1)}
	go func() { x.done <- x.r.Run(ctx) }()
	t.Cleanup(func() { x.stop(t) })
	return x
}

// stop cancels the relay and returns what Run returned.
func (x *running) stop(t *testing.T) error {
	t.Helper()
	x.cancel()
	select {
	case err, ok := <-x.done:
		if ok {
			close(x.done)
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not stop")
		return nil
	}
}

func TestRelayRepublishesAfterUncleanStop(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		cfg := RelayConfig{SyncInterval: time.Hour}
		// Published long before the sync interval: never re-sent.
		appendEvents(t, db, "o0")
		if err := NewRelay(db, newRecorder(), cfg).Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Writer().ExecContext(ctx, `UPDATE outbox SET published_at = $1`,
			sqldb.Micros(time.Now().Add(-2*time.Hour))); err != nil {
			t.Fatal(err)
		}

		p1 := newRecorder()
		first := start(t, db, p1, cfg)
		batch := appendEvents(t, db, "o1", "o2", "o1")
		p1.waitIDs(t, idsOf(batch))
		first.stop(t) // no Flush: an unclean stop

		t.Run("re-sent after an unclean stop", func(t *testing.T) {
			p2 := newRecorder()
			second := start(t, db, p2, cfg)
			p2.waitIDs(t, idsOf(batch))
			more := appendEvents(t, db, "o2")
			p2.waitIDs(t, idsOf(batch, more))
			second.stop(t)
			if err := second.r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("not re-sent after a clean stop", func(t *testing.T) {
			p3 := newRecorder()
			third := start(t, db, p3, cfg)
			fresh := appendEvents(t, db, "o3")
			p3.waitIDs(t, idsOf(fresh))
			third.stop(t)
			if err := third.r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}, Migrations())
}

func TestRelayCrashBetweenPublishAndMark(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		crash := errors.New("crash")
		p1 := newRecorder()
		evs := appendEvents(t, db, "c1", "c2")
		first := start(t, db, p1, RelayConfig{AfterPublish: func([]string) error { return crash }})
		p1.waitIDs(t, idsOf(evs))
		if err := first.stop(t); !errors.Is(err, crash) {
			t.Fatalf("Run = %v, want the fault", err)
		}
		if n := pending(t, db); n != 2 {
			t.Fatalf("pending %d after a crash before mark, want 2", n)
		}
		p2 := newRecorder()
		start(t, db, p2, RelayConfig{})
		p2.waitIDs(t, idsOf(evs))
		waitPending(t, db, 0)
	}, Migrations())
}

// waitPending polls the outbox backlog until it is want: the relay marks
// rows after it publishes, and marking has no signal of its own.
func waitPending(t *testing.T, db *sqldb.DB, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for pending(t, db) != want {
		if time.Now().After(deadline) {
			t.Fatalf("pending %d, want %d", pending(t, db), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRelayLeaderElection(t *testing.T) {
	url := sqldbtest.PostgresURL(t)
	ctx := context.Background()
	open := func() *sqldb.DB {
		db, err := sqldb.Open(ctx, sqldb.Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	db := open()
	if _, err := migrate.Up(ctx, db, Migrations()); err != nil {
		t.Fatal(err)
	}
	pa, pb := newRecorder(), newRecorder()
	// Polling is slow: a relay publishes at once only when woken by
	// PostgreSQL's NOTIFY (this test passes no in-process waker).
	cfg := RelayConfig{PollInterval: time.Minute}
	a := start(t, open(), pa, cfg)
	waitLeader(t, a.r)
	b := start(t, open(), pb, cfg)

	first := appendEvents(t, db, "l1", "l2")
	pa.waitIDs(t, idsOf(first))
	second := appendEvents(t, db, "l1")
	pa.waitIDs(t, idsOf(first, second))
	if got := pb.ids(); len(got) != 0 || b.r.Leader() {
		t.Fatalf("standby published %v (leader %v) while the leader ran", got, b.r.Leader())
	}

	a.stop(t)
	waitLeader(t, b.r)
	third := appendEvents(t, db, "l2")
	pb.waitIDs(t, idsOf(third))
	if got := pa.ids(); len(got) != 3 {
		t.Fatalf("stopped leader published %v", got)
	}
}

// waitLeader polls until r leads: leadership is won by polling a lock, so
// there is no event to wait on.
func waitLeader(t *testing.T, r *Relay) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !r.Leader() {
		if time.Now().After(deadline) {
			t.Fatal("relay never became leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
