package webhooks

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"testing"
	"time"

	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
)

// While the dispatcher runs, the transaction that records a delivery claims
// it and hands it over at its commit: every event reaches both endpoints
// once and no claim UPDATE runs. With PollOnly the dispatcher claims them
// (the reference way).
func TestClaimedAtRecordTime(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pollOnly   bool
		wantClaims bool
	}{{"at record time", false, false}, {"poll only", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			forEachEngine(t, Config{PollOnly: tc.pollOnly}, func(t *testing.T, e *env) {
				rc := newReceiver(t, e.clock.Now)
				a := e.register(rc.URL(), []string{"order.*"}, false)
				b := e.register(rc.URL(), []string{"order.*"}, false)
				d := runDispatcher(t, e)
				var evs []event.Envelope
				for round := range 3 {
					evs = append(evs, e.emit("order.placed", "a"+string(rune('0'+round)), "b", "c", "d", "e")...)
					waitRequests(t, rc, 2*len(evs))
				}
				d.Wait()
				seen := map[string]int{}
				for _, g := range rc.requests() {
					seen[g.id]++
				}
				for _, ev := range evs {
					for _, ep := range []string{a.ID, b.ID} {
						if st, n, _ := e.delivery(ep, ev.ID); st != "delivered" || n != 1 {
							t.Errorf("delivery of %s to %s: %s after %d tries", ev.ID, ep, st, n)
						}
					}
					if seen[ev.ID] != 2 {
						t.Errorf("event %s arrived %d times, want once per endpoint", ev.ID, seen[ev.ID])
					}
				}
				if n := d.claims.Load(); (n > 0) != tc.wantClaims {
					t.Fatalf("%d claim UPDATEs; want some: %v", n, tc.wantClaims)
				}
			})
		})
	}
}

// runDispatcher runs e's dispatcher until the test ends and returns it
// once it runs (claims are taken at record time from then on).
func runDispatcher(t *testing.T, e *env) *Dispatcher {
	d := e.svc.Dispatcher()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-stopped })
	for d.live.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	return d
}

// waitRequests waits until rc has had n requests (failing after a minute:
// a delivery was lost, not slow).
func waitRequests(t *testing.T, rc *receiver, n int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); len(rc.requests()) < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests arrived", len(rc.requests()), n)
		}
	}
}

// A delivery claimed at record time whose process died after the commit,
// before the hand-over, is not sent while its lease lasts, and is sent once
// when the lease has run out.
func TestClaimedDeliveryRecoveredAfterLease(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		rc := newReceiver(t, e.clock.Now)
		c := e.register(rc.URL(), []string{"order.*"}, false)
		d := e.svc.Dispatcher()
		d.live.Add(1) // as while Run runs
		ctx := context.Background()
		ev := event.Envelope{ID: event.NewID(), Type: "order.placed", SchemaVersion: 1, AggregateType: "order",
			AggregateID: "o1", Sequence: 1, OccurredAt: e.clock.Now(), Data: json.RawMessage(`{}`)}
		tx, err := e.db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.RecordTx(ctx, tx, ev); err != nil {
			t.Fatal(err)
		}
		// The rows are written before the commit (the recording's BeforeCommit
		// hook, run here by hand); committed; the process dies before AfterCommit.
		rec, err := e.svc.recordingOf(tx)
		if err != nil {
			t.Fatal(err)
		}
		if err := rec.flush(ctx, tx); err != nil {
			t.Fatal(err)
		}
		if err := tx.Tx.Commit(); err != nil {
			t.Fatal(err)
		}
		d.live.Add(-1)
		if st, _, _ := e.delivery(c.ID, ev.ID); st != "delivering" {
			t.Fatalf("recorded as %s, want claimed (delivering)", st)
		}
		e.flush()
		if n := len(rc.requests()); n != 0 {
			t.Fatalf("%d requests while the claim's lease lasts", n)
		}
		e.clock.Advance(e.svc.cfg.Timeout + time.Minute + time.Second)
		e.flush()
		e.flush()
		if n := len(rc.requests()); n != 1 {
			t.Fatalf("%d requests after the lease ran out, want 1", n)
		}
		if st, n, _ := e.delivery(c.ID, ev.ID); st != "delivered" || n != 1 {
			t.Fatalf("after the lease: %s after %d tries", st, n)
		}
	})
}

