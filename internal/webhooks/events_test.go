package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
)

// emitData applies one event of typ with data to aggregate id through the
// consumer and returns it.
func (e *env) emitData(typ, id, data string) event.Envelope {
	e.t.Helper()
	ev := event.Envelope{ID: event.NewID(), Type: typ, SchemaVersion: 1, AggregateType: event.Noun(typ),
		AggregateID: id, Sequence: e.seq[id] + 1, OccurredAt: e.clock.Now(), Data: json.RawMessage(data)}
	e.consume(ev)
	e.seq[id] = ev.Sequence
	return ev
}

// storedEnvelope is the envelope kept for event id's deliveries ("" when
// none is).
func (e *env) storedEnvelope(id string) string {
	e.t.Helper()
	var env string
	if err := e.db.Reader().QueryRow(`SELECT envelope FROM webhooks_events WHERE event_id = $1`, id).Scan(&env); err != nil {
		return ""
	}
	return env
}

// An event selected by N endpoints keeps its envelope once, in one
// webhooks_events row, and N delivery rows; every endpoint is sent that
// envelope, byte for byte, signed with its own secret. An event no
// endpoint selects keeps nothing.
func TestEnvelopeOncePerEvent(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		const n = 3
		var rcs []*receiver
		for range n {
			rc := newReceiver(t, e.clock.Now)
			c := e.register(rc.URL(), []string{"order.*"}, false)
			rc.secrets = []string{c.Secret}
			rcs = append(rcs, rc)
		}
		other := newReceiver(t, e.clock.Now)
		e.register(other.URL(), []string{"product.created"}, false)
		evs := e.emit("order.placed", "o1", "o2")
		if got := sqldbtest.Count(t, e.db, `SELECT count(*) FROM webhooks_events WHERE event_id IN ($1, $2)`, evs[0].ID, evs[1].ID); got != 2 {
			t.Fatalf("%d envelopes kept for 2 events, want 2", got)
		}
		if got := sqldbtest.Count(t, e.db, `SELECT count(*) FROM webhooks_deliveries WHERE event_id IN ($1, $2)`, evs[0].ID, evs[1].ID); got != 2*n {
			t.Fatalf("%d deliveries of 2 events to %d endpoints, want %d", got, n, 2*n)
		}
		e.emit("product.created", "p1")
		none := e.emit("inventory.low_stock", "s1")[0] // selected by no endpoint
		if env := e.storedEnvelope(none.ID); env != "" {
			t.Fatalf("an event no endpoint selects was kept: %s", env)
		}
		e.flush()
		for i, rc := range rcs {
			got := rc.requests()
			if len(got) != 2 {
				t.Fatalf("receiver %d got %d requests, want 2", i, len(got))
			}
			for _, g := range got {
				if g.valid != 1 {
					t.Fatalf("receiver %d: the signature of %s does not verify", i, g.id)
				}
				if want := e.storedEnvelope(g.id); string(g.body) != want {
					t.Fatalf("receiver %d got %s, the kept envelope is %s", i, g.body, want)
				}
			}
		}
	})
}

// A transaction's deliveries cost a fixed number of writer statements
// however many events and endpoints there are (counted on SQLite's writer:
// the statements of a transaction of 1 event to 1 endpoint and of 32 events
// to 5 endpoints are as many), where a statement per delivery cost 160 more.
func TestRecordStatementsPerTransaction(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite, sources()...)
	e := newEnv(t, db, Config{AllowPrivate: true})
	rc := newReceiver(t, e.clock.Now)
	var ids []string
	ids = append(ids, e.register(rc.URL(), []string{"order.*"}, false).ID)
	count := func(events int) int64 {
		aggs := make([]string, events)
		for i := range aggs {
			aggs[i] = "o" + strconv.Itoa(i)
		}
		before := db.WriteStats().Statements
		evs := e.emit("order.placed", aggs...)
		n := db.WriteStats().Statements - before
		if got := sqldbtest.Count(t, db, `SELECT count(*) FROM webhooks_deliveries WHERE event_id = $1`, evs[len(evs)-1].ID); got != len(ids) {
			t.Fatalf("%d deliveries of the last event, want %d", got, len(ids))
		}
		return n
	}
	one := count(1)
	for range 4 {
		ids = append(ids, e.register(rc.URL(), []string{"order.*"}, false).ID)
	}
	many := count(32)
	if one != many {
		t.Fatalf("writer statements: %d for 1 delivery, %d for 160 deliveries (32 events × 5 endpoints); want as many", one, many)
	}
}

