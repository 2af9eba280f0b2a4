package logistics

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"mercato/internal/logistics/carrier"
	"mercato/internal/platform/web/webtest"
)

// TestWebhookRedeliveryRace: ten copies of one signed carrier event arrive
// at once; the idempotency primitive keyed by the carrier's event id lets
// one run and answers the others with its answer: every copy gets 200
// {"applied":1}, the timeline gains one entry and one shipment.updated is
// emitted.
func TestWebhookRedeliveryRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.paid(e.alice, "MUG", 1)
		sid, tn := e.ship(id)
		h, body := e.sandbox.Webhook(tn, carrier.Event{ID: "evt-race", Status: carrier.InTransit, OccurredAt: e.clock.Now().Add(time.Minute)})
		out := make([]*webtest.Response, 10)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range out {
			wg.Go(func() {
				<-start
				out[i] = e.c.Do("POST", "/api/v1/logistics/webhooks/sandbox", body, "X-Carrier-Signature: "+h.Get(carrier.SignatureHeader))
			})
		}
		close(start)
		wg.Wait()
		for i, r := range out {
			if r.Status != http.StatusOK || string(r.Body) != `{"applied":1}` {
				t.Fatalf("copy %d: %d %s", i, r.Status, r.Body)
			}
		}
		if got := statuses(t, e.alice, id, 0); !equal(got, []string{"label_created", "in_transit"}) {
			t.Fatalf("timeline %v", got)
		}
		if got := e.types("shipment", sid); !equal(got, []string{"shipment.created", "shipment.updated"}) {
			t.Fatalf("shipment events %v", got)
		}
	})
}
