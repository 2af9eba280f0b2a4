package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/errs"
)

// Consume tuning.
const (
	// idleWait is a waiting pull request's expiry. It is short because a
	// request whose client has gone (Consume cancelled) stays registered on
	// the server until it expires, and a message handed to it then waits for
	// AckWait before redelivery: the window is at most idleWait.
	idleWait       = time.Second
	retryMin       = 50 * time.Millisecond // first pause after a transient error
	retryMax       = 5 * time.Second       // longest pause between retries
	defaultAckWait = 30 * time.Second      // AckWait when the config has none
)

// Consume creates (or updates) the durable pull consumer cfg.Durable on the
// stream — explicit acks, unlimited redeliveries, starting from the first
// message; AckWait 0 means 30s, MaxAckPending 0 the server's default (1000)
// — and hands fn batches of up to batch messages until ctx ends.
//
// A batch is what the consumer has available, up to batch, taken in one
// request; when nothing is available Consume waits (a long-poll pull) for the
// next message and then takes what else is ready. Every process or goroutine
// that consumes with the same Durable shares the messages; each message goes
// to one of them at a time.
//
// fn receives ctx and runs on the calling goroutine; when ctx ends while fn
// runs, Consume waits for fn to return, then returns ctx's error. Deliveries
// not settled by fn are redelivered after AckWait; a batch fetched just as
// ctx ends is not handed to fn but nak'ed for prompt redelivery (a delivery
// attempt is counted either way). Consume rides out
// transient transport errors (it retries with backoff and re-creates a
// deleted consumer); it returns an error when the connection is closed.
//
// Several Subjects need a server of version 2.10 or later; an older server
// makes Consume fail rather than deliver unfiltered messages.
func (b *Bus) Consume(ctx context.Context, cfg bus.ConsumerConfig, batch int, fn func(ctx context.Context, ds []bus.Delivery)) error {
	const op = "natsbus.Consume"
	if cfg.Durable == "" || batch < 1 || fn == nil || cfg.AckWait < 0 || cfg.MaxAckPending < 0 {
		return errs.E(op, errs.Invalid, "a consumer needs a durable name, a positive batch and a handler")
	}
	cons, err := b.upsertConsumer(ctx, cfg)
	if err != nil {
		return b.consumeErr(ctx, op, err)
	}
	pause := time.Duration(0)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ds, err := b.fetch(ctx, cons, batch)
		if len(ds) > 0 && ctx.Err() != nil {
			// Fetched as ctx ended: hand them back for another consumer.
			for _, d := range ds {
				_ = d.Nak(0)
			}
			return ctx.Err()
		}
		if len(ds) > 0 {
			pause = 0
			fn(ctx, ds)
			continue
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if b.life.Err() != nil || errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining) {
			return errs.E(op, errs.Unavailable, "the bus is closed", err)
		}
		// Transient: back off, then re-create the consumer (it may have
		// been deleted, or the server restarted without it).
		pause = min(max(2*pause, retryMin), retryMax)
		if err := b.sleep(ctx, pause); err != nil {
			return err
		}
		if c, err := b.upsertConsumer(ctx, cfg); err == nil {
			cons = c
		} else if errors.Is(err, jetstream.ErrConsumerMultipleFilterSubjectsNotSupported) {
			return b.consumeErr(ctx, op, err)
		}
	}
}

// consumeErr wraps err for Consume, passing ctx's own error through.
func (b *Bus) consumeErr(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return ctx.Err()
	}
	if errors.Is(err, jetstream.ErrConsumerMultipleFilterSubjectsNotSupported) {
		return errs.E(op, errs.Invalid, "several filter subjects need NATS server 2.10 or later", err)
	}
	return errs.E(op, errs.Unavailable, err)
}

