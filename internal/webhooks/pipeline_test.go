package webhooks

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

// Events published on an embedded JetStream reach the webhooks consumer
// through the inbox runner ("*": every aggregate); each becomes one delivery
// per selecting endpoint, a redelivered event no second one, and the
// dispatcher sends each once.
func TestEventsThroughTheInbox(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		rc := newReceiver(t, e.clock.Now)
		orders := e.register(rc.URL(), []string{"order.*"}, false)
		products := e.register(rc.URL(), []string{"product.created"}, false)
		b, err := natsbus.Open(ctx, natsbus.Config{DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		applied := make(chan string, 16)
		c := e.svc.Consumer()
		handle := c.Handle
		c.Handle = func(ctx context.Context, tx *sqldb.Tx, ev event.Envelope) error {
			if err := handle(ctx, tx, ev); err != nil {
				return err
			}
			tx.AfterCommit(func() { applied <- ev.ID })
			return nil
		}
		runner := inbox.NewRunner(e.db, b, inbox.RunnerConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, c)
		runCtx, stop := context.WithCancel(ctx)
		stopped := make(chan struct{})
		go func() { defer close(stopped); runner.Run(runCtx) }()
		t.Cleanup(func() { stop(); <-stopped })

		mk := func(typ, id string, seq int64) event.Envelope {
			return event.Envelope{ID: event.NewID(), Type: typ, SchemaVersion: 1, AggregateType: event.Noun(typ),
				AggregateID: id, Sequence: seq, OccurredAt: e.clock.Now(), Data: json.RawMessage(`{}`)}
		}
		evs := []event.Envelope{mk("order.placed", "o1", 1), mk("order.paid", "o1", 2), mk("product.created", "p1", 1)}
		var msgs []bus.Message
		for _, ev := range append(evs, evs[0]) { // the last one redelivered under another message id
			raw, _ := json.Marshal(ev)
			msgs = append(msgs, bus.Message{ID: ev.ID + "-" + string(rune('a'+len(msgs))), Subject: ev.Subject(), Data: raw})
		}
		if err := b.Publish(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for timeout := time.After(30 * time.Second); len(got) < len(evs); {
			select {
			case id := <-applied:
				got[id] = true
			case <-timeout:
				t.Fatalf("applied %d of %d events", len(got), len(evs))
			}
		}
		e.flush()
		perEndpoint := map[string][]string{}
		rows, err := e.db.Reader().Query(`SELECT endpoint_id, event_type FROM webhooks_deliveries WHERE status = 'delivered' ORDER BY sequence, event_type`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var ep, typ string
			rows.Scan(&ep, &typ)
			perEndpoint[ep] = append(perEndpoint[ep], typ)
		}
		rows.Close()
		if len(perEndpoint[orders.ID]) != 2 || len(perEndpoint[products.ID]) != 1 || len(rc.requests()) != 3 {
			t.Fatalf("delivered %v, %d requests; want 2 order events, 1 product event, 3 requests", perEndpoint, len(rc.requests()))
		}
	})
}
