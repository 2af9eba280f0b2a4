package logistics

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"mercato/internal/logistics/carrier"
	"mercato/internal/logistics/sandboxcarrier"
	"mercato/internal/platform/web/webtest"
)

// ship ships every unshipped unit of order id (or lines) and returns the
// shipment's id and tracking number.
func (e *env) ship(id string, lines ...any) (string, string) {
	e.t.Helper()
	body := map[string]any{"carrier": "sandbox"}
	if len(lines) > 0 {
		var ls []map[string]any
		for i := 0; i < len(lines); i += 2 {
			ls = append(ls, map[string]any{"sku": lines[i], "quantity": lines[i+1]})
		}
		body["lines"] = ls
	}
	r := e.op.Do("POST", "/api/v1/admin/orders/"+id+"/shipments", body)
	r.WantStatus(e.t, http.StatusCreated)
	return r.Field("id").(string), r.Field("tracking_number").(string)
}

// statuses lists the timeline of the order's shipment i as its customer reads it.
func statuses(t *testing.T, c *webtest.Client, id string, i int) []string {
	t.Helper()
	r := c.Do("GET", "/api/v1/orders/"+id+"/tracking", nil)
	r.WantStatus(t, http.StatusOK)
	evs, _ := r.Field(fmt.Sprintf("items.%d.events", i)).([]any)
	out := []string{}
	for _, ev := range evs {
		out = append(out, fmt.Sprint(ev.(map[string]any)["status"]))
	}
	return out
}

// TestTrackingTimeline: the sandbox moves a shipment one stage per step of
// the fake clock along its tracking number's route; each move is one
// timeline entry and one shipment.updated; the order is delivered when its
// last shipment is, not before; only who may read the order reads it.
func TestTrackingTimeline(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.paid(e.alice, "TEE", 2, "MUG", 1)
		first, tn := e.ship(id, "TEE", 2)
		route := sandboxcarrier.Route(tn)
		if got := statuses(t, e.alice, id, 0); !equal(got, []string{"label_created"}) {
			t.Fatalf("fresh timeline %v", got)
		}
		e.track(step / 2) // half a step: nothing new
		if got := statuses(t, e.alice, id, 0); len(got) != 1 {
			t.Fatalf("half a step moved the parcel: %v", got)
		}
		e.track(step / 2)
		want := []string{"label_created"}
		for i := 1; i < len(route); i++ {
			if i > 1 {
				e.track(step)
			}
			want = append(want, string(route[i]))
			if got := statuses(t, e.alice, id, 0); !equal(got, want) {
				t.Fatalf("after %d steps: %v, want %v", i, got, want)
			}
		}
		r := e.alice.Do("GET", "/api/v1/orders/"+id+"/tracking", nil)
		if r.Field("items.0.status") != "delivered" || r.Field("items.0.delivered_at") == nil || r.Field("items.0.lines.0.sku") != "TEE" ||
			r.Field("items.0.events.1.location") == "" {
			t.Fatalf("tracking: %s", r.Body)
		}
		if got := e.types("shipment", first); len(got) != len(route) || got[len(got)-1] != "shipment.updated" {
			t.Errorf("shipment events %v: want created and %d updates", got, len(route)-1)
		}
		if d := e.data(first, "shipment.updated"); d["status"] != "delivered" || d["order_id"] != id {
			t.Errorf("last shipment.updated %v", d)
		}
		if o := e.order(id); o.Field("status") != "partially_shipped" {
			t.Fatalf("delivered with a unit unshipped: %s", o.Body)
		}
		second, _ := e.ship(id) // the MUG
		e.track(step)
		if o := e.order(id); o.Field("status") != "shipped" {
			t.Fatalf("delivered with a shipment on its way: %s", o.Body)
		}
		e.deliverAll()
		if r := e.alice.Do("GET", "/api/v1/orders/"+id+"/tracking", nil); r.Field("items.1.id") != second || r.Field("items.1.status") != "delivered" {
			t.Fatalf("second shipment: %s", r.Body)
		}
		if o := e.order(id); o.Field("status") != "delivered" || o.Field("fulfillment_status") != "delivered" {
			t.Fatalf("not delivered with every shipment delivered: %s", o.Body)
		}
		if got := e.types("order", id); got[len(got)-1] != "order.delivered" {
			t.Errorf("order events %v", got)
		}
		e.track(10 * step)
		if got := statuses(t, e.alice, id, 0); len(got) != len(route) {
			t.Errorf("the timeline moved after delivery: %v", got)
		}
		statuses(t, e.cs, id, 0) // staff with orders.read
		webtest.AssertProblem(t, e.bob.Do("GET", "/api/v1/orders/"+id+"/tracking", nil), http.StatusNotFound, "not_found")
		webtest.AssertProblem(t, e.c.Do("GET", "/api/v1/orders/"+id+"/tracking", nil), http.StatusNotFound, "not_found")
		webtest.AssertProblem(t, e.alice.Do("GET", "/api/v1/orders/nope/tracking", nil), http.StatusNotFound, "not_found")
	})
}

