package natsbus

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/errs"
)

// Publish stores msgs on the stream in order and returns once JetStream has
// acknowledged every one of them. Each message carries its ID as the
// JetStream message id, so the server drops a repeat seen within the
// duplicate window (and acknowledges it as stored).
//
// Messages are published asynchronously and their acks awaited together.
// When the connection has too many publishes outstanding (maxAsyncPending),
// Publish blocks; if that lasts (stallWait), it waits for its own oldest ack
// before trying again (back-pressure) instead of failing.
// On error any prefix of msgs may have been stored: callers re-publish the
// whole batch, and de-duplication absorbs what was stored. Publish is safe
// for concurrent use; messages of concurrent calls interleave.
func (b *Bus) Publish(ctx context.Context, msgs []bus.Message) error {
	const op = "natsbus.Publish"
	for i := range msgs {
		if msgs[i].ID == "" || msgs[i].Subject == "" {
			return errs.E(op, errs.Invalid, fmt.Sprintf("message %d has no ID or subject", i))
		}
	}
	stall := jetstream.WithStallWait(cmp.Or(b.cfg.stallWait, stallWait))
	futs := make([]jetstream.PubAckFuture, 0, len(msgs))
	done := 0 // futs[:done] are acknowledged
	for i := range msgs {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return errs.E(op, errs.Unavailable, err)
			}
		}
		m := &nats.Msg{Subject: b.wire(msgs[i].Subject), Data: msgs[i].Data}
		for {
			f, err := b.js.PublishMsgAsync(m, jetstream.WithMsgID(msgs[i].ID), stall)
			if err == nil {
				futs = append(futs, f)
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				return errs.E(op, errs.Unavailable, err)
			}
			// Back-pressure: the connection's outstanding publishes are
			// at the cap. Wait for our own oldest ack, if we have one,
			// else (the cap is held by other callers) just try again.
			if done < len(futs) {
				if err := awaitAck(ctx, futs[done]); err != nil {
					return errs.E(op, errs.Unavailable, err)
				}
				done++
			} else if err := ctx.Err(); err != nil {
				return errs.E(op, errs.Unavailable, err)
			}
			m.Header = nil // WithMsgID sets it again
		}
	}
	for ; done < len(futs); done++ {
		if err := awaitAck(ctx, futs[done]); err != nil {
			return errs.E(op, errs.Unavailable, err)
		}
	}
	return nil
}

// awaitAck waits for one publish acknowledgement. A duplicate is a success.
func awaitAck(ctx context.Context, f jetstream.PubAckFuture) error {
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