// The envelope is kept while any delivery of its event is: the delivered
// delivery is pruned after the retention period, the dead one keeps the
// envelope; its replay sends the same body, signed; once it is delivered
// and pruned in turn, the envelope goes too.
func TestEnvelopeKeptWhileNeeded(t *testing.T) {
	forEachEngine(t, Config{Schedule: []time.Duration{time.Second}}, func(t *testing.T, e *env) {
		ctx := context.Background()
		ok := newReceiver(t, e.clock.Now)
		bad := newReceiver(t, e.clock.Now)
		var failing atomic.Bool
		failing.Store(true)
		bad.answer = func(int, received) (int, http.Header) {
			if failing.Load() {
				return http.StatusTeapot, nil
			}
			return http.StatusNoContent, nil
		}
		e.register(ok.URL(), []string{"order.*"}, false)
		b := e.register(bad.URL(), []string{"order.*"}, false)
		bad.secrets = []string{b.Secret}
		ev := e.emit("order.placed", "o1")[0]
		kept := e.storedEnvelope(ev.ID)
		e.flush()
		e.clock.Advance(2 * time.Second)
		e.flush()
		if st, _, _ := e.delivery(b.ID, ev.ID); st != "dead" {
			t.Fatalf("the failing endpoint's delivery is %s, want dead", st)
		}
		e.clock.Advance(30*24*time.Hour + time.Second)
		if n, err := e.svc.Prune(ctx); err != nil || n != 1 {
			t.Fatalf("Prune: %d rows, %v; want the delivered delivery only", n, err)
		}
		if got := e.storedEnvelope(ev.ID); got != kept {
			t.Fatalf("the dead delivery's envelope after the prune: %q, want %q", got, kept)
		}

		failing.Store(false)
		e.relogin()
		page, err := e.svc.Deliveries(ctx, b.ID, "dead", web.PageRequest{Limit: 10})
		if err != nil || len(page.Items) != 1 {
			t.Fatalf("dead deliveries: %d, %v", len(page.Items), err)
		}
		e.op.Do("POST", "/api/v1/admin/webhooks/"+b.ID+"/deliveries/"+page.Items[0].ID+"/replay", nil).WantStatus(t, http.StatusOK)
		e.flush()
		got := bad.requests()
		if len(got) != 3 {
			t.Fatalf("%d requests to the failing endpoint, want 2 tries and the replay", len(got))
		}
		first, replayed := got[0], got[2]
		if !bytes.Equal(replayed.body, first.body) || replayed.id != first.id {
			t.Fatalf("the replay sent %s (id %s), the first try %s (id %s)", replayed.body, replayed.id, first.body, first.id)
		}
		if replayed.valid != 1 || first.valid != 1 {
			t.Fatalf("signatures verify: first %d, replay %d", first.valid, replayed.valid)
		}
		ts, _ := strconv.ParseInt(replayed.ts, 10, 64)
		if sig, _ := Sign([]string{b.Secret}, first.id, ts, first.body); sig != replayed.sigs[0] {
			t.Fatalf("the replay's signature %s is not the first body's at its time (%s)", replayed.sigs[0], sig)
		}

		e.clock.Advance(30*24*time.Hour + time.Second)
		if n, err := e.svc.Prune(ctx); err != nil || n != 4 {
			t.Fatalf("Prune: %d rows, %v; want the replayed delivery, its 2 failed tries and the envelope", n, err)
		}
		if got := sqldbtest.Count(t, e.db, `SELECT count(*) FROM webhooks_events`); got != 0 {
			t.Fatalf("%d envelopes after the last delivery was pruned", got)
		}
	})
}

