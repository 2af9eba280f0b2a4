package inventory

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/bus/natsbus"
	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/sqldb"
)

// applied is what a wrapped handler reports after its batch committed.
type applied struct {
	typ, order string
	seq        int64
}

// TestOrderEventsThroughTheInbox: order events published on an embedded
// JetStream reach the consumer through the inbox runner; a redelivered
// event (another message id, the same aggregate sequence) has no second
// effect.
func TestOrderEventsThroughTheInbox(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.setStock("PIPE", "", 10)
		for _, ref := range []string{"pipe-paid", "pipe-cancelled"} {
			if _, err := e.svc.Reserve(ctx, ref, "", []Line{{SKU: "PIPE", Quantity: 3}}, 0); err != nil {
				t.Fatal(err)
			}
		}
		b, err := natsbus.Open(ctx, natsbus.Config{DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		done := make(chan applied, 16)
		c := e.svc.OrderConsumer()
		handle := c.Handle
		c.Handle = func(ctx context.Context, tx *sqldb.Tx, ev event.Envelope) error {
			if err := handle(ctx, tx, ev); err != nil {
				return err
			}
			tx.AfterCommit(func() { done <- applied{ev.Type, ev.AggregateID, ev.Sequence} })
			return nil
		}
		runner := inbox.NewRunner(e.db, b, inbox.RunnerConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, c)
		runCtx, stop := context.WithCancel(ctx)
		stopped := make(chan struct{})
		go func() { defer close(stopped); runner.Run(runCtx) }()
		t.Cleanup(func() { stop(); <-stopped })

		publish := func(evs ...event.Envelope) {
			t.Helper()
			msgs := make([]bus.Message, len(evs))
			for i, ev := range evs {
				raw, err := json.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				msgs[i] = bus.Message{ID: ev.ID, Subject: ev.Subject(), Data: raw}
			}
			if err := b.Publish(ctx, msgs); err != nil {
				t.Fatal(err)
			}
		}
		order := func(typ, id string, seq int64) event.Envelope {
			return event.Envelope{ID: event.NewID(), Type: typ, SchemaVersion: 1, AggregateType: "order", AggregateID: id,
				Sequence: seq, OccurredAt: e.clock.Now(), Data: json.RawMessage(`{"order_id":"` + id + `","total":{"amount":1,"currency":"EUR"}}`)}
		}
		wait := func(want ...applied) {
			t.Helper()
			got := map[applied]bool{}
			timeout := time.After(30 * time.Second)
			for len(got) < len(want) {
				select {
				case a := <-done:
					got[a] = true
				case <-timeout:
					t.Fatalf("applied %v, want %v", got, want)
				}
			}
			for _, w := range want {
				if !got[w] {
					t.Fatalf("applied %v, want %v", got, want)
				}
			}
		}
		publish(order("order.paid", "pipe-paid", 1), order("order.cancelled", "pipe-cancelled", 1))
		wait(applied{"order.paid", "pipe-paid", 1}, applied{"order.cancelled", "pipe-cancelled", 1})
		// A redelivery of the payment, then the order's next event (which
		// finds it committed: no effect), in stream order.
		publish(order("order.paid", "pipe-paid", 1), order("order.expired", "pipe-paid", 2))
		wait(applied{"order.expired", "pipe-paid", 2})
		if lv := e.level("PIPE"); lv.OnHand != 7 || lv.Reserved != 0 {
			t.Fatalf("level %+v, want on_hand 7, nothing reserved", lv)
		}
		if n := e.count("inventory_ledger", "reason = 'commit' AND reference = 'pipe-paid'"); n != 1 {
			t.Fatalf("%d commit ledger rows, want 1", n)
		}
		if n := e.count("outbox", "type IN ('inventory.committed', 'inventory.released')"); n != 2 {
			t.Fatalf("%d settlement events, want 2", n)
		}
		select {
		case a := <-done:
			t.Fatalf("the redelivered payment was applied again: %v", a)
		default:
		}
	})
}
