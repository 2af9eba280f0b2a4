package inbox

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mercato/internal/platform/event"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// pipeline is the whole embedded path on SQLite (synchronous=FULL): outbox
// → relay → JetStream → consumer, whose handler commits an effect row with
// its inbox row. done(i) is called after the consumer's transaction that
// applied event number i commits.
type pipeline struct {
	db   *sqldb.DB
	ctx  context.Context // carries the relay as waker
	done func(i int)
	agg  func(i int) string // the aggregate of event number i
}

// Aggregate mixes. fresh: every aggregate gets two events in a row, with
// ids that grow like the time-ordered ids of new orders (checkout places an
// order, payment follows). random: each event picks one of 5,000 existing
// aggregates, so every transaction touches pages all over the sequence and
// position tables — the worst case.
var (
	fresh  = func(i int) string { return fmt.Sprintf("o%09d", i/2) }
	random = func(int) string { return fmt.Sprintf("o%d", rand.IntN(5000)) }
)

func newPipeline(b *testing.B, agg func(int) string, done func(i int)) *pipeline {
	db := sqldbtest.Open(b, sqldb.SQLite, Migrations(), outbox.Migrations())
	if _, err := db.Writer().Exec(`CREATE TABLE effects (consumer TEXT NOT NULL, event_id TEXT NOT NULL,
		aggregate_id TEXT NOT NULL, sequence BIGINT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	nb := openBus(b)
	p := &pipeline{db: db, done: done, agg: agg}
	ctx, cancel := context.WithCancel(context.Background())
	relay := outbox.NewRelay(db, nb, outbox.RelayConfig{Logger: quiet})
	var wg sync.WaitGroup
	wg.Go(func() { relay.Run(ctx) })
	p.ctx = outbox.WithWaker(context.Background(), relay)
	handle := func(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
		var d struct{ I int }
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO effects (consumer, event_id, aggregate_id, sequence)
			VALUES ($1, $2, $3, $4)`, "bench", e.ID, e.AggregateID, e.Sequence); err != nil {
			return err
		}
		tx.AfterCommit(func() { p.done(d.I) })
		return nil
	}
	r := NewRunner(db, nb, RunnerConfig{Logger: quiet},
		Consumer{Name: "bench", Events: []string{"order.*"}, Handle: handle})
	wg.Go(func() { r.Run(ctx) })
	b.Cleanup(func() { cancel(); wg.Wait() })
	return p
}

// benchPlaced is the event type the benchmark appends.
var benchPlaced = event.Define[benchPayload]("order.placed", 1, "benchmark: an order was placed")

type benchPayload struct {
	I int `json:"i"`
}

// appendBatch appends events first..first+n-1 in one transaction; commit is
// called when it commits, before the relay is woken.
func (p *pipeline) appendBatch(first, n int, commit func()) error {
	evs := make([]*event.Envelope, n)
	for j := range evs {
		e, err := benchPlaced.New(p.agg(first+j), time.Time{}, benchPayload{I: first + j})
		if err != nil {
			return err
		}
		evs[j] = &e
	}
	return p.db.InTx(p.ctx, func(tx *sqldb.Tx) error {
		if commit != nil {
			tx.AfterCommit(commit)
		}
		return outbox.Append(p.ctx, tx, evs...)
	})
}

// BenchmarkPipeline measures the embedded event path end to end.
//
//	go test -run '^$' -bench Pipeline -benchtime 40000x ./internal/platform/inbox/
//
// throughput: b.N events appended by 4 writers in transactions of 100;
// reports events/s from the first append until the last effect commits.
// latency: 2,000 events appended one per transaction at 1,000/s (one run,
// whatever b.N); reports the p50 and p99 time from the append's commit to
// the effect's commit.
func BenchmarkPipeline(b *testing.B) {
	for _, mix := range []struct {
		name string
		agg  func(int) string
	}{{"fresh", fresh}, {"random", random}} {
		b.Run("throughput/"+mix.name, func(b *testing.B) { throughput(b, mix.agg) })
	}
	b.Run("latency", func(b *testing.B) {
		// One paced run whatever b.N is: the figure is a distribution over
		// its events, not a per-iteration cost.
		const events, rate = 2000, 1000
		{
			committed := make([]atomic.Int64, events)
			handled := make([]atomic.Int64, events)
			var count atomic.Int64
			all := make(chan struct{})
			p := newPipeline(b, fresh, func(i int) {
				handled[i].Store(time.Now().UnixNano())
				if count.Add(1) == events {
					close(all)
				}
			})
			tick := time.NewTicker(time.Second / rate)
			for i := range events {
				<-tick.C
				if err := p.appendBatch(i, 1, func() { committed[i].Store(time.Now().UnixNano()) }); err != nil {
					b.Fatal(err)
				}
			}
			tick.Stop()
			select {
			case <-all:
			case <-time.After(time.Minute):
				b.Fatalf("handled %d of %d", count.Load(), events)
			}
			lat := make([]time.Duration, events)
			for i := range lat {
				lat[i] = time.Duration(handled[i].Load() - committed[i].Load())
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[events*50/100])/1e6, "p50_ms")
			b.ReportMetric(float64(lat[events*99/100])/1e6, "p99_ms")
		}
	})
}

// throughput appends b.N events with 4 writers in transactions of 100 and
// reports events/s from the first append until the last effect commits.
func throughput(b *testing.B, agg func(int) string) {
	var handled atomic.Int64
	all := make(chan struct{})
	n := int64(b.N)
	p := newPipeline(b, agg, func(int) {
		if handled.Add(1) == n {
			close(all)
		}
	})
	const writers, perTx = 4, 100
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for first := w * perTx; first < b.N; first += writers * perTx {
				if err := p.appendBatch(first, min(perTx, b.N-first), nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("handled %d of %d", handled.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")

}
