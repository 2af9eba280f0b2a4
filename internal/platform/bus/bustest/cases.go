package bustest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mercato/internal/platform/bus"
)

func cases(f Features) []testCase {
	return []testCase{
		{"PingAndMissingConsumer", testPing},
		{"PublishConsumeExactlyOnce", testExactlyOnce},
		{"DuplicateIDsDropped", testDuplicates},
		{"OrderWithinSubject", testOrder},
		{"NakDelaysRedelivery", testNakDelay},
		{"UnackedRedeliveredAfterAckWait", testAckWait},
		{"SharedDurable", testShared},
		{"FilterSubjects", func(t *testing.T, open func(t *testing.T) bus.Bus) { testFilter(t, open, f) }},
		{"PendingFallsWithAcks", testPending},
		{"PositionSurvivesReopen", testReopen},
		{"ConsumeReturnsOnCancel", testCancel},
	}
}

const subj = "mercato.bustest.event"

func testPing(t *testing.T, open func(t *testing.T) bus.Bus) {
	ctx := testContext(t)
	b := open(t)
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	n, err := b.Pending(ctx, "never-created")
	if err != nil || n != 0 {
		t.Fatalf("Pending of a missing consumer = %d, %v; want 0, nil", n, err)
	}
	if err := b.Publish(ctx, nil); err != nil {
		t.Fatalf("Publish(nil): %v", err)
	}
}

// testExactlyOnce publishes before and while a consumer runs and checks that
// each message arrives once, intact, at attempt 1, in batches of at most
// the batch size.
func testExactlyOnce(t *testing.T, open func(t *testing.T) bus.Bus) {
	ctx := testContext(t)
	b := open(t)
	ms := messages("eo", 5000, "mercato.bustest.a", "mercato.bustest.b.c")
	const batch = 200
	publish(ctx, t, b, ms[:2500], 500)
	col := newCollector()
	ack := col.ackAll(t)
	c := start(ctx, t, b, bus.ConsumerConfig{Durable: "eo", AckWait: 30 * time.Second}, batch,
		func(ctx context.Context, ds []bus.Delivery) {
			if len(ds) == 0 || len(ds) > batch {
				t.Errorf("batch of %d deliveries, want 1..%d", len(ds), batch)
			}
			for _, d := range ds {
				if d.Attempt() != 1 {
					t.Errorf("%s: attempt %d, want 1", d.Message().ID, d.Attempt())
				}
			}
			ack(ctx, ds)
		})
	publish(ctx, t, b, ms[2500:], 500)
	col.wait(ctx, t, len(ms))
	waitPending(ctx, t, b, "eo", 0)
	c.stop(t)

	want := map[string]bus.Message{}
	for _, m := range ms {
		want[m.ID] = m
	}
	distinct, total := col.counts()
	if distinct != len(ms) || total != len(ms) {
		t.Errorf("%d deliveries of %d messages, want %d of %d (duplicates: %v)",
			total, distinct, len(ms), len(ms), col.duplicates())
	}
	for _, m := range col.order {
		w, ok := want[m.ID]
		if !ok || w.Subject != m.Subject || !bytes.Equal(w.Data, m.Data) {
			t.Fatalf("delivered %+v, published %+v", m, w)
		}
	}
}

// testDuplicates republishes IDs, across calls and within one call.
func testDuplicates(t *testing.T, open func(t *testing.T) bus.Bus) {
	ctx := testContext(t)
	b := open(t)
	ms := messages("dup", 2000, subj)
	publish(ctx, t, b, ms[:1500], 500)
	publish(ctx, t, b, ms[500:], 500) // 1000 repeats, 500 new
	if err := b.Publish(ctx, []bus.Message{ms[0], ms[0], ms[1999], ms[7]}); err != nil {
		t.Fatalf("Publish of repeats: %v", err)
	}
	col := newCollector()
	c := start(ctx, t, b, bus.ConsumerConfig{Durable: "dup"}, 250, col.ackAll(t))
	col.wait(ctx, t, len(ms))
	waitPending(ctx, t, b, "dup", 0)
	c.stop(t)
	if distinct, total := col.counts(); total != len(ms) {
		t.Errorf("%d deliveries of %d distinct messages, want %d (duplicates: %v)",
			total, distinct, len(ms), col.duplicates())
	}
}