// upsertConsumer creates or updates the durable pull consumer for cfg.
func (b *Bus) upsertConsumer(ctx context.Context, cfg bus.ConsumerConfig) (jetstream.Consumer, error) {
	jc := jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxDeliver:    -1,
		AckWait:       cfg.AckWait,
		MaxAckPending: cfg.MaxAckPending,
	}
	if jc.AckWait == 0 {
		jc.AckWait = defaultAckWait
	}
	switch len(cfg.Subjects) {
	case 0:
	case 1:
		jc.FilterSubject = b.wire(cfg.Subjects[0])
	default:
		for _, s := range cfg.Subjects {
			jc.FilterSubjects = append(jc.FilterSubjects, b.wire(s))
		}
	}
	return b.stream.CreateOrUpdateConsumer(ctx, jc)
}

// fetch returns the next batch: what is available now, or else the first
// message to arrive plus what is available right after it. It returns no
// deliveries and a nil error when a long poll expires empty.
func (b *Bus) fetch(ctx context.Context, cons jetstream.Consumer, batch int) ([]bus.Delivery, error) {
	ds, err := b.collect(cons.FetchNoWait(batch))
	if len(ds) > 0 || err != nil {
		return ds, err
	}
	wctx, cancel := context.WithTimeout(ctx, idleWait)
	defer cancel()
	defer context.AfterFunc(b.life, cancel)()
	ds, err = b.collect(cons.Fetch(1, jetstream.FetchContext(wctx)))
	if len(ds) == 0 {
		if b.life.Err() != nil {
			return nil, nats.ErrConnectionClosed
		}
		if err == nil || (errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil) {
			return nil, nil
		}
		return nil, err
	}
	if batch > 1 {
		more, _ := b.collect(cons.FetchNoWait(batch - 1))
		ds = append(ds, more...)
	}
	return ds, nil
}

// collect drains one fetch into deliveries.
func (b *Bus) collect(mb jetstream.MessageBatch, err error) ([]bus.Delivery, error) {
	if err != nil {
		return nil, err
	}
	var ds []bus.Delivery
	for m := range mb.Messages() {
		d, err := b.delivery(m)
		if err != nil {
			// Not a JetStream message: it cannot be settled; skip it.
			continue
		}
		ds = append(ds, d)
	}
	if err := mb.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
		return ds, err
	}
	return ds, nil
}

func (b *Bus) delivery(m jetstream.Msg) (*delivery, error) {
	meta, err := m.Metadata()
	if err != nil {
		return nil, err
	}
	return &delivery{
		m: m,
		msg: bus.Message{
			ID:      m.Headers().Get(jetstream.MsgIDHeader),
			Subject: strings.TrimPrefix(m.Subject(), b.cfg.SubjectPrefix),
			Data:    m.Data(),
		},
		attempt: int(meta.NumDelivered),
	}, nil
}

// delivery is a bus.Delivery of one JetStream message. Ack and Nak are sent
// without waiting for the server (they are flushed by Close); settling a
// delivery twice returns an error.
type delivery struct {
	m       jetstream.Msg
	msg     bus.Message
	attempt int
}

func (d *delivery) Message() bus.Message { return d.msg }
func (d *delivery) Attempt() int         { return d.attempt }
func (d *delivery) Ack() error           { return settleErr("ack", d.m.Ack()) }

// Nak asks for redelivery after delay (at once when delay <= 0).
func (d *delivery) Nak(delay time.Duration) error {
	if delay <= 0 {
		return settleErr("nak", d.m.Nak())
	}
	return settleErr("nak", d.m.NakWithDelay(delay))
}

func settleErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return errs.E("natsbus.Delivery", errs.Unavailable, fmt.Errorf("%s: %w", what, err))
}

// Pending reports the durable consumer's messages not yet delivered plus
// those delivered but not yet acknowledged; 0 when it does not exist.
func (b *Bus) Pending(ctx context.Context, durable string) (int64, error) {
	const op = "natsbus.Pending"
	c, err := b.stream.Consumer(ctx, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, errs.E(op, errs.Unavailable, err)
	}
	info := c.CachedInfo() // fetched just now by Consumer
	return int64(info.NumPending) + int64(info.NumAckPending), nil
}

// sleep waits d, or until ctx ends (returning its error) or the bus closes.
func (b *Bus) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.life.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