// TestWebhook: a signed carrier event joins the timeline and moves the
// shipment; its redelivery is answered the same and adds nothing; a bad
// signature or a changed body is 400 invalid_signature and changes
// nothing; a delivered event delivers the order.
func TestWebhook(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.paid(e.alice, "CAP", 1)
		sid, tn := e.ship(id)
		post := func(h http.Header, body []byte) *webtest.Response {
			return e.c.Do("POST", "/api/v1/logistics/webhooks/sandbox", body, "X-Carrier-Signature: "+h.Get(carrier.SignatureHeader))
		}
		at := e.clock.Now().Add(time.Minute)
		h, body := e.sandbox.Webhook(tn, carrier.Event{ID: "evt-1", Status: carrier.InTransit, OccurredAt: at, Location: "Hub 7"})
		r := post(h, body)
		r.WantStatus(t, http.StatusOK)
		if r.Field("applied") != float64(1) {
			t.Fatalf("webhook: %s", r.Body)
		}
		again := post(h, body)
		again.WantStatus(t, http.StatusOK)
		if again.Header.Get("Idempotent-Replayed") != "true" || string(again.Body) != string(r.Body) {
			t.Errorf("redelivery: %s %v", again.Body, again.Header)
		}
		if got := statuses(t, e.alice, id, 0); !equal(got, []string{"label_created", "in_transit"}) {
			t.Fatalf("timeline %v", got)
		}
		if got := e.types("shipment", sid); !equal(got, []string{"shipment.created", "shipment.updated"}) {
			t.Fatalf("shipment events %v", got)
		}
		events := e.count(`SELECT count(*) FROM outbox`)
		dh, delivered := e.sandbox.Webhook(tn, carrier.Event{ID: "evt-2", Status: carrier.Delivered, OccurredAt: at.Add(time.Hour)})
		tampered := append([]byte(nil), delivered...)
		tampered[len(tampered)-3] = 'X'
		for name, c := range map[string]struct {
			sig  string
			body []byte
		}{
			"bad signature": {"sha256=" + fmt.Sprintf("%064x", 1), delivered},
			"no signature":  {"", delivered},
			"changed body":  {dh.Get(carrier.SignatureHeader), tampered},
		} {
			r := e.c.Do("POST", "/api/v1/logistics/webhooks/sandbox", c.body, "X-Carrier-Signature: "+c.sig)
			if r.Status != http.StatusBadRequest || r.Problem == nil || r.Problem.Code != "invalid_signature" {
				t.Errorf("%s: %d %s", name, r.Status, r.Body)
			}
		}
		webtest.AssertProblem(t, e.c.Do("POST", "/api/v1/logistics/webhooks/owl", delivered, "X-Carrier-Signature: "+dh.Get(carrier.SignatureHeader)),
			http.StatusNotFound, "not_found")
		if n := e.count(`SELECT count(*) FROM outbox`); n != events {
			t.Errorf("refused webhooks appended %d events", n-events)
		}
		if o := e.order(id); o.Field("status") != "shipped" {
			t.Fatalf("refused webhooks moved the order: %s", o.Body)
		}
		post(dh, delivered).WantStatus(t, http.StatusOK)
		if o := e.order(id); o.Field("status") != "delivered" {
			t.Fatalf("a delivered webhook did not deliver: %s", o.Body)
		}
		// The sandbox's own report of stages meanwhile changes nothing any more.
		e.track(20 * step)
		if got := statuses(t, e.alice, id, 0); got[len(got)-1] != "delivered" {
			t.Errorf("timeline %v", got)
		}
		unknown, ub := e.sandbox.Webhook("SBXNOPE", carrier.Event{ID: "evt-3", Status: carrier.Delivered, OccurredAt: at})
		webtest.AssertProblem(t, post(unknown, ub), http.StatusNotFound, "not_found")
	})
}

// TestDeliveriesRace: webhooks delivering an order's shipments at once —
// the order is delivered once the last is, exactly once (both engines).
func TestDeliveriesRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.paid(e.alice, "TEE", 1, "MUG", 1, "CAP", 1)
		var tns []string
		for _, sku := range []string{"TEE", "MUG", "CAP"} {
			_, tn := e.ship(id, sku, 1)
			tns = append(tns, tn)
		}
		var wg sync.WaitGroup
		for i, tn := range tns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h, b := e.sandbox.Webhook(tn, carrier.Event{ID: fmt.Sprintf("race-%d", i), Status: carrier.Delivered, OccurredAt: e.clock.Now().Add(time.Hour)})
				if r := e.c.Do("POST", "/api/v1/logistics/webhooks/sandbox", b, "X-Carrier-Signature: "+h.Get(carrier.SignatureHeader)); r.Status != http.StatusOK {
					t.Errorf("webhook %d: %d %s", i, r.Status, r.Body)
				}
			}()
		}
		wg.Wait()
		if o := e.order(id); o.Field("status") != "delivered" {
			t.Fatalf("order after three racing deliveries: %s", o.Body)
		}
		n := 0
		for _, ty := range e.types("order", id) {
			if ty == "order.delivered" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d order.delivered, want 1", n)
		}
	})
}
