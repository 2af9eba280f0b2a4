package webhooks

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mercato/internal/platform/bus/natsbus"
	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

var (
	fanoutDuration = flag.Duration("fanout.duration", 6*time.Second, "BenchmarkFanOut: how long each paced run commits orders")
	fanoutRate     = flag.Int("fanout.rate", 500, "BenchmarkFanOut: orders committed per second in the paced runs")
	fanoutRounds   = flag.Int("fanout.rounds", 2, "BenchmarkFanOut: rounds of the paced runs, each side once a round, in alternating order")
	fanoutOnly     = flag.String("fanout.only", "", "BenchmarkFanOut: the paced runs to make besides healthy, comma-separated (dead,hanging,pollonly; default all)")
)

// fanoutEndpoints is how many endpoints every order's event goes to.
const fanoutEndpoints = 5

// BenchmarkFanOut measures the whole path of an order's event to its
// webhooks: a unit on the group-commit batcher appends order.placed to the
// outbox; the relay publishes it on an embedded JetStream; the inbox runner
// hands it to the module's consumer, which records one delivery per
// endpoint; the dispatcher POSTs each, signed, to one of 5 local receivers
// (httptest servers), which note its arrival.
//
//	go test -run '^$' -bench 'FanOut/sqlite' -benchtime 1x ./internal/webhooks/ -fanout.duration=6s
//
// The paced runs commit -fanout.rate orders/s (default 500: 2,500
// deliveries/s) for -fanout.duration, one unit per order as a request
// would, and report p50/p99 from the order's commit to its arrival at the
// receiver. healthy has the 5 receivers up; dead has one refusing
// connections, hanging one that never answers (each attempt runs into
// Config.Timeout); both report the 4 healthy receivers' p99 against the
// healthy run's of the same benchmark run (p99_ratio). pollonly is healthy
// with Config.PollOnly (the dispatcher finds deliveries by polling, the
// reference for claims taken at record time). max commits as many orders
// unpaced from 64 callers and reports deliveries/s: p99 there is queueing,
// not the figure. Each run reports the writer's busy share and its
// statements and busy time per delivery (sqldb.DB.WriteStats; statements
// are counted on SQLite only), and how many bytes the database grew by per
// delivery recorded (storedBytes).
func BenchmarkFanOut(b *testing.B) {
	paced := []fanoutVariant{{name: "healthy"}, {name: "dead", dead: true}, {name: "hanging", hanging: true},
		{name: "pollonly", pollOnly: true}}
	if *fanoutOnly != "" {
		only := strings.Split(*fanoutOnly, ",")
		paced = slices.DeleteFunc(paced, func(v fanoutVariant) bool { return v.name != "healthy" && !slices.Contains(only, v.name) })
	}
	for _, engine := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		b.Run(string(engine), func(b *testing.B) {
			// A short run first, discarded: the first run of a process is
			// slower (start-up), and would weigh on whichever side ran it.
			warm := *fanoutDuration
			*fanoutDuration = time.Second
			runFanOut(b, engine, paced[0])
			*fanoutDuration = warm
			for round := 1; round <= *fanoutRounds; round++ {
				b.Run("round"+strconv.Itoa(round), func(b *testing.B) {
					order := slices.Clone(paced)
					if round%2 == 0 { // alternate the order of the sides
						slices.Reverse(order)
					}
					rs := map[string]fanoutResult{}
					for _, v := range order {
						rs[v.name] = runFanOut(b, engine, v)
					}
					for _, v := range paced {
						r := rs[v.name]
						b.ReportMetric(float64(r.p50.Microseconds())/1000, v.name+"_p50_ms")
						b.ReportMetric(float64(r.p99.Microseconds())/1000, v.name+"_p99_ms")
						if v.name != "healthy" {
							b.ReportMetric(float64(r.p99)/float64(rs["healthy"].p99), v.name+"_p99_ratio")
						}
					}
					h := rs["healthy"]
					b.ReportMetric(h.perSec, "healthy_deliveries/s")
					b.ReportMetric(100*h.writerBusy, "healthy_writer_busy_%")
					b.ReportMetric(h.stmtsPer, "healthy_stmts/delivery")
					b.ReportMetric(h.busyPer, "healthy_writer_us/delivery")
					b.ReportMetric(h.bytesPer, "healthy_bytes/delivery")
				})
			}
			b.Run("max", func(b *testing.B) {
				r := runFanOut(b, engine, fanoutVariant{name: "max", unpaced: true})
				b.ReportMetric(r.perSec, "deliveries/s")
				b.ReportMetric(float64(r.p99.Microseconds())/1000, "p99_ms")
				b.ReportMetric(100*r.writerBusy, "writer_busy_%")
				b.ReportMetric(r.stmtsPer, "stmts/delivery")
				b.ReportMetric(r.busyPer, "writer_us/delivery")
				b.ReportMetric(r.bytesPer, "bytes/delivery")
			})
		})
	}
}

