// Package event is mercato's event catalogue: the envelope every domain event
// travels in (API.md "Event stream"), its type names, and time-sortable ids.
//
// An event is created by the module whose state changed, appended to the
// outbox in the same transaction as the change (package outbox), relayed to
// the bus, and applied by consumers at most once each (package inbox).
package event

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Envelope is one domain event as stored, published and delivered.
// Sequence increases by one per aggregate, starting at 1, so that receivers
// can order and de-duplicate.
type Envelope struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	AggregateType string          `json:"aggregate_type"`
	AggregateID   string          `json:"aggregate_id"`
	Sequence      int64           `json:"sequence"`
	OccurredAt    time.Time       `json:"occurred_at"`
	Data          json.RawMessage `json:"data"`
}

// The event types of API.md: noun.verb, past tense. The noun is the
// aggregate type.
const (
	OrderPlaced        = "order.placed"
	OrderPaid          = "order.paid"
	OrderCancelled     = "order.cancelled"
	OrderExpired       = "order.expired"
	OrderShipped       = "order.shipped"
	OrderDelivered     = "order.delivered"
	OrderRefunded      = "order.refunded"
	InventoryReserved  = "inventory.reserved"
	InventoryCommitted = "inventory.committed"
	InventoryReleased  = "inventory.released"
	InventoryLowStock  = "inventory.low_stock"
	PaymentCaptured    = "payment.captured"
	PaymentFailed      = "payment.failed"
	PaymentRefunded    = "payment.refunded"
	ShipmentCreated    = "shipment.created"
	ShipmentUpdated    = "shipment.updated"
	ProductCreated     = "product.created"
	ProductUpdated     = "product.updated"
	CustomerRegistered = "customer.registered"
	CustomerErased     = "customer.erased"
)

// NewID returns a new event id: a UUIDv7, so ids sort by creation time.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// New builds an envelope for an event of type typ about the aggregate
// (aggType, aggID) at time at, with data marshalled to JSON. Sequence is left
// zero: the outbox assigns it when the event is appended.
func New(typ, aggType, aggID string, at time.Time, data any) (Envelope, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("event: marshal %s: %w", typ, err)
	}
	if data == nil {
		b = []byte("{}")
	}
	return Envelope{ID: NewID(), Type: typ, AggregateType: aggType, AggregateID: aggID,
		OccurredAt: at.UTC(), Data: b}, nil
}

// Subject is the bus subject of e: mercato.<aggregate_type>.<event>, where
// <event> is the part of the type after the noun (order.placed →
// mercato.order.placed).
func (e Envelope) Subject() string { return Subject(e.AggregateType, e.Type) }

// Subject returns the bus subject for an event type of an aggregate type.
func Subject(aggType, typ string) string {
	_, verb, ok := strings.Cut(typ, ".")
	if !ok {
		verb = typ
	}
	return "mercato." + aggType + "." + verb
}

// SubjectPrefix is the prefix of every event subject.
const SubjectPrefix = "mercato."
