package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/bus/natsbus"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

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

// arrivals collects what a durable consumer receives, de-duplicated by event
// id, recording each aggregate's sequences in arrival order.
type arrivals struct {
	mu     sync.Mutex
	seen   map[string]bool
	dups   int
	seqs   map[string][]int64
	signal chan struct{}
}

func collect(t *testing.T, sub bus.Subscriber, subject string) *arrivals {
	a := &arrivals{seen: map[string]bool{}, seqs: map[string][]int64{}, signal: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		cfg := bus.ConsumerConfig{Durable: "arrivals", Subjects: []string{subject},
			AckWait: 30 * time.Second, MaxAckPending: 20000}
		sub.Consume(ctx, cfg, 500, func(_ context.Context, ds []bus.Delivery) {
			a.mu.Lock()
			for _, d := range ds {
				var e event.Envelope
				if err := json.Unmarshal(d.Message().Data, &e); err != nil || e.ID != d.Message().ID {
					t.Errorf("message %s is not its envelope: %v", d.Message().ID, err)
				}
				if a.seen[e.ID] {
					a.dups++
				} else {
					a.seen[e.ID] = true
					a.seqs[e.AggregateID] = append(a.seqs[e.AggregateID], e.Sequence)
				}
				d.Ack()
			}
			a.mu.Unlock()
			select {
			case a.signal <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

func (a *arrivals) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		a.mu.Lock()
		got := len(a.seen)
		a.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-a.signal:
		case <-deadline:
			t.Fatalf("received %d of %d events", got, n)
		}
	}
}

// TestConcurrentAppendsReachTheBus appends 10,000 events from 50 concurrent
// transactions and checks the relay's guarantees on a real bus: every event
// reaches a consumer, and the relay hands each aggregate's events to the bus
// in sequence (handoff). It does not assert the order in which the consumer
// receives them: the bus may redeliver out of order (an expired pull, an
// AckWait), which is why consumers order by sequence (package inbox). On
// PostgreSQL, transactions commit in the opposite order of their outbox ids:
// the odd transaction of each pair inserts after the even one and commits
// before it.
func TestConcurrentAppendsReachTheBus(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		const txs, perTx, aggsPerSet = 50, 200, 20
		b := openBus(t)
		got := collect(t, b, "mercato.order.*")
		h := newHandoff()
		relay := start(t, db, checking{t, b, h}, RelayConfig{})
		ctx := WithWaker(context.Background(), relay.r)

		// Even transactions use aggregates e*, odd ones o*, so that a waiting
		// even transaction never holds a lock its odd partner needs.
		build := func(i int) []*event.Envelope {
			set := "e"
			if i%2 == 1 {
				set = "o"
			}
			evs := make([]*event.Envelope, perTx)
			for j := range evs {
				agg := fmt.Sprintf("%s%d", set, rand.IntN(aggsPerSet))
				e, _ := orderPlaced.New(agg, time.Time{}, orderRef{Order: fmt.Sprintf("%d/%d", i, j)})
				evs[j] = &e
			}
			return evs
		}
		appendTx := func(c context.Context, w *sqldb.DB, evs []*event.Envelope, inserted, proceed chan struct{}) error {
			return w.InTx(c, func(tx *sqldb.Tx) error {
				if err := Append(c, tx, evs...); err != nil {
					return err
				}
				close(inserted)
				<-proceed
				return nil
			})
		}

		writer := db
		pairs := txs / 2
		if db.Engine() == sqldb.Postgres {
			// A handle of its own, sized so that waiting transactions never
			// starve their partners of a connection.
			var err error
			if writer, err = sqldb.Open(ctx, sqldb.Config{URL: db.URL(), MaxConns: 24}); err != nil {
				t.Fatal(err)
			}
			defer writer.Close()
		}
		sem := make(chan struct{}, 10) // pairs in flight
		var wg sync.WaitGroup
		errc := make(chan error, txs)
		for k := range pairs {
			evA, evB := build(2*k), build(2*k+1)
			aInserted, bInserted, bCommitted := make(chan struct{}), make(chan struct{}), make(chan struct{})
			open := make(chan struct{})
			close(open)
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				if db.Engine() != sqldb.Postgres {
					// One writer on SQLite: transactions cannot overlap.
					errc <- appendTx(ctx, writer, evA, aInserted, open)
					errc <- appendTx(ctx, writer, evB, bInserted, open)
					return
				}
				var inner sync.WaitGroup
				inner.Go(func() { errc <- appendTx(ctx, writer, evA, aInserted, bCommitted) })
				<-aInserted
				errc <- appendTx(ctx, writer, evB, bInserted, open) // later ids, committed first
				close(bCommitted)
				inner.Wait()
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatalf("append: %v", err)
			}
		}

		got.wait(t, txs*perTx)
		got.mu.Lock()
		defer got.mu.Unlock()
		h.check(t)
		total := 0
		for agg, seqs := range got.seqs {
			sorted := slices.Sorted(slices.Values(seqs))
			for i, s := range sorted {
				if s != int64(i+1) {
					t.Fatalf("aggregate %s: received sequences %v, want 1..%d once each", agg, sorted, len(seqs))
				}
			}
			total += len(seqs)
		}
		if total != txs*perTx {
			t.Fatalf("received %d distinct events, want %d", total, txs*perTx)
		}
		waitPending(t, db, 0)
	}, Migrations())
}
