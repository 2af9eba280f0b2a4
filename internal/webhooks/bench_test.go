package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// BenchmarkFanOut commits N events (in units of 100, as the inbox batches
// them) fanned out to 5 endpoints on one loopback receiver, with the
// dispatcher running, and reports deliveries/s and the p99 lag from an
// event's commit to its delivery. The same-run reference is a bare loop of
// as many signed-size POSTs to the same receiver from one goroutine per
// endpoint (ref_posts/s): the HTTP cost alone, without the database.
func BenchmarkFanOut(b *testing.B) {
	const endpoints = 5
	db := sqldbtest.Open(b, sqldb.SQLite, sources()...)
	e := newEnv(b, db, Config{AllowPrivate: true, Poll: 50 * time.Millisecond, MaxInFlight: 16})
	db.SetClock(time.Now)

	var mu sync.Mutex
	arrived := map[string]time.Time{}
	count, want := 0, 0
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		now := time.Now()
		mu.Lock()
		if r.URL.Path != "/ref" {
			key := r.URL.Path + " " + r.Header.Get("webhook-id")
			if _, dup := arrived[key]; !dup {
				arrived[key] = now
				if count++; count == want {
					close(done)
				}
			}
		}
		mu.Unlock()
	}))
	defer srv.Close()
	for i := range endpoints {
		e.register(srv.URL+"/ep"+strconv.Itoa(i), []string{"*"}, false)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { e.svc.Dispatcher().Run(ctx); close(runDone) }()
	defer func() { cancel(); <-runDone }()

	n := max(b.N, 200)
	want = n * endpoints
	committed := map[string]time.Time{}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n; i += 100 {
		var ids []string
		err := e.svc.write.Do(ctx, func(tx *sqldb.Tx) error {
			ids = ids[:0]
			for j := i; j < min(i+100, n); j++ {
				ev := event.Envelope{ID: event.NewID(), Type: "order.placed", SchemaVersion: 1, AggregateType: "order",
					AggregateID: "o" + strconv.Itoa(j), Sequence: 1, OccurredAt: tx.Now, Data: json.RawMessage(`{"total":"12.50"}`)}
				if err := e.svc.RecordTx(ctx, tx, ev); err != nil {
					return err
				}
				ids = append(ids, ev.ID)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		mu.Lock()
		for _, id := range ids {
			committed[id] = now
		}
		mu.Unlock()
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d deliveries arrived", count, want)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	mu.Lock()
	var lags []time.Duration
	for key, at := range arrived {
		id := key[len(key)-36:]
		lags = append(lags, at.Sub(committed[id]))
	}
	mu.Unlock()
	slices.Sort(lags)
	b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99_lag_ms")

	// Reference: bare POSTs, one loop per endpoint, as many as delivered.
	body := bytes.Repeat([]byte("x"), 300)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: endpoints}}
	refStart := time.Now()
	var wg sync.WaitGroup
	for range endpoints {
		wg.Go(func() {
			for range n {
				resp, err := client.Post(srv.URL+"/ref", "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(want)/time.Since(refStart).Seconds(), "ref_posts/s")
}
