package webhooks

import (
	"context"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
)

// Deliveries reach a local receiver signed (checked independently), with the
// envelope as body; the log shows the attempt; the secret is sealed at rest.
func TestDeliverySigned(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		rc := newReceiver(t, e.clock.Now)
		c := e.register(rc.URL(), []string{"order.*"}, false)
		if !strings.HasPrefix(c.Secret, "whsec_") {
			t.Fatalf("secret %q lacks whsec_", c.Secret)
		}
		if k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(c.Secret, "whsec_")); err != nil || len(k) < 24 || len(k) > 64 {
			t.Fatalf("secret key: %d bytes, %v", len(k), err)
		}
		rc.secrets = []string{c.Secret}
		sqldbtest.AssertNoSecret(t, e.db, "webhooks_endpoints", []string{c.Secret, strings.TrimPrefix(c.Secret, "whsec_")}, nil)
		// A GET never shows the secret.
		if r := e.op.Do("GET", "/api/v1/admin/webhooks/"+c.ID, nil); r.Field("secret") != nil || r.Field("url") != rc.URL() {
			t.Fatalf("GET endpoint: secret %v url %v", r.Field("secret"), r.Field("url"))
		}
		evs := e.emit("order.placed", "o1", "o2")
		e.emit("product.created", "p1") // not selected
		e.flush()
		got := rc.requests()
		if len(got) != 2 {
			t.Fatalf("receiver got %d requests, want 2", len(got))
		}
		for _, g := range got {
			if g.valid != 1 {
				t.Errorf("event %s: signature %v does not verify", g.id, g.sigs)
			}
			if g.env.ID != g.id || g.env.Type != "order.placed" || g.env.AggregateType != "order" || g.env.Sequence != 1 {
				t.Errorf("envelope %+v under webhook-id %s", g.env, g.id)
			}
			if g.ts != "1893553445" { // the fake clock, unix seconds
				t.Errorf("webhook-timestamp %s", g.ts)
			}
		}
		for _, ev := range evs {
			if st, n, _ := e.delivery(c.ID, ev.ID); st != "delivered" || n != 1 {
				t.Errorf("delivery of %s: %s after %d tries", ev.ID, st, n)
			}
		}
		var page web.Page[Delivery]
		r := e.op.Do("GET", "/api/v1/admin/webhooks/"+c.ID+"/deliveries", nil)
		r.WantStatus(t, http.StatusOK)
		r.Decode(t, &page)
		if len(page.Items) != 2 || len(page.Items[0].Log) != 1 || page.Items[0].Log[0].StatusCode != 200 ||
			!strings.HasPrefix(page.Items[0].Log[0].Response, "ok ") {
			t.Fatalf("deliveries page %+v", page)
		}
	})
}

// A failing delivery is retried on the schedule, with at most ±10% jitter,
// on the injected clock, then dead; a single replay delivers it.
func TestRetryScheduleThenDeadThenReplay(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		rc := newReceiver(t, e.clock.Now)
		var mu sync.Mutex
		failing := true
		rc.answer = func(int, received) (int, http.Header) {
			mu.Lock()
			defer mu.Unlock()
			if failing {
				return http.StatusInternalServerError, nil
			}
			return http.StatusOK, nil
		}
		c := e.register(rc.URL(), []string{"*"}, false)
		ev := e.emit("order.paid", "o1")[0]
		e.flush()
		for i, d := range DefaultSchedule {
			st, n, next := e.delivery(c.ID, ev.ID)
			wait := next.Sub(e.clock.Now())
			if st != "pending" || n != i+1 || wait < d*9/10 || wait > d*11/10 {
				t.Fatalf("after try %d: %s, %d tries, next in %v; want pending, %d, ~%v", i+1, st, n, wait, i+1, d)
			}
			e.clock.Advance(wait - time.Millisecond)
			e.flush()
			if got := len(rc.requests()); got != i+1 {
				t.Fatalf("tried early: %d requests before the delay of %v ended", got, d)
			}
			e.clock.Advance(time.Millisecond)
			e.flush()
			if got := len(rc.requests()); got != i+2 {
				t.Fatalf("after the delay of %v: %d requests, want %d", d, got, i+2)
			}
		}
		if st, n, _ := e.delivery(c.ID, ev.ID); st != "dead" || n != 8 {
			t.Fatalf("after the last try: %s after %d tries, want dead after 8", st, n)
		}
		e.relogin()
		var page web.Page[Delivery]
		e.op.Do("GET", "/api/v1/admin/webhooks/"+c.ID+"/deliveries?status=dead", nil).Decode(t, &page)
		if len(page.Items) != 1 || len(page.Items[0].Log) != 8 || page.Items[0].LastError != "HTTP 500" {
			t.Fatalf("dead letters %+v", page.Items)
		}
		// Replaying a delivery that is not dead is 409; the dead one goes again.
		mu.Lock()
		failing = false
		mu.Unlock()
		path := "/api/v1/admin/webhooks/" + c.ID + "/deliveries/" + page.Items[0].ID + "/replay"
		r := e.op.Do("POST", path, nil)
		r.WantStatus(t, http.StatusOK)
		if r.Field("replayed") != float64(1) {
			t.Fatalf("replay: %v", r.Field("replayed"))
		}
		e.clock.Advance(30 * time.Second) // the breaker's cool-down after eight failures
		e.flush()
		if st, _, _ := e.delivery(c.ID, ev.ID); st != "delivered" {
			t.Fatalf("after replay: %s", st)
		}
		e.op.Do("POST", path, nil).WantStatus(t, http.StatusConflict)
		e.op.Do("POST", "/api/v1/admin/webhooks/"+c.ID+"/deliveries/nope/replay", nil).WantStatus(t, http.StatusNotFound)
	})
}

