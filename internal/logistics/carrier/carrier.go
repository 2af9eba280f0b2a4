// Package carrier is the port between the logistics module and the
// carriers that move its shipments: a Carrier issues tracking numbers,
// reports a shipment's tracking events in the normalised vocabulary below,
// and reads its own signed webhooks. Every implementation passes the one
// conformance suite, package carriertest.
package carrier

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Status is a normalised tracking status: every carrier's vocabulary maps
// onto these.
type Status string

// The normalised tracking statuses, in the order a shipment usually meets
// them; delayed and delivery_attempted may come between the others, and
// delivered is final.
const (
	LabelCreated      Status = "label_created"
	PickedUp          Status = "picked_up"
	InTransit         Status = "in_transit"
	OutForDelivery    Status = "out_for_delivery"
	DeliveryAttempted Status = "delivery_attempted"
	Delayed           Status = "delayed"
	Delivered         Status = "delivered"
)

// Statuses lists every normalised status.
var Statuses = []Status{LabelCreated, PickedUp, InTransit, OutForDelivery, DeliveryAttempted, Delayed, Delivered}

// Valid reports whether s is a normalised status.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// Limits of the strings a carrier may report (longer ones are cut by the
// logistics module, never refused).
const (
	MaxEventID     = 200
	MaxLocation    = 200
	MaxDescription = 500
)

// Event is one tracking event of a shipment, as the carrier reports it.
type Event struct {
	// ID is the carrier's id of the event, stable across reports and
	// unique per tracking number: the logistics module keeps an event once.
	ID          string
	Status      Status
	OccurredAt  time.Time
	Location    string // optional
	Description string // optional
}

// Label is what a carrier answers for a new shipment.
type Label struct {
	TrackingNumber string
}

// LabelRequest describes a new shipment to the carrier.
type LabelRequest struct {
	ShipmentID string
	OrderID    string
	Units      int // how many units the parcel holds
}

// Shipment is what a carrier is asked to track: its tracking number and
// when its label was created.
type Shipment struct {
	TrackingNumber string
	LabelCreatedAt time.Time
}

// Update is one event a webhook delivered, about one tracking number.
type Update struct {
	TrackingNumber string
	Event          Event
}

// Carrier moves parcels. Implementations are safe for concurrent use.
type Carrier interface {
	// Name is the carrier's code in the API ("sandbox").
	Name() string
	// Label registers a shipment and returns its tracking number, unique
	// per carrier. It may call the carrier over the network: the logistics
	// module calls it before its unit of the write path.
	Label(ctx context.Context, req LabelRequest) (Label, error)
	// Track returns the shipment's events so far, oldest first. Called
	// again it returns the same events (same IDs) and perhaps more after
	// them; nothing follows delivered.
	Track(ctx context.Context, s Shipment) ([]Event, error)
	// ParseWebhook checks that body was signed by the carrier (header) and
	// returns the updates it carries and the delivery's id (the same on a
	// redelivery). A signature that does not verify is ErrSignature.
	ParseWebhook(header http.Header, body []byte) (id string, updates []Update, err error)
}

// ErrSignature is a webhook whose signature does not verify.
var ErrSignature = sigError{}

type sigError struct{}

func (sigError) Error() string { return "carrier: the webhook's signature does not verify" }

// SignatureHeader carries the HMAC-SHA256 of a webhook's body for carriers
// that sign the simple way: "sha256=" and the lower-case hex of the MAC.
const SignatureHeader = "X-Carrier-Signature"

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is Sign(secret, body), in constant time. An
// empty secret verifies nothing.
func Verify(secret, body []byte, sig string) bool {
	if len(secret) == 0 {
		return false
	}
	hexMAC, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexMAC)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}
