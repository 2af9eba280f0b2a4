package sandboxcarrier

import (
	"slices"
	"sync"
	"testing"
	"time"

	"mercato/internal/logistics/carrier"
	"mercato/internal/logistics/carriertest"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestConformance runs the carrier suite on the sandbox.
func TestConformance(t *testing.T) {
	carriertest.Run(t, func(t *testing.T) carriertest.Harness {
		clk := &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
		s := New(Config{Step: 10 * time.Second, Now: clk.Now, Secret: []byte("sandbox secret")})
		return carriertest.Harness{Carrier: s, Advance: clk.Advance, Step: 10 * time.Second, MaxSteps: 9, Now: clk.Now, Webhook: s.Webhook}
	})
}

// TestRoutes: the route is a function of the tracking number; every route
// starts with label_created and ends delivered; across tracking numbers the
// delayed and second-attempt routes both occur.
func TestRoutes(t *testing.T) {
	var delayed, attempted int
	for i := range 64 {
		tn := "SBX" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		r := Route(tn)
		if !slices.Equal(r, Route(tn)) {
			t.Fatalf("%s: route not deterministic", tn)
		}
		if r[0] != carrier.LabelCreated || r[len(r)-1] != carrier.Delivered {
			t.Fatalf("%s: route %v", tn, r)
		}
		if slices.Contains(r, carrier.Delayed) {
			delayed++
		}
		if slices.Contains(r, carrier.DeliveryAttempted) {
			attempted++
		}
	}
	if delayed == 0 || attempted == 0 || delayed == 64 || attempted == 64 {
		t.Fatalf("of 64 routes %d delayed and %d with a second attempt: want some of each", delayed, attempted)
	}
}

// TestNoSecretRefusesWebhooks: without a secret nothing verifies, not even
// a body signed with the empty key.
func TestNoSecretRefusesWebhooks(t *testing.T) {
	s := New(Config{Now: time.Now})
	h, b := s.Webhook("SBX1", carrier.Event{ID: "e1", Status: carrier.Delivered, OccurredAt: time.Unix(1, 0)})
	if _, _, err := s.ParseWebhook(h, b); err != carrier.ErrSignature {
		t.Fatalf("no secret: %v, want ErrSignature", err)
	}
}