// A receiver down for a while gets everything once back: its breaker opens
// (the deliveries wait without using up tries) and a probe closes it.
func TestReceiverDownThenBack(t *testing.T) {
	forEachEngine(t, Config{MaxInFlight: 2}, func(t *testing.T, e *env) {
		rc := newReceiver(t, e.clock.Now)
		var mu sync.Mutex
		down := true
		rc.answer = func(int, received) (int, http.Header) {
			mu.Lock()
			defer mu.Unlock()
			if down {
				return http.StatusServiceUnavailable, nil
			}
			return http.StatusOK, nil
		}
		other := newReceiver(t, e.clock.Now)
		c := e.register(rc.URL(), []string{"order.*"}, false)
		o := e.register(other.URL(), []string{"order.*"}, false)
		var ids []string
		for i := range 20 {
			ids = append(ids, e.emit("order.placed", "o"+string(rune('a'+i)))[0].ID)
		}
		e.flush()
		// The healthy endpoint got everything; the dead one at most the
		// breaker's threshold of tries.
		if n := len(other.requests()); n != 20 {
			t.Fatalf("healthy endpoint got %d, want 20", n)
		}
		if n := len(rc.requests()); n < 5 || n > 6 {
			t.Fatalf("down endpoint tried %d times, want the breaker to stop it at 5 (+1 in flight)", n)
		}
		if !e.svc.Dispatcher().BreakerOpen(c.ID) || e.svc.Dispatcher().BreakerOpen(o.ID) {
			t.Fatal("breakers: want the down endpoint's open, the other's closed")
		}
		mu.Lock()
		down = false
		mu.Unlock()
		e.clock.Advance(10 * time.Second) // past the 5 s retry, not the 30 s cool-down
		e.flush()
		if n := len(rc.requests()); n > 6 {
			t.Fatalf("tried %d times while the breaker was open", n)
		}
		e.clock.Advance(30 * time.Second)
		e.flush()
		seen := map[string]bool{}
		for _, g := range rc.requests() {
			seen[g.id] = true
		}
		for _, id := range ids {
			if st, _, _ := e.delivery(c.ID, id); st != "delivered" || !seen[id] {
				t.Errorf("event %s: %s, received %v", id, st, seen[id])
			}
		}
		var st SyncStatus
		e.op.Do("GET", "/api/v1/admin/sync/webhooks", nil).Decode(t, &st)
		for _, es := range st.Endpoints {
			if es.Pending != 0 || es.Dead != 0 || es.Failed != 0 {
				t.Errorf("status %+v, want nothing pending", es)
			}
		}
	})
}

