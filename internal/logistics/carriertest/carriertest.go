// Package carriertest is the conformance suite of carrier.Carrier: every
// implementation runs Run, the sandbox's in its own tests and a real
// carrier's against its test environment.
package carriertest

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"mercato/internal/logistics/carrier"
)

// Harness is one carrier under test with the means to drive it.
type Harness struct {
	Carrier carrier.Carrier
	// Advance moves the carrier's clock on by d.
	Advance func(d time.Duration)
	// Step is a time after which a shipment in progress may have moved on,
	// and MaxSteps how many Steps bring any shipment to delivered.
	Step     time.Duration
	MaxSteps int
	// Now is the carrier's clock (labels are created at Now).
	Now func() time.Time
	// Webhook returns a delivery of e about trackingNumber signed as the
	// carrier signs them.
	Webhook func(trackingNumber string, e carrier.Event) (http.Header, []byte)
}

// Run runs the suite; newHarness returns a fresh carrier for each case.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Run("Labels", func(t *testing.T) { testLabels(t, newHarness(t)) })
	t.Run("Timeline", func(t *testing.T) { testTimeline(t, newHarness(t)) })
	t.Run("Webhook", func(t *testing.T) { testWebhook(t, newHarness(t)) })
}

// testLabels: a label per shipment, tracking numbers non-empty, at most 64
// bytes, and distinct for distinct shipments.
func testLabels(t *testing.T, h Harness) {
	ctx := context.Background()
	if h.Carrier.Name() == "" {
		t.Fatal("a carrier needs a name")
	}
	seen := map[string]bool{}
	for _, id := range []string{"shp-1", "shp-2", "shp-3", "shp-4"} {
		l, err := h.Carrier.Label(ctx, carrier.LabelRequest{ShipmentID: id, OrderID: "ord-1", Units: 1})
		if err != nil {
			t.Fatalf("label %s: %v", id, err)
		}
		if l.TrackingNumber == "" || len(l.TrackingNumber) > 64 {
			t.Fatalf("tracking number %q: want 1 to 64 bytes", l.TrackingNumber)
		}
		if seen[l.TrackingNumber] {
			t.Fatalf("tracking number %q issued twice", l.TrackingNumber)
		}
		seen[l.TrackingNumber] = true
	}
}

// testTimeline: as the clock advances, each report extends the last one
// (same events, same order, more after them), in the normalised
// vocabulary, in time order, ids unique, repeated reports equal, nothing
// after delivered, and delivered within MaxSteps.
func testTimeline(t *testing.T, h Harness) {
	ctx := context.Background()
	for _, id := range []string{"shp-a", "shp-b", "shp-c", "shp-d", "shp-e", "shp-f"} {
		l, err := h.Carrier.Label(ctx, carrier.LabelRequest{ShipmentID: id, OrderID: "ord-1", Units: 2})
		if err != nil {
			t.Fatal(err)
		}
		sh := carrier.Shipment{TrackingNumber: l.TrackingNumber, LabelCreatedAt: h.Now()}
		var last []carrier.Event
		delivered := false
		for step := 0; step <= h.MaxSteps && !delivered; step++ {
			evs, err := h.Carrier.Track(ctx, sh)
			if err != nil {
				t.Fatalf("%s: track: %v", id, err)
			}
			again, err := h.Carrier.Track(ctx, sh)
			if err != nil || !slices.EqualFunc(evs, again, sameEvent) {
				t.Fatalf("%s: two reports at one time differ: %v / %v (%v)", id, evs, again, err)
			}
			if len(evs) < len(last) || !slices.EqualFunc(evs[:len(last)], last, sameEvent) {
				t.Fatalf("%s: report %v does not extend %v", id, evs, last)
			}
			ids := map[string]bool{}
			for i, e := range evs {
				switch {
				case !e.Status.Valid():
					t.Fatalf("%s: status %q is not normalised", id, e.Status)
				case e.ID == "" || ids[e.ID]:
					t.Fatalf("%s: event id %q empty or repeated", id, e.ID)
				case i > 0 && e.OccurredAt.Before(evs[i-1].OccurredAt):
					t.Fatalf("%s: events out of time order: %v", id, evs)
				case delivered:
					t.Fatalf("%s: %s after delivered", id, e.Status)
				case len(e.Location) > carrier.MaxLocation || len(e.Description) > carrier.MaxDescription:
					t.Fatalf("%s: over-long location or description", id)
				}
				ids[e.ID] = true
				delivered = e.Status == carrier.Delivered
			}
			last = evs
			if !delivered {
				h.Advance(h.Step)
			}
		}
		if !delivered {
			t.Fatalf("%s: not delivered after %d steps: %v", id, h.MaxSteps, last)
		}
		h.Advance(3 * h.Step)
		if evs, _ := h.Carrier.Track(ctx, sh); !slices.EqualFunc(evs, last, sameEvent) {
			t.Fatalf("%s: the timeline moved after delivered: %v", id, evs)
		}
	}
}

// testWebhook: a signed delivery reads back as sent, the same id when it
// comes again; a changed body, a missing or malformed signature is
// ErrSignature.
func testWebhook(t *testing.T, h Harness) {
	at := h.Now().Add(time.Minute).UTC().Truncate(time.Second)
	e := carrier.Event{ID: "evt-42", Status: carrier.OutForDelivery, OccurredAt: at, Location: "Depot", Description: "Out for delivery"}
	hdr, body := h.Webhook("TRK-1", e)
	for range 2 {
		id, ups, err := h.Carrier.ParseWebhook(hdr, body)
		if err != nil {
			t.Fatalf("signed webhook: %v", err)
		}
		if id != "evt-42" || len(ups) != 1 || ups[0].TrackingNumber != "TRK-1" || !sameEvent(ups[0].Event, e) {
			t.Fatalf("webhook read back as %q %+v, want %+v", id, ups, e)
		}
	}
	tampered := slices.Clone(body)
	tampered[len(tampered)/2] ^= 1
	noSig := hdr.Clone()
	noSig.Del(carrier.SignatureHeader)
	badSig := hdr.Clone()
	badSig.Set(carrier.SignatureHeader, "sha256=00")
	for name, c := range map[string]struct {
		h http.Header
		b []byte
	}{"tampered body": {hdr, tampered}, "no signature": {noSig, body}, "bad signature": {badSig, body}} {
		if _, _, err := h.Carrier.ParseWebhook(c.h, c.b); !errors.Is(err, carrier.ErrSignature) {
			t.Errorf("%s: %v, want ErrSignature", name, err)
		}
	}
}

func sameEvent(a, b carrier.Event) bool {
	return a.ID == b.ID && a.Status == b.Status && a.OccurredAt.Equal(b.OccurredAt) && a.Location == b.Location && a.Description == b.Description
}
