// Package bus is the contract between the outbox relay, the consumers and the
// message transport (NATS JetStream by default; a Kafka adapter can sit
// beside it). The outbox is the record; the bus is transport.
//
// Implementations live in sub-packages (natsbus) and must pass the shared
// conformance suite in bustest.
package bus

import (
	"context"
	"time"
)

// Message is one event on the bus. ID is the event id: a publisher must drop
// a message whose ID it has already stored within its de-duplication window.
type Message struct {
	ID      string
	Subject string
	Data    []byte
}

// Publisher publishes messages durably.
type Publisher interface {
	// Publish stores msgs on the bus, in order, and returns once every one of
	// them is acknowledged by the bus (or an error, in which case any subset
	// may have been stored). Duplicates by ID are dropped and count as
	// stored. Publish must be safe for concurrent use.
	Publish(ctx context.Context, msgs []Message) error
}

// Delivery is a message handed to a subscriber. At most one of Ack or Nak
// may be called for it (a second call returns an error); a delivery left
// unsettled is redelivered after the consumer's AckWait. A message may be
// delivered more than once (after a Nak, an AckWait expiry, a lost ack or a
// re-publish), so handlers must be idempotent (the inbox).
type Delivery interface {
	Message() Message
	// Attempt is the delivery count of this message to this consumer,
	// starting at 1.
	Attempt() int
	// Ack settles the delivery: it will not be delivered again.
	Ack() error
	// Nak asks for redelivery after delay (at once when delay <= 0).
	Nak(delay time.Duration) error
}

// ConsumerConfig describes a durable consumer.
type ConsumerConfig struct {
	// Durable names the consumer; its position survives restarts and is
	// shared by every process that subscribes with the same name.
	Durable string
	// Subjects filters what it receives (NATS wildcards: mercato.order.>).
	Subjects []string
	// AckWait is how long a delivery may stay unsettled before redelivery.
	AckWait time.Duration
	// MaxAckPending caps unsettled deliveries (back-pressure).
	MaxAckPending int
}

// Subscriber hands durable consumers their messages in batches.
type Subscriber interface {
	// Consume creates the durable consumer cfg.Durable if needed (or
	// updates it to cfg) and delivers batches of 1..batch messages to fn, in
	// stream order within a batch, until ctx ends; it returns ctx's error or
	// a fatal transport error (such as the bus being closed), and rides out
	// transient ones. fn runs on one goroutine at a time per call and
	// receives ctx; a batch being handled when ctx ends is finished first
	// (Consume returns after fn does). Consume calls with the same Durable,
	// in one process or several, share the messages: each goes to one of them
	// at a time. Messages of one subject arrive in publication order unless
	// redelivered.
	Consume(ctx context.Context, cfg ConsumerConfig, batch int, fn func(ctx context.Context, ds []Delivery)) error
	// Pending reports how many messages the durable consumer has not yet
	// settled (waiting plus unacknowledged). A consumer that does not exist
	// yet has 0.
	Pending(ctx context.Context, durable string) (int64, error)
}

// Bus is a Publisher and Subscriber over one connection.
type Bus interface {
	Publisher
	Subscriber
	// Ping reports whether the bus is reachable (readiness).
	Ping(ctx context.Context) error
	// Close releases the connection (and stops an embedded server).
	Close() error
}