type fanoutVariant struct {
	name                             string
	dead, hanging, pollOnly, unpaced bool
}

type fanoutResult struct {
	p50, p99   time.Duration
	perSec     float64 // healthy deliveries per second, first commit to last arrival
	writerBusy float64 // share of the wall time the writer was busy
	stmtsPer   float64 // writer statements per healthy delivery
	busyPer    float64 // writer busy µs per healthy delivery
	bytesPer   float64 // bytes the database grew by per delivery recorded (every endpoint's)
}

// storedBytes is how large the database is: on PostgreSQL the webhooks
// tables of the run's schema with their indexes and TOAST, on SQLite the
// whole file (pages, with those still in the write-ahead log).
func storedBytes(b *testing.B, db *sqldb.DB) int64 {
	var n int64
	var err error
	if db.Engine() == sqldb.Postgres {
		err = db.Reader().QueryRow(`SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
			JOIN pg_namespace ns ON ns.oid = c.relnamespace
			WHERE ns.nspname = current_schema() AND c.relkind = 'r' AND c.relname LIKE 'webhooks_%'`).Scan(&n)
	} else {
		var pages, size int64
		if err = db.Reader().QueryRow(`PRAGMA page_count`).Scan(&pages); err == nil {
			err = db.Reader().QueryRow(`PRAGMA page_size`).Scan(&size)
		}
		n = pages * size
	}
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// fanoutReceivers are the benchmark's endpoints; the first may be dead or
// hanging, the others answer 204 at once and note when each event arrived.
type fanoutReceivers struct {
	mu        sync.Mutex
	committed map[string]time.Time   // event id → its order's commit
	arrived   []map[string]time.Time // per receiver: event id → first arrival
	want      atomic.Int64           // healthy deliveries expected
	got       atomic.Int64           // healthy deliveries arrived (first of each)
	all       chan struct{}          // closed when got reaches want after close
	hang      chan struct{}          // closed at the end: the hanging receiver lets go
	servers   []*httptest.Server
}

func (f *fanoutReceivers) serve(i int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		now := time.Now()
		id := r.Header.Get("webhook-id")
		f.mu.Lock()
		_, dup := f.arrived[i][id]
		if !dup {
			f.arrived[i][id] = now
		}
		f.mu.Unlock()
		if !dup && f.got.Add(1) == f.want.Load() {
			close(f.all)
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func runFanOut(b *testing.B, engine sqldb.Engine, v fanoutVariant) fanoutResult {
	db := sqldbtest.Open(b, engine, sources()...)
	e := newEnv(b, db, Config{AllowPrivate: true, PollOnly: v.pollOnly})
	db.SetClock(time.Now)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	f := &fanoutReceivers{committed: map[string]time.Time{}, all: make(chan struct{}), hang: make(chan struct{})}
	healthy := 0
	for i := range fanoutEndpoints {
		f.arrived = append(f.arrived, map[string]time.Time{})
		var url string
		switch {
		case i == 0 && v.dead:
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			url = "http://" + l.Addr().String() + "/hook"
			l.Close() // nothing listens there: connections are refused
		case i == 0 && v.hanging:
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-f.hang:
				case <-r.Context().Done():
				}
			}))
			f.servers = append(f.servers, srv)
			url = srv.URL + "/hook"
		default:
			srv := httptest.NewServer(f.serve(i))
			f.servers = append(f.servers, srv)
			url = srv.URL + "/hook"
			healthy++
		}
		e.register(url, []string{"order.*"}, false)
	}
	defer func() {
		for _, s := range f.servers {
			s.CloseClientConnections()
			s.Close()
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	nb, err := natsbus.Open(ctx, natsbus.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	relay := outbox.NewRelay(db, nb, outbox.RelayConfig{Logger: quiet})
	rc := inbox.RunnerConfig{Logger: quiet}
	if engine == sqldb.SQLite {
		rc.Write = e.svc.write // as serve wires it: one writer, shared commits
	}
	runner := inbox.NewRunner(db, nb, rc, e.svc.Consumer())
	var wg sync.WaitGroup
	wg.Go(func() { relay.Run(ctx) })
	wg.Go(func() { runner.Run(ctx) })
	wg.Go(func() { e.svc.Dispatcher().Run(ctx) })
	defer func() { close(f.hang); cancel(); wg.Wait(); nb.Close() }()
	wctx := outbox.WithWaker(context.Background(), relay)

	orders := *fanoutRate * int(fanoutDuration.Seconds())
	f.want.Store(int64(orders * healthy))
	order := func(i int) {
		ev := &event.Envelope{ID: event.NewID(), Type: "order.placed", SchemaVersion: 1, AggregateType: "order",
			AggregateID: fmt.Sprintf("o%09d", i), Data: json.RawMessage(`{"total":"12.50","currency":"EUR"}`)}
		err := e.svc.write.Do(wctx, func(tx *sqldb.Tx) error {
			tx.AfterCommit(func() {
				now := time.Now()
				f.mu.Lock()
				f.committed[ev.ID] = now
				f.mu.Unlock()
			})
			return outbox.Append(wctx, tx, ev)
		})
		if err != nil {
			b.Error(err)
		}
	}
	stats0 := db.WriteStats()
	bytes0 := storedBytes(b, db)
	b.ResetTimer()
	start := time.Now()
	var producers sync.WaitGroup
	if v.unpaced {
		var next atomic.Int64
		for range 64 {
			producers.Go(func() {
				for i := int(next.Add(1)) - 1; i < orders; i = int(next.Add(1)) - 1 {
					order(i)
				}
			})
		}
	} else {
		// Paced: order i is committed at start + i/rate, late ones at once
		// (catching up rather than slipping the schedule).
		for i := range orders {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(*fanoutRate))); d > 0 {
				time.Sleep(d)
			}
			producers.Go(func() { order(i) })
		}
	}
	producers.Wait()
	select {
	case <-f.all:
	case <-time.After(2 * time.Minute):
		b.Fatalf("%d of %d healthy deliveries arrived", f.got.Load(), f.want.Load())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stats := db.WriteStats()
	if !v.hanging { // (its tries in flight end at the timeout)
		e.svc.Dispatcher().Wait() // the last outcomes written
	}
	bytesPer := float64(storedBytes(b, db)-bytes0) / float64(orders*fanoutEndpoints)

	f.mu.Lock()
	var lags []time.Duration
	for _, m := range f.arrived {
		for id, at := range m {
			lags = append(lags, at.Sub(f.committed[id]))
		}
	}
	f.mu.Unlock()
	slices.Sort(lags)
	n := float64(len(lags))
	return fanoutResult{p50: lags[len(lags)/2], p99: lags[len(lags)*99/100], perSec: n / elapsed.Seconds(),
		writerBusy: float64(stats.Busy-stats0.Busy) / float64(elapsed),
		stmtsPer:   float64(stats.Statements-stats0.Statements) / n,
		busyPer:    float64((stats.Busy - stats0.Busy).Microseconds()) / n, bytesPer: bytesPer}
}