// Deliveries handed over at record time to an endpoint that fails wait in
// its queue behind its one slot; when its breaker opens they go back to
// pending, untried, and nothing stays claimed.
func TestHandedQueueBackToPendingWhenBreakerOpens(t *testing.T) {
	forEachEngine(t, Config{MaxInFlight: 1, BreakerThreshold: 2}, func(t *testing.T, e *env) {
		rc := newReceiver(t, e.clock.Now)
		rc.answer = func(int, received) (int, http.Header) { return http.StatusInternalServerError, nil }
		c := e.register(rc.URL(), []string{"order.*"}, false)
		d := runDispatcher(t, e)
		e.emit("order.placed", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j")
		d.Wait()
		if n := len(rc.requests()); n != 2 {
			t.Fatalf("%d requests, want the breaker's threshold (2)", n)
		}
		got := map[string]int{}
		rows, err := e.db.Reader().Query(`SELECT status, attempts FROM webhooks_deliveries WHERE endpoint_id = $1`, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var st string
			var n int
			rows.Scan(&st, &n)
			got[st+"/"+string(rune('0'+n))]++
		}
		rows.Close()
		if want := map[string]int{"pending/1": 2, "pending/0": 8}; !maps.Equal(got, want) {
			t.Fatalf("deliveries by status/tries: %v, want %v", got, want)
		}
		if !d.BreakerOpen(c.ID) {
			t.Fatal("breaker closed after 2 failures")
		}
	})
}

// A batch of outcomes is settled with one UPDATE, and one INSERT for the
// failed tries' attempt rows; a successful try writes no attempt row (it is
// in the delivery row, and the log shows it from there).
func TestSettledInOneStatementPerBatch(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		c := e.register("http://127.0.0.1:9/hook", []string{"order.*"}, false)
		evs := e.emit("order.placed", "a", "b", "c", "d", "e")
		d := e.svc.Dispatcher()
		ctx := context.Background()
		now := e.db.Now()
		eps, err := d.dueEndpoints(ctx, now)
		if err != nil || len(eps) != 1 {
			t.Fatalf("due endpoints: %v, %v", eps, err)
		}
		js, err := d.dueOf(ctx, eps[0], now, 10)
		if err != nil {
			t.Fatal(err)
		}
		claimed, err := d.claim(ctx, js, now)
		if err != nil || len(claimed) != 5 {
			t.Fatalf("claimed %d, %v", len(claimed), err)
		}
		var batch []settled
		for i, j := range claimed {
			o := outcome{status: http.StatusNoContent, latency: 1500 * time.Microsecond, excerpt: "thanks"}
			if i >= 3 {
				o = outcome{status: http.StatusBadGateway, excerpt: "down"}
			}
			batch = append(batch, settled{j: j, o: o})
		}
		before := e.db.WriteStats()
		if err := e.db.Do(ctx, func(tx *sqldb.Tx) error { return d.settleTx(ctx, tx, batch) }); err != nil {
			t.Fatal(err)
		}
		if n := e.db.WriteStats().Statements - before.Statements; e.db.Engine() == sqldb.SQLite && n != 2 {
			t.Fatalf("%d writer statements for 5 outcomes, want 2 (one UPDATE, one INSERT of the 2 failures)", n)
		}
		if n := sqldbtest.Count(t, e.db, `SELECT count(*) FROM webhooks_attempts`); n != 2 {
			t.Fatalf("%d attempt rows, want the 2 failed tries'", n)
		}
		page, err := e.svc.Deliveries(ctx, c.ID, "delivered", web.PageRequest{Limit: 10})
		if err != nil || len(page.Items) != 3 {
			t.Fatalf("%d delivered, %v", len(page.Items), err)
		}
		for _, dl := range page.Items {
			if len(dl.Log) != 1 || dl.Log[0].StatusCode != 204 || dl.Log[0].LatencyMS != 1.5 || dl.Log[0].Response != "thanks" {
				t.Fatalf("log of a delivered delivery: %+v", dl.Log)
			}
		}
		for _, ev := range evs {
			if st, n, _ := e.delivery(c.ID, ev.ID); !(st == "delivered" && n == 1 || st == "pending" && n == 1) {
				t.Fatalf("after settling: %s after %d tries", st, n)
			}
		}
	})
}