// testOrder has three publishers, one per subject, and checks that each
// subject's messages arrive in publication order.
func testOrder(t *testing.T, open func(t *testing.T) bus.Bus) {
	ctx := testContext(t)
	b := open(t)
	subjects := []string{"mercato.bustest.x", "mercato.bustest.y", "mercato.bustest.z"}
	const per = 1000
	col := newCollector()
	c := start(ctx, t, b, bus.ConsumerConfig{Durable: "order"}, 64, col.ackAll(t))
	var wg sync.WaitGroup
	for _, s := range subjects {
		wg.Go(func() {
			ms := messages("ord-"+s, per, s)
			for i := 0; i < per; i += 100 {
				if err := b.Publish(ctx, ms[i:i+100]); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	col.wait(ctx, t, per*len(subjects))
	c.stop(t)

	last := map[string]int{}
	for _, m := range col.order {
		_, num, _ := strings.Cut(string(m.Data), "#")
		i, err := strconv.Atoi(num)
		if err != nil {
			t.Fatalf("bad payload %q", m.Data)
		}
		if prev, ok := last[m.Subject]; ok && i <= prev {
			t.Fatalf("%s: message %d delivered after %d", m.Subject, i, prev)
		}
		last[m.Subject] = i
	}
	if len(last) != len(subjects) {
		t.Errorf("saw subjects %v, want %v", last, subjects)
	}
}

// testNakDelay naks every first delivery and checks the redelivery comes
// as attempt 2, no sooner than the delay.
func testNakDelay(t *testing.T, open func(t *testing.T) bus.Bus) {
	ctx := testContext(t)
	b := open(t)
	const delay = 400 * time.Millisecond
	ms := messages("nak", 20, subj)
	publish(ctx, t, b, ms, 20)
	nakAt := map[string]time.Time{} // used by the handler only
	col := newCollector()
	c := start(ctx, t, b, bus.ConsumerConfig{Durable: "nak", AckWait: 30 * time.Second}, 8,
		func(_ context.Context, ds []bus.Delivery) {
			for _, d := range ds {
				id := d.Message().ID
				switch d.Attempt() {
				case 1:
					nakAt[id] = time.Now()
					if err := d.Nak(delay); err != nil {
						t.Errorf("Nak: %v", err)
					}
				case 2:
					if waited := time.Since(nakAt[id]); waited < delay {
						t.Errorf("%s redelivered after %v, want >= %v", id, waited, delay)
					}
					col.add([]bus.Delivery{d})
					if err := d.Ack(); err != nil {
						t.Errorf("Ack: %v", err)
					}
				default:
					t.Errorf("%s: attempt %d, want 1 or 2", id, d.Attempt())
					_ = d.Ack()
				}
			}
		})
	col.wait(ctx, t, len(ms))
	waitPending(ctx, t, b, "nak", 0)
	c.stop(t)
	if _, total := col.counts(); total != len(ms) {
		t.Errorf("%d second deliveries, want %d", total, len(ms))
	}
}

// testAckWait leaves first deliveries unsettled and expects them again after
// AckWait, as attempt 2.
func testAckWait(t *testing.T, open func(t *testing.T) bus.Bus) {
	ctx := testContext(t)
	b := open(t)
	const ackWait = time.Second
	ms := messages("aw", 10, subj)
	publish(ctx, t, b, ms, 10)
	seenAt := map[string]time.Time{} // used by the handler only
	col := newCollector()
	c := start(ctx, t, b, bus.ConsumerConfig{Durable: "aw", AckWait: ackWait}, 10,
		func(_ context.Context, ds []bus.Delivery) {
			for _, d := range ds {
				id := d.Message().ID
				switch d.Attempt() {
				case 1:
					seenAt[id] = time.Now() // and do not settle it
				case 2:
					// The server's clock starts just before ours did.
					if waited := time.Since(seenAt[id]); waited < ackWait-100*time.Millisecond {
						t.Errorf("%s redelivered after %v, want about %v", id, waited, ackWait)
					}
					col.add([]bus.Delivery{d})
					if err := d.Ack(); err != nil {
						t.Errorf("Ack: %v", err)
					}
				default:
					t.Errorf("%s: attempt %d, want 1 or 2", id, d.Attempt())
					_ = d.Ack()
				}
			}
		})
	col.wait(ctx, t, len(ms))
	waitPending(ctx, t, b, "aw", 0)
	c.stop(t)
}

// testShared runs two Consume calls on one durable: together they get every
// message once, and each gets some.
func testShared(t *testing.T, open func(t *testing.T) bus.Bus) {
	ctx := testContext(t)
	b := open(t)
	ms := messages("sh", 4000, "mercato.bustest.p", "mercato.bustest.q")
	col := newCollector()
	ack := col.ackAll(t)
	var got [2]atomic.Int64
	first := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	cfg := bus.ConsumerConfig{Durable: "shared", AckWait: 30 * time.Second}
	var cs [2]*consumer
	for i := range 2 {
		var once sync.Once
		cs[i] = start(ctx, t, b, cfg, 50, func(ctx context.Context, ds []bus.Delivery) {
			got[i].Add(int64(len(ds)))
			// Hold the first batch until the other consumer has one too, so
			// that both take part whatever the scheduling.
			once.Do(func() {
				close(first[i])
				select {
				case <-first[1-i]:
				case <-ctx.Done():
				}
			})
			ack(ctx, ds)
		})
	}
	publish(ctx, t, b, ms, 200)
	col.wait(ctx, t, len(ms))
	waitPending(ctx, t, b, "shared", 0)
	cs[0].stop(t)
	cs[1].stop(t)
	if distinct, total := col.counts(); total != len(ms) {
		t.Errorf("%d deliveries of %d distinct messages, want %d (duplicates: %v)",
			total, distinct, len(ms), col.duplicates())
	}
	if got[0].Load() == 0 || got[1].Load() == 0 {
		t.Errorf("consumers got %d and %d messages, want both > 0", got[0].Load(), got[1].Load())
	}
}

// testFilter checks that consumers receive exactly the subjects they filter
// on: literal subjects, "*" standing for one token (the noun or the verb of
// an event type, as inbox subscriptions by pattern use it), ">" for the
// rest, and several filters at once.
func testFilter(t *testing.T, open func(t *testing.T) bus.Bus, f Features) {
	ctx := testContext(t)
	b := open(t)
	all := []string{"mercato.order.placed", "mercato.order.paid", "mercato.cart.updated", "mercato.orders.other",
		"mercato.product.created", "mercato.orders.paid"}
	ms := messages("flt", 100*len(all), all...) // 100 per subject
	publish(ctx, t, b, ms, 300)
	every := map[string]bool{}
	for _, s := range all {
		every[s] = true
	}

	tests := []struct {
		name     string
		subjects []string
		want     map[string]bool
	}{
		{"wildcard", []string{"mercato.order.>"}, map[string]bool{"mercato.order.placed": true, "mercato.order.paid": true}},
		{"one subject", []string{"mercato.cart.updated"}, map[string]bool{"mercato.cart.updated": true}},
		{"several subjects", []string{"mercato.cart.updated", "mercato.order.paid"}, map[string]bool{"mercato.cart.updated": true, "mercato.order.paid": true}},
		{"any verb", []string{"mercato.order.*"}, map[string]bool{"mercato.order.placed": true, "mercato.order.paid": true}},
		{"any noun", []string{"mercato.*.paid"}, map[string]bool{"mercato.order.paid": true, "mercato.orders.paid": true}},
		{"any noun and verb", []string{"mercato.*.*"}, every},
		{"several patterns", []string{"mercato.*.created", "mercato.cart.*"}, map[string]bool{"mercato.product.created": true, "mercato.cart.updated": true}},
		{"several nouns", []string{"mercato.order.*", "mercato.orders.*"}, map[string]bool{"mercato.order.placed": true,
			"mercato.order.paid": true, "mercato.orders.other": true, "mercato.orders.paid": true}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			durable := fmt.Sprintf("filter%d", i)
			cfg := bus.ConsumerConfig{Durable: durable, Subjects: tc.subjects}
			if len(tc.subjects) > 1 && !f.MultipleSubjects {
				refuseSeveral(ctx, t, b, cfg)
				return
			}
			col := newCollector()
			c := start(ctx, t, b, cfg, 100, col.ackAll(t))
			col.wait(ctx, t, 100*len(tc.want))
			waitPending(ctx, t, b, durable, 0)
			c.stop(t)
			if _, total := col.counts(); total != 100*len(tc.want) {
				t.Errorf("%d deliveries, want %d", total, 100*len(tc.want))
			}
			for _, m := range col.order {
				if !tc.want[m.Subject] {
					t.Fatalf("delivered subject %s, want only %v", m.Subject, tc.subjects)
				}
			}
		})
	}
}

// refuseSeveral checks that a bus without MultipleSubjects refuses such a
// consumer rather than delivering unfiltered.
func refuseSeveral(ctx context.Context, t *testing.T, b bus.Bus, cfg bus.ConsumerConfig) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := b.Consume(ctx, cfg, 10, func(context.Context, []bus.Delivery) {
		t.Errorf("delivery to a consumer with several subjects on a bus without the feature")
	})
	if err == nil || ctx.Err() != nil {
		t.Errorf("Consume with several subjects returned %v (ctx %v), want a prompt error", err, ctx.Err())
	}
}

// testPending checks Pending counts undelivered plus unsettled messages, and
// falls as they are acknowledged.
func testPending(t *testing.T, open func(t *testing.T) bus.Bus) {
	ctx := testContext(t)
	b := open(t)
	const n, first = 1000, 250
	publish(ctx, t, b, messages("pen", n, subj), 500)
	handed := make(chan []bus.Delivery)
	c := start(ctx, t, b, bus.ConsumerConfig{Durable: "pen", AckWait: 30 * time.Second, MaxAckPending: 300}, 100,
		func(ctx context.Context, ds []bus.Delivery) {
			select {
			case handed <- ds:
			case <-ctx.Done():
			}
		})
	waitPending(ctx, t, b, "pen", n)

	var held []bus.Delivery
	receive := func() {
		select {
		case ds := <-handed:
			held = append(held, ds...)
		case <-ctx.Done():
			t.Fatalf("waiting for deliveries: %v", ctx.Err())
		}
	}
	acked := 0
	ackHeld := func(k int) {
		for _, d := range held[:k] {
			if d.Attempt() != 1 {
				t.Errorf("%s: attempt %d, want 1", d.Message().ID, d.Attempt())
			}
			if err := d.Ack(); err != nil {
				t.Fatalf("Ack: %v", err)
			}
		}
		held = held[k:]
		acked += k
	}
	for len(held) < first {
		receive()
	}
	ackHeld(first)
	waitPending(ctx, t, b, "pen", n-first)
	for acked < n {
		if len(held) == 0 {
			receive()
		}
		ackHeld(len(held))
	}
	waitPending(ctx, t, b, "pen", 0)
	c.stop(t)
}

// testReopen acknowledges part of the stream, closes the bus, reopens it and
// checks that the durable resumes where it was and that IDs are still
// de-duplicated.
func testReopen(t *testing.T, open func(t *testing.T) bus.Bus) {
	ctx := testContext(t)
	ms := messages("re", 2000, subj)
	const half = 1000
	cfg := bus.ConsumerConfig{Durable: "re", AckWait: 30 * time.Second}

	b1 := open(t)
	publish(ctx, t, b1, ms, 500)
	before := newCollector()
	cctx, cancel := context.WithCancel(ctx)
	err := b1.Consume(cctx, cfg, 150, func(ctx context.Context, ds []bus.Delivery) {
		before.ackAll(t)(ctx, ds)
		if n, _ := before.counts(); n >= half {
			cancel()
		}
	})
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume returned %v, want context.Canceled", err)
	}
	acked, _ := before.counts()
	waitPending(ctx, t, b1, "re", int64(len(ms)-acked))
	if err := b1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	b2 := open(t)
	waitPending(ctx, t, b2, "re", int64(len(ms)-acked))
	more := messages("re-more", 500, subj)
	publish(ctx, t, b2, append(more, ms[:10]...), 510) // the old IDs are repeats
	after := newCollector()
	c := start(ctx, t, b2, cfg, 150, after.ackAll(t))
	after.wait(ctx, t, len(ms)-acked+len(more))
	waitPending(ctx, t, b2, "re", 0)
	c.stop(t)

	if _, total := after.counts(); total != len(ms)-acked+len(more) {
		t.Errorf("%d deliveries after reopening, want %d (duplicates: %v)", total, len(ms)-acked+len(more), after.duplicates())
	}
	for _, m := range after.order {
		if before.byID[m.ID] > 0 {
			t.Fatalf("%s acknowledged before reopening, delivered again after", m.ID)
		}
	}
}

// testCancel checks that Consume returns on cancel when idle, and that a
// batch being handled is finished first.
func testCancel(t *testing.T, open func(t *testing.T) bus.Bus) {
	ctx := testContext(t)
	b := open(t)
	publish(ctx, t, b, messages("cx", 1, subj), 1)

	handled := make(chan struct{})
	var once sync.Once
	idle := start(ctx, t, b, bus.ConsumerConfig{Durable: "cx-idle"}, 10, func(_ context.Context, ds []bus.Delivery) {
		for _, d := range ds {
			_ = d.Ack()
		}
		once.Do(func() { close(handled) })
	})
	select {
	case <-handled:
	case <-ctx.Done():
		t.Fatal("no delivery")
	}
	waitPending(ctx, t, b, "cx-idle", 0) // nothing left: Consume is waiting
	idle.stop(t)

	entered, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	var enter sync.Once
	busy := start(ctx, t, b, bus.ConsumerConfig{Durable: "cx-busy"}, 10, func(_ context.Context, ds []bus.Delivery) {
		enter.Do(func() { close(entered) })
		<-release
		for _, d := range ds {
			_ = d.Ack()
		}
		finished.Store(true)
	})
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("no delivery")
	}
	busy.cancel()
	select {
	case <-busy.done:
		t.Fatal("Consume returned while its handler was still running")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	busy.stop(t)
	if !finished.Load() {
		t.Error("Consume returned before its handler finished")
	}
}
