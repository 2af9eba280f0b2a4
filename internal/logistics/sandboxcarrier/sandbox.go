// Package sandboxcarrier is the built-in test carrier "sandbox": it issues
// tracking numbers and moves each shipment one stage further every Step of
// an injected clock, along a route that depends only on the tracking
// number (some parcels are delayed, some need a second delivery attempt),
// so that a shop can be exercised end to end without a real carrier. It
// also reads webhooks signed with its secret (carrier.Sign), which is how
// tests and demos push an event in.
package sandboxcarrier

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"mercato/internal/logistics/carrier"
)

// Name is the sandbox's carrier code.
const Name = "sandbox"

// DefaultStep is how long the sandbox takes per stage unless told.
const DefaultStep = 5 * time.Second

// Config tunes the sandbox. Now is required (the database clock in a
// server, a fake clock in tests).
type Config struct {
	Step   time.Duration // per stage; default DefaultStep
	Now    func() time.Time
	Secret []byte // the webhook secret; empty: every webhook is refused
}

// Sandbox is the sandbox carrier. Safe for concurrent use.
type Sandbox struct{ cfg Config }

// New returns the sandbox carrier.
func New(cfg Config) *Sandbox {
	if cfg.Step <= 0 {
		cfg.Step = DefaultStep
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sandbox{cfg: cfg}
}

var _ carrier.Carrier = (*Sandbox)(nil)

// Name implements carrier.Carrier.
func (*Sandbox) Name() string { return Name }

// Label implements carrier.Carrier: the tracking number is derived from
// the shipment id ("SBX" and 16 hex digits), so a retried label is the
// same one.
func (*Sandbox) Label(_ context.Context, req carrier.LabelRequest) (carrier.Label, error) {
	if req.ShipmentID == "" {
		return carrier.Label{}, errors.New("sandboxcarrier: a label needs a shipment id")
	}
	h := sha256.Sum256([]byte("sandbox-label:" + req.ShipmentID))
	return carrier.Label{TrackingNumber: "SBX" + strings.ToUpper(hex.EncodeToString(h[:8]))}, nil
}

// stage is one step of a route.
type stage struct {
	status      carrier.Status
	location    string
	description string
}

var hubs = []string{"Springfield hub", "Riverton depot", "Lakeside sorting centre", "Hillview hub"}

// Route is the stages a parcel with trackingNumber goes through, a
// function of the tracking number alone: label, pick-up, transit, then a
// delay for one parcel in four, out for delivery, a failed attempt and a
// second round for one in four, delivered.
func Route(trackingNumber string) []carrier.Status {
	out := []carrier.Status{}
	for _, s := range route(trackingNumber) {
		out = append(out, s.status)
	}
	return out
}

func route(tn string) []stage {
	h := sha256.Sum256([]byte("sandbox-route:" + tn))
	hub := hubs[int(h[1])%len(hubs)]
	r := []stage{
		{carrier.LabelCreated, "", "Shipping label created"},
		{carrier.PickedUp, hub, "Picked up by the sandbox carrier"},
		{carrier.InTransit, hub, "In transit"},
	}
	if h[0]%4 == 0 {
		r = append(r, stage{carrier.Delayed, hub, "Delayed: weather"})
	}
	r = append(r, stage{carrier.OutForDelivery, "Local depot", "Out for delivery"})
	if h[0]%4 == 1 {
		r = append(r, stage{carrier.DeliveryAttempted, "Local depot", "Nobody home; we will try again"},
			stage{carrier.OutForDelivery, "Local depot", "Out for delivery again"})
	}
	return append(r, stage{carrier.Delivered, "", "Delivered"})
}

// Track implements carrier.Carrier: stage i happened at the label's time
// plus i steps, and is reported once the clock has reached it.
func (s *Sandbox) Track(_ context.Context, sh carrier.Shipment) ([]carrier.Event, error) {
	now := s.cfg.Now()
	out := []carrier.Event{}
	for i, st := range route(sh.TrackingNumber) {
		at := sh.LabelCreatedAt.Add(time.Duration(i) * s.cfg.Step)
		if at.After(now) {
			break
		}
		out = append(out, carrier.Event{ID: sh.TrackingNumber + "-" + strconv.Itoa(i), Status: st.status, OccurredAt: at.UTC(),
			Location: st.location, Description: st.description})
	}
	return out, nil
}

// WebhookBody is the JSON body of a sandbox webhook: one event.
type WebhookBody struct {
	ID             string    `json:"id"`
	TrackingNumber string    `json:"tracking_number"`
	Status         string    `json:"status"`
	OccurredAt     time.Time `json:"occurred_at"`
	Location       string    `json:"location,omitempty"`
	Description    string    `json:"description,omitempty"`
}

// ParseWebhook implements carrier.Carrier: the body is a WebhookBody
// signed in carrier.SignatureHeader with the sandbox's secret.
func (s *Sandbox) ParseWebhook(header http.Header, body []byte) (string, []carrier.Update, error) {
	if !carrier.Verify(s.cfg.Secret, body, header.Get(carrier.SignatureHeader)) {
		return "", nil, carrier.ErrSignature
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var b WebhookBody
	if err := dec.Decode(&b); err != nil {
		return "", nil, fmt.Errorf("sandboxcarrier: webhook body: %w", err)
	}
	st := carrier.Status(b.Status)
	switch {
	case b.ID == "" || len(b.ID) > carrier.MaxEventID:
		return "", nil, errors.New("sandboxcarrier: webhook id must be 1 to 200 bytes")
	case b.TrackingNumber == "":
		return "", nil, errors.New("sandboxcarrier: webhook without a tracking number")
	case !st.Valid():
		return "", nil, fmt.Errorf("sandboxcarrier: unknown status %q", b.Status)
	case b.OccurredAt.IsZero():
		return "", nil, errors.New("sandboxcarrier: webhook without occurred_at")
	}
	return b.ID, []carrier.Update{{TrackingNumber: b.TrackingNumber, Event: carrier.Event{ID: b.ID, Status: st,
		OccurredAt: b.OccurredAt.UTC(), Location: b.Location, Description: b.Description}}}, nil
}

// Webhook returns a signed webhook delivery of event e about
// trackingNumber, as the sandbox would send it: what tests and demos post
// to the logistics webhook endpoint.
func (s *Sandbox) Webhook(trackingNumber string, e carrier.Event) (http.Header, []byte) {
	b, _ := json.Marshal(WebhookBody{ID: e.ID, TrackingNumber: trackingNumber, Status: string(e.Status),
		OccurredAt: e.OccurredAt.UTC(), Location: e.Location, Description: e.Description})
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(carrier.SignatureHeader, carrier.Sign(s.cfg.Secret, b))
	return h, b
}
