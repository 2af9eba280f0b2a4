package webhooks

import (
	"context"
	"sync"
	"testing"

	"mercato/internal/platform/module"
)

// Two replicas' dispatchers stepping at once never deliver one delivery
// twice: the claim is a conditional write (status and due time), and only
// the replica whose UPDATE affected the row sends it.
func TestClaimRaceDeliversOnce(t *testing.T) {
	forEachEngine(t, Config{MaxInFlight: 64}, func(t *testing.T, e *env) {
		rc := newReceiver(t, e.clock.Now)
		e.register(rc.URL(), []string{"order.*"}, false)
		var ids []string
		for i := range 60 {
			ids = append(ids, e.emit("order.placed", "o"+string(rune('A'+i)))[0].ID)
		}
		// A second replica: its own Service (and dispatcher) on the same database.
		other := New(module.Platform{DB: e.db, Write: e.db, Idem: e.svc.idem, Logger: e.svc.log}, e.svc.cfg)
		var wg sync.WaitGroup
		for _, d := range []*Dispatcher{e.svc.Dispatcher(), other.Dispatcher(), e.svc.Dispatcher(), other.Dispatcher()} {
			wg.Go(func() {
				if err := d.Flush(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		seen := map[string]int{}
		for _, g := range rc.requests() {
			seen[g.id]++
		}
		for _, id := range ids {
			if seen[id] != 1 {
				t.Errorf("event %s delivered %d times, want once", id, seen[id])
			}
		}
	})
}