// 410 Gone disables the endpoint; nothing more is sent until staff enable it.
func TestGoneDisables(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		rc := newReceiver(t, e.clock.Now)
		rc.answer = func(n int, _ received) (int, http.Header) {
			if n == 1 {
				return http.StatusGone, nil
			}
			return http.StatusOK, nil
		}
		c := e.register(rc.URL(), []string{"order.*"}, false)
		ev := e.emit("order.placed", "o1")[0]
		e.flush()
		r := e.op.Do("GET", "/api/v1/admin/webhooks/"+c.ID, nil)
		if r.Field("enabled") != false || r.Field("disabled_reason") != "gone" {
			t.Fatalf("after 410: enabled %v reason %v", r.Field("enabled"), r.Field("disabled_reason"))
		}
		e.emit("order.placed", "o2") // not recorded for a disabled endpoint
		e.clock.Advance(time.Hour)
		e.flush()
		if n := len(rc.requests()); n != 1 {
			t.Fatalf("a disabled endpoint got %d requests", n)
		}
		e.op.Do("PATCH", "/api/v1/admin/webhooks/"+c.ID, map[string]any{"enabled": true}).WantStatus(t, http.StatusOK)
		e.flush()
		if st, _, _ := e.delivery(c.ID, ev.ID); st != "delivered" || len(rc.requests()) != 2 {
			t.Fatalf("after enabling: %s, %d requests", st, len(rc.requests()))
		}
	})
}

// 429 with Retry-After holds the delivery that long (beyond the schedule's
// 5 s), counted as a try.
func TestTooManyRequestsHonoured(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		rc := newReceiver(t, e.clock.Now)
		rc.answer = func(n int, _ received) (int, http.Header) {
			if n == 1 {
				return http.StatusTooManyRequests, http.Header{"Retry-After": {"120"}}
			}
			return http.StatusOK, nil
		}
		c := e.register(rc.URL(), []string{"order.*"}, false)
		ev := e.emit("order.placed", "o1")[0]
		e.flush()
		st, n, next := e.delivery(c.ID, ev.ID)
		if st != "pending" || n != 1 || !next.Equal(e.clock.Now().Add(120*time.Second)) {
			t.Fatalf("after 429: %s, %d tries, next %v (now %v)", st, n, next, e.clock.Now())
		}
		e.clock.Advance(119 * time.Second)
		e.flush()
		if len(rc.requests()) != 1 {
			t.Fatal("retried before Retry-After")
		}
		e.clock.Advance(time.Second)
		e.flush()
		if st, _, _ := e.delivery(c.ID, ev.ID); st != "delivered" {
			t.Fatalf("after Retry-After: %s", st)
		}
	})
}

// A fifo endpoint sees each aggregate's events in sequence, one in flight
// per aggregate, even when one fails and is retried; others flow meanwhile.
func TestFIFOPerAggregate(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		rc := newReceiver(t, e.clock.Now)
		var mu sync.Mutex
		inflight := map[string]int{}
		maxInflight := 0
		failedOnce := false
		rc.answer = func(_ int, g received) (int, http.Header) {
			mu.Lock()
			inflight[g.env.AggregateID]++
			maxInflight = max(maxInflight, inflight[g.env.AggregateID])
			fail := g.env.AggregateID == "A" && g.env.Sequence == 2 && !failedOnce
			failedOnce = failedOnce || fail
			mu.Unlock()
			time.Sleep(time.Millisecond) // widen the window a second delivery of the aggregate would need
			mu.Lock()
			inflight[g.env.AggregateID]--
			mu.Unlock()
			if fail {
				return http.StatusInternalServerError, nil
			}
			return http.StatusOK, nil
		}
		e.register(rc.URL(), []string{"order.*"}, true)
		for range 5 {
			e.emit("order.placed", "A", "B", "C")
		}
		e.flush()
		seqs := func() map[string][]int64 {
			out := map[string][]int64{}
			for _, g := range rc.requests() {
				out[g.env.AggregateID] = append(out[g.env.AggregateID], g.env.Sequence)
			}
			return out
		}
		got := seqs()
		if !slices.Equal(got["A"], []int64{1, 2}) || !slices.Equal(got["B"], []int64{1, 2, 3, 4, 5}) ||
			!slices.Equal(got["C"], []int64{1, 2, 3, 4, 5}) {
			t.Fatalf("before the retry: %v", got)
		}
		e.clock.Advance(6 * time.Second)
		e.flush()
		if got := seqs(); !slices.Equal(got["A"], []int64{1, 2, 2, 3, 4, 5}) {
			t.Fatalf("A after the retry: %v", got["A"])
		}
		if maxInflight != 1 {
			t.Fatalf("at most %d deliveries of one aggregate in flight, want 1", maxInflight)
		}
	})
}

