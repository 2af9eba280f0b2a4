package webhooks

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"mercato/internal/platform/event"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// appendAt appends an event to the outbox at the clock's time (as a
// module's unit would) and returns it.
func (e *env) appendAt(typ, aggID string) event.Envelope {
	e.t.Helper()
	ev := event.Envelope{Type: typ, SchemaVersion: 1, AggregateType: event.Noun(typ), AggregateID: aggID,
		Data: json.RawMessage(`{"n":1}`)}
	if err := e.db.Do(context.Background(), func(tx *sqldb.Tx) error { return outbox.Append(context.Background(), tx, &ev) }); err != nil {
		e.t.Fatal(err)
	}
	return ev
}

// consume hands events to the webhooks consumer, as the inbox would.
func (e *env) consume(evs ...event.Envelope) {
	e.t.Helper()
	err := e.db.Do(context.Background(), func(tx *sqldb.Tx) error {
		for _, ev := range evs {
			if err := e.svc.Consumer().Handle(context.Background(), tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// TestReplaySince: POST …/replay-events {"since"} re-records the retained
// events since then that the endpoint selects — delivered ones again,
// never-recorded ones anew, pending ones left alone — page by page, each
// replay applied once however often it is sent, and audited.
func TestReplaySince(t *testing.T) {
	forEachEngine(t, Config{MaxReplay: 3}, func(t *testing.T, e *env) {
		rc := newReceiver(t, e.clock.Now)
		c := e.register(rc.URL(), []string{"order.*"}, false)
		t0 := e.clock.Now()
		e1 := e.appendAt("order.placed", "o1")
		e.clock.Advance(time.Hour)
		e2 := e.appendAt("order.paid", "o1")
		e.clock.Advance(time.Hour)
		e3 := e.appendAt("product.created", "p1") // not selected
		e.clock.Advance(time.Hour)
		e4 := e.appendAt("order.placed", "o2")
		e.consume(e1, e2)
		e.flush()
		e.consume(e3, e4) // e4 stays pending: no flush yet
		path := "/api/v1/admin/webhooks/" + c.ID + "/replay-events"
		got := func() map[string]int {
			out := map[string]int{}
			for _, g := range rc.requests() {
				out[g.id]++
			}
			return out
		}
		var cursors []string // next_cursor of each step
		steps := []struct {
			name          string
			since         time.Time
			cursor        int    // use the next_cursor of step cursor-1 (0: none)
			key           string // Idempotency-Key
			flushBefore   bool
			scanned       int
			recorded      int64
			more          bool
			receivedAfter map[string]int // checked after the step, with a flush first
		}{
			{name: "since the middle: e2 delivered again, e3 not selected, e4 pending left", since: t0.Add(30 * time.Minute),
				key: "k1", scanned: 3, recorded: 1},
			{name: "the same request again replays its answer", since: t0.Add(30 * time.Minute), key: "k1", scanned: 3, recorded: 1},
			{name: "since the start, first page: e1 again, e2 still pending", since: t0, scanned: 3, recorded: 1, more: true},
			{name: "its next page: e4 pending", since: t0, cursor: 3, scanned: 1, recorded: 0},
			{name: "the next page again once delivered: e4 again", since: t0, cursor: 3, flushBefore: true, scanned: 1, recorded: 1,
				receivedAfter: map[string]int{e1.ID: 2, e2.ID: 2, e4.ID: 2}},
			{name: "and again: this replay re-recorded e4 already", since: t0, cursor: 3, flushBefore: true, scanned: 1, recorded: 0,
				receivedAfter: map[string]int{e1.ID: 2, e2.ID: 2, e4.ID: 2}},
			{name: "since after the last event", since: t0.Add(4 * time.Hour), scanned: 0, recorded: 0},
		}
		var first ReplayedEvents
		for i, st := range steps {
			if st.flushBefore {
				e.flush()
			}
			body := map[string]any{"since": st.since}
			if st.cursor > 0 {
				body["cursor"] = cursors[st.cursor-1]
			}
			var hdr []string
			if st.key != "" {
				hdr = []string{"Idempotency-Key: " + st.key}
			}
			r := e.op.Do("POST", path, body, hdr...)
			r.WantStatus(t, http.StatusAccepted)
			var out ReplayedEvents
			r.Decode(t, &out)
			cursors = append(cursors, out.NextCursor)
			if out.Scanned != st.scanned || out.Recorded != st.recorded || (out.NextCursor != "") != st.more {
				t.Fatalf("step %d (%s): scanned %d recorded %d next %q; want %d, %d, more %v", i+1, st.name,
					out.Scanned, out.Recorded, out.NextCursor, st.scanned, st.recorded, st.more)
			}
			if i == 0 {
				first = out
			}
			if i == 1 && out.ReplayID != first.ReplayID {
				t.Fatalf("a retried request made another replay (%s, first %s)", out.ReplayID, first.ReplayID)
			}
			if st.receivedAfter != nil {
				e.flush()
				if g := got(); len(g) != len(st.receivedAfter) || g[e1.ID] != st.receivedAfter[e1.ID] ||
					g[e2.ID] != st.receivedAfter[e2.ID] || g[e4.ID] != st.receivedAfter[e4.ID] || g[e3.ID] != 0 {
					t.Fatalf("step %d (%s): received %v, want %v", i+1, st.name, g, st.receivedAfter)
				}
			}
		}
		// An endpoint registered after the events gets them all, anew.
		late := e.register(rc.URL(), []string{"order.placed"}, false)
		r := e.op.Do("POST", "/api/v1/admin/webhooks/"+late.ID+"/replay-events", map[string]any{"since": t0})
		r.WantStatus(t, http.StatusAccepted)
		if r.Field("recorded") != float64(1) || r.Field("next_cursor") == nil {
			t.Fatalf("late endpoint, first page: %s", r.Body)
		}
		r = e.op.Do("POST", "/api/v1/admin/webhooks/"+late.ID+"/replay-events", map[string]any{"since": t0, "cursor": r.Field("next_cursor")})
		if r.Field("recorded") != float64(1) {
			t.Fatalf("late endpoint, second page: %s", r.Body)
		}
		if n := sqldbtest.Count(t, e.db, `SELECT count(*) FROM webhooks_deliveries WHERE endpoint_id = $1`, late.ID); n != 2 {
			t.Fatalf("late endpoint has %d deliveries, want e1 and e4", n)
		}
		// Refusals change nothing.
		for _, bad := range []struct {
			path   string
			body   map[string]any
			status int
		}{
			{path, map[string]any{}, http.StatusUnprocessableEntity},
			{path, map[string]any{"since": t0, "cursor": "nope"}, http.StatusUnprocessableEntity},
			{path, map[string]any{"since": t0, "cursor": first.ReplayID + ".1"}, http.StatusUnprocessableEntity}, // since differs
			{"/api/v1/admin/webhooks/" + late.ID + "/replay-events", map[string]any{"since": t0.Add(30 * time.Minute), "cursor": first.ReplayID + ".1"},
				http.StatusUnprocessableEntity}, // another endpoint's replay
			{"/api/v1/admin/webhooks/nope/replay-events", map[string]any{"since": t0}, http.StatusNotFound},
			{"/api/v1/admin/connectors/" + c.ID + "/replay-events", map[string]any{"since": t0}, http.StatusNotFound},
		} {
			e.op.Do("POST", bad.path, bad.body).WantStatus(t, bad.status)
		}
		e.cs.Do("POST", path, map[string]any{"since": t0}).WantStatus(t, http.StatusForbidden)
		if n := sqldbtest.Count(t, e.db, `SELECT count(*) FROM audit_log WHERE action = 'webhook.events_replayed'`); n != 8 {
			t.Fatalf("%d replays audited, want 8 (6 requests that ran, 2 for the late endpoint)", n)
		}
	})
}
