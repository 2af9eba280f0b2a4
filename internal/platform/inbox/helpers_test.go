package inbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/bus/natsbus"
	"mercato/internal/platform/event"
	"mercato/internal/platform/groupcommit"
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
//
// Each runs twice: with every batch in its own transaction, and ("shared")
// with batches of first deliveries applied as units of a group-commit
// batcher (RunnerConfig.Write), which runRunner then sets.
func forEachEngine(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	for _, mode := range []string{"own", "shared"} {
		t.Run(mode, func(t *testing.T) {
			sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
				if _, err := db.Writer().Exec(`CREATE TABLE effects (consumer TEXT NOT NULL, event_id TEXT NOT NULL,
			aggregate_id TEXT NOT NULL, sequence BIGINT NOT NULL)`); err != nil {
					t.Fatal(err)
				}
				if mode == "shared" {
					b := groupcommit.New(db, groupcommit.Config{Logger: quiet})
					sharedWrite.Store(db, b)
					t.Cleanup(func() { sharedWrite.Delete(db); b.Close() })
				}
				fn(t, db)
			}, Migrations(), outbox.Migrations())
		})
	}
}

// sharedWrite holds the batcher of a database whose test runs "shared".
var sharedWrite sync.Map // *sqldb.DB → *groupcommit.Batcher

// probe is a handler that writes an effect row per event and records, after
// commit, what it applied. It keeps a logical clock (ticks), not wall-clock
// times, so that tests assert the order of what happened, never its speed.
type probe struct {
	name string
	fail func(e event.Envelope, try int) error // nil: never fails

	mu      sync.Mutex
	tick    int                 // advanced by every call and every commit
	applied []string            // "aggregate:sequence", in commit order
	at      map[string]int      // event id → tick of its commit
	calls   map[string][]called // event id → its handler calls
	signal  chan struct{}
}

// called is one handler call: the attempt it belongs to and when.
type called struct{ try, tick int }

func newProbe(name string) *probe {
	return &probe{name: name, at: map[string]int{}, calls: map[string][]called{},
		signal: make(chan struct{}, 1)}
}

// consumer subscribes the probe to events (types or patterns).
func (p *probe) consumer(events ...string) Consumer {
	return Consumer{Name: p.name, Events: events, Handle: p.handle}
}

// handle numbers its attempt at e from the failures the inbox has recorded
// for it (1 + recorded failures): a batch of first deliveries that fails is
// rolled back and run again at once with savepoints (batch.go), so one
// attempt may call the handler twice, with the same number.
func (p *probe) handle(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
	var failed int
	err := tx.QueryRowContext(ctx, `SELECT attempts FROM consumer_failures WHERE consumer = $1 AND event_id = $2`,
		p.name, e.ID).Scan(&failed)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	try := failed + 1
	p.mu.Lock()
	p.tick++
	p.calls[e.ID] = append(p.calls[e.ID], called{try, p.tick})
	p.mu.Unlock()
	p.poke()
	if _, err := tx.ExecContext(ctx, `INSERT INTO effects (consumer, event_id, aggregate_id, sequence) VALUES ($1, $2, $3, $4)`,
		p.name, e.ID, e.AggregateID, e.Sequence); err != nil {
		return err
	}
	if p.fail != nil {
		if err := p.fail(e, try); err != nil {
			return err
		}
	}
	tx.AfterCommit(func() {
		p.mu.Lock()
		p.tick++
		p.applied = append(p.applied, fmt.Sprintf("%s:%d", e.AggregateID, e.Sequence))
		p.at[e.ID] = p.tick
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

// tries returns each attempt at event id — its try number and the tick of
// its first call — in order (call under p.mu). Consecutive calls with the
// same number are one attempt; a replay starts again at 1.
func (p *probe) tries(id string) []called {
	var out []called
	for _, c := range p.calls[id] {
		if len(out) == 0 || c.try != out[len(out)-1].try {
			out = append(out, c)
		}
	}
	return out
}

func (p *probe) waitApplied(t testing.TB, n int) {
	t.Helper()
	p.waitFor(t, fmt.Sprintf("%d applied", n), func() bool { return len(p.applied) >= n })
}

// recording is a bus.Subscriber that passes everything through and records,
// per message id, the attempt of each delivery handed to the consumer and
// the delay of each Nak: what the inbox asked of the bus, whatever the
// machine's speed. That the bus honours Nak delays is bustest's to prove.
type recording struct {
	bus.Subscriber

	mu       sync.Mutex
	attempts map[string][]int
	naks     map[string][]time.Duration
}

func record(sub bus.Subscriber) *recording {
	return &recording{Subscriber: sub, attempts: map[string][]int{}, naks: map[string][]time.Duration{}}
}

func (r *recording) Consume(ctx context.Context, cfg bus.ConsumerConfig, batch int, fn func(context.Context, []bus.Delivery)) error {
	return r.Subscriber.Consume(ctx, cfg, batch, func(ctx context.Context, ds []bus.Delivery) {
		wrapped := make([]bus.Delivery, len(ds))
		r.mu.Lock()
		for i, d := range ds {
			id := d.Message().ID
			r.attempts[id] = append(r.attempts[id], d.Attempt())
			wrapped[i] = recorded{d, r}
		}
		r.mu.Unlock()
		fn(ctx, wrapped)
	})
}

// of returns the recorded attempts and Nak delays of message id.
func (r *recording) of(id string) ([]int, []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.attempts[id]), slices.Clone(r.naks[id])
}

type recorded struct {
	bus.Delivery
	r *recording
}

func (d recorded) Nak(delay time.Duration) error {
	d.r.mu.Lock()
	id := d.Message().ID
	d.r.naks[id] = append(d.r.naks[id], delay)
	d.r.mu.Unlock()
	return d.Delivery.Nak(delay)
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

// The event types the inbox tests publish.
var (
	orderPlaced    = event.Define[seqPayload]("order.placed", 1, "test: an order was placed")
	orderPaid      = event.Define[seqPayload]("order.paid", 1, "test: an order was paid")
	orderCancelled = event.Define[seqPayload]("order.cancelled", 1, "test: an order was cancelled")
	productCreated = event.Define[seqPayload]("product.created", 1, "test: a product was created")
)

type seqPayload struct {
	Seq int64 `json:"seq"`
}

// envelope builds event seq of aggregate ("order", aggID), an order.paid.
func envelope(aggID string, seq int64) event.Envelope { return envelopeOf(orderPaid, aggID, seq) }

// envelopeOf builds event seq of kind k about aggregate aggID.
func envelopeOf(k event.Kind[seqPayload], aggID string, seq int64) event.Envelope {
	e, _ := k.New(aggID, time.Now(), seqPayload{Seq: seq})
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
	if b, ok := sharedWrite.Load(db); ok && cfg.Write == nil {
		cfg.Write = b.(*groupcommit.Batcher)
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
