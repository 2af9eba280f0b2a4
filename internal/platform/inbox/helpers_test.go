package inbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"mercato/internal/event"
	"mercato/internal/platform/bus"
	"mercato/internal/platform/bus/natsbus"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openBus starts an embedded bus for one test.
func openBus(t testing.TB) *natsbus.Bus {
	t.Helper()
	b, err := natsbus.Open(context.Background(), natsbus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("natsbus: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// forEachEngine runs fn on both engines with the inbox and outbox tables
// and a test effects table.
func forEachEngine(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		if _, err := db.Writer().Exec(`CREATE TABLE effects (consumer TEXT NOT NULL, event_id TEXT NOT NULL,
			aggregate_id TEXT NOT NULL, sequence BIGINT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		fn(t, db)
	}, Migrations(), outbox.Migrations())
}

// probe is a handler that writes an effect row per event and records, after
// commit, what it applied and when each call happened.
type probe struct {
	name string
	fail func(e event.Envelope, try int) error // nil: never fails

	mu      sync.Mutex
	applied []string               // "aggregate:sequence", in commit order
	at      map[string]time.Time   // event id → commit time
	calls   map[string][]time.Time // event id → handler call times
	signal  chan struct{}
}

func newProbe(name string) *probe {
	return &probe{name: name, at: map[string]time.Time{}, calls: map[string][]time.Time{},
		signal: make(chan struct{}, 1)}
}

func (p *probe) consumer(aggTypes ...string) Consumer {
	return Consumer{Name: p.name, AggregateTypes: aggTypes, Handle: p.handle}
}

func (p *probe) handle(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
	p.mu.Lock()
	p.calls[e.ID] = append(p.calls[e.ID], time.Now())
	call := len(p.tries(e.ID))
	p.mu.Unlock()
	p.poke()
	if _, err := tx.ExecContext(ctx, `INSERT INTO effects (consumer, event_id, aggregate_id, sequence) VALUES ($1, $2, $3, $4)`,
		p.name, e.ID, e.AggregateID, e.Sequence); err != nil {
		return err
	}
	if p.fail != nil {
		if err := p.fail(e, call); err != nil {
			return err
		}
	}
	tx.AfterCommit(func() {
		p.mu.Lock()
		p.applied = append(p.applied, fmt.Sprintf("%s:%d", e.AggregateID, e.Sequence))
		p.at[e.ID] = time.Now()
		p.mu.Unlock()
		p.poke()
	})
	return nil
}

func (p *probe) poke() {
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

// waitFor waits until cond (called under p.mu) holds.
func (p *probe) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		p.mu.Lock()
		ok := cond()
		p.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-p.signal:
		case <-deadline:
			p.mu.Lock()
			defer p.mu.Unlock()
			t.Fatalf("timed out waiting for %s; applied %v", what, p.applied)
		}
	}
}

// sameTry is the longest gap between two handler calls of one attempt: a
// batch of first deliveries runs without savepoints and, when a handler
// fails, runs again at once with them (batch.go), calling it twice.
const sameTry = 25 * time.Millisecond

// tries returns the start of each attempt at event id (call under p.mu).
func (p *probe) tries(id string) []time.Time {
	var out []time.Time
	for _, c := range p.calls[id] {
		if len(out) == 0 || c.Sub(out[len(out)-1]) > sameTry {
			out = append(out, c)
		}
	}
	return out
}

func (p *probe) waitApplied(t testing.TB, n int) {
	t.Helper()
	p.waitFor(t, fmt.Sprintf("%d applied", n), func() bool { return len(p.applied) >= n })
}

// effects counts the effect rows of event id (the handler's committed work).
func effects(t testing.TB, db *sqldb.DB, consumer, id string) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRow(`SELECT COUNT(*) FROM effects WHERE consumer = $1 AND event_id = $2`,
		consumer, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// envelope builds event seq of aggregate ("order", aggID).
func envelope(aggID string, seq int64) event.Envelope {
	e, _ := event.New(event.OrderPaid, "order", aggID, time.Now(), map[string]any{"seq": seq})
	e.Sequence = seq
	return e
}

// publish puts envelopes on the bus, one publish each, under their own id
// or, for a forced redelivery, under msgID.
func publish(t testing.TB, b bus.Publisher, es ...event.Envelope) {
	t.Helper()
	for _, e := range es {
		publishAs(t, b, e.ID, e)
	}
}

func publishAs(t testing.TB, b bus.Publisher, msgID string, e event.Envelope) {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), []bus.Message{{ID: msgID, Subject: e.Subject(), Data: data}}); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// runRunner runs a Runner until the test ends (or stop is called).
func runRunner(t testing.TB, db *sqldb.DB, sub bus.Subscriber, cfg RunnerConfig, cs ...Consumer) (r *Runner, stop func()) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = 20 * time.Millisecond
	}
	if cfg.GapDelay == 0 {
		cfg.GapDelay = 10 * time.Millisecond
	}
	r = NewRunner(db, sub, cfg, cs...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("runner did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return r, stop
}

// waitPending polls the bus until the consumer has nothing pending: the
// bus settles acks asynchronously, with no signal to wait on.
func waitPending(t testing.TB, sub bus.Subscriber, name string, want int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := sub.Pending(context.Background(), name)
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending %d (%v), want %d", n, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