// Prune removes delivered deliveries and their attempts after the
// retention period and keeps the dead ones.
func TestPrune(t *testing.T) {
	forEachEngine(t, Config{Schedule: []time.Duration{time.Second}}, func(t *testing.T, e *env) {
		ok := newReceiver(t, e.clock.Now)
		bad := newReceiver(t, e.clock.Now)
		bad.answer = func(int, received) (int, http.Header) { return http.StatusTeapot, nil }
		e.register(ok.URL(), []string{"order.*"}, false)
		b := e.register(bad.URL(), []string{"order.*"}, false)
		e.emit("order.placed", "o1")
		e.flush()
		e.clock.Advance(2 * time.Second)
		e.flush()
		e.clock.Advance(29 * 24 * time.Hour)
		if n, err := e.svc.Prune(context.Background()); err != nil || n != 0 {
			t.Fatalf("Prune within the retention: %d, %v", n, err)
		}
		e.clock.Advance(24*time.Hour + time.Second)
		if n, err := e.svc.Prune(context.Background()); err != nil || n != 1 {
			t.Fatalf("Prune: %d rows, %v; want the delivered delivery (its one try is in its row)", n, err)
		}
		if n := sqldbtest.Count(t, e.db, `SELECT count(*) FROM webhooks_deliveries WHERE endpoint_id = $1 AND status = 'dead'`, b.ID); n != 1 {
			t.Fatalf("%d dead deliveries kept, want 1", n)
		}
		if n := sqldbtest.Count(t, e.db, `SELECT count(*) FROM webhooks_attempts WHERE endpoint_id = $1`, b.ID); n != 2 {
			t.Fatalf("%d attempts of the dead delivery kept, want 2", n)
		}
	})
}

// TestEventDeliveries: the per-event view the sync monitor shows — each
// selecting endpoint's delivery of each event, nothing for the others.
func TestEventDeliveries(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		rc := newReceiver(t, e.clock.Now)
		orders := e.register(rc.URL(), []string{"order.*"}, false)
		all := e.register(rc.URL(), []string{"*"}, false)
		evs := e.emit("order.placed", "o1")
		prod := e.emit("product.created", "p1")
		e.flush()
		got, err := e.svc.EventDeliveries(context.Background(), []string{evs[0].ID, prod[0].ID, "no-such-event"})
		if err != nil {
			t.Fatal(err)
		}
		if ds := got[evs[0].ID]; len(ds) != 2 || ds[0].Status != "delivered" || ds[1].Status != "delivered" || ds[0].LastStatus != 204 && ds[0].LastStatus != 200 {
			t.Errorf("order.placed deliveries %+v, want both endpoints delivered", ds)
		}
		if ds := got[prod[0].ID]; len(ds) != 1 || ds[0].EndpointID != all.ID {
			t.Errorf("product.created deliveries %+v, want only %s (not %s)", ds, all.ID, orders.ID)
		}
		if ds := got["no-such-event"]; len(ds) != 0 {
			t.Errorf("an unknown event has deliveries %+v", ds)
		}
	})
}

// Deliveries recorded before staff made their endpoint fifo keep the order
// too: while the first event of an aggregate is retried, its successors
// wait (the deliveries' fifo flag follows the endpoint's).
func TestFIFOSwitchedOnKeepsRecordedOrder(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		rc := newReceiver(t, e.clock.Now)
		rc.answer = func(n int, g received) (int, http.Header) {
			if n == 1 {
				return http.StatusInternalServerError, nil
			}
			return http.StatusOK, nil
		}
		c := e.register(rc.URL(), []string{"order.*"}, false)
		for range 3 {
			e.emit("order.placed", "A")
		}
		e.op.Do("PATCH", "/api/v1/admin/webhooks/"+c.ID, map[string]any{"fifo": true}).WantStatus(t, http.StatusOK)
		e.flush()
		seqs := func() (out []int64) {
			for _, g := range rc.requests() {
				out = append(out, g.env.Sequence)
			}
			return out
		}
		if got := seqs(); !slices.Equal(got, []int64{1}) {
			t.Fatalf("while the first event waits for its retry: %v, want [1]", got)
		}
		e.clock.Advance(6 * time.Second)
		e.flush()
		if got := seqs(); !slices.Equal(got, []int64{1, 1, 2, 3}) {
			t.Fatalf("after the retry: %v, want [1 1 2 3]", got)
		}
	})
}