// An endpoint's deletion takes its deliveries; the envelopes no other
// delivery needs go with the next prune after the retention period, the
// others stay.
func TestEnvelopeOfDeletedEndpointPruned(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		a := e.register("http://127.0.0.1:1/a", []string{"order.placed"}, false)
		e.register("http://127.0.0.1:1/b", []string{"order.paid"}, false)
		placed := e.emit("order.placed", "o1")[0]
		paid := e.emit("order.paid", "o1")[0]
		e.op.Do("DELETE", "/api/v1/admin/webhooks/"+a.ID, nil).WantStatus(t, http.StatusNoContent)
		if n, err := e.svc.Prune(ctx); err != nil || n != 0 {
			t.Fatalf("Prune within the retention: %d, %v", n, err)
		}
		e.clock.Advance(30*24*time.Hour + time.Second)
		if n, err := e.svc.Prune(ctx); err != nil || n != 1 {
			t.Fatalf("Prune: %d rows, %v; want the deleted endpoint's envelope", n, err)
		}
		if e.storedEnvelope(placed.ID) != "" || e.storedEnvelope(paid.ID) == "" {
			t.Fatal("the deleted endpoint's envelope kept, or the pending delivery's gone")
		}
	})
}

// The customer's erasure (accounts' erasure unit, running every module's
// part) anonymises the kept envelopes that name them: a delivery not yet
// made sends customer_id "" and the rest of the envelope as it was, signed
// over what it sends; another customer's envelope is left as it is.
func TestEnvelopeErasedWithTheCustomer(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		rc := newReceiver(t, e.clock.Now)
		c := e.register(rc.URL(), []string{"order.*"}, false)
		rc.secrets = []string{c.Secret}
		ann, err := e.acc.CreateUser(ctx, "ann@example.com", password, "Ann", []string{accounts.RoleCustomer})
		if err != nil {
			t.Fatal(err)
		}
		hers := e.emitData("order.placed", "o1", `{"order_id":"o1","customer_id":"`+ann.ID+`","total":1250}`)
		theirs := e.emitData("order.placed", "o2", `{"order_id":"o2","customer_id":"someone-else","total":990}`)
		before := e.storedEnvelope(theirs.ID)
		if err := e.db.Do(ctx, func(tx *sqldb.Tx) error {
			_, err := e.acc.EraseTx(ctx, tx, accounts.Actor{ID: ann.ID}, ann.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if got := e.storedEnvelope(theirs.ID); got != before {
			t.Fatalf("another customer's envelope changed: %s", got)
		}
		if n := sqldbtest.Count(t, e.db, `SELECT count(*) FROM webhooks_events WHERE customer_id = $1`, ann.ID); n != 0 {
			t.Fatalf("%d envelopes still filed under the erased customer", n)
		}
		e.flush()
		for _, g := range rc.requests() {
			if g.valid != 1 {
				t.Fatalf("%s: the signature does not verify", g.id)
			}
			if g.id != hers.ID {
				continue
			}
			var data map[string]any
			if err := json.Unmarshal(g.env.Data, &data); err != nil {
				t.Fatal(err)
			}
			if data["customer_id"] != "" || data["order_id"] != "o1" || data["total"] != float64(1250) ||
				g.env.Type != "order.placed" || g.env.AggregateID != "o1" || bytes.Contains(g.body, []byte(ann.ID)) {
				t.Fatalf("the erased customer's event sent as %s", g.body)
			}
			return
		}
		t.Fatal("the erased customer's event was not sent")
	})
}
