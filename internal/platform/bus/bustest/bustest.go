// Package bustest is the conformance suite of the bus contract: every bus.Bus
// implementation runs it from its own tests and must pass all of it.
//
//	func TestConformance(t *testing.T) {
//		bustest.Run(t, func(t *testing.T) bus.Bus { return openMyBus(t) })
//	}
//
// The suite checks what the relay and the consumers rely on: exactly-once
// delivery with acks, de-duplication by ID, order within a subject, Nak with
// delay, redelivery after AckWait, shared durables, subject filters (literal,
// "*" for one token, ">" for the rest, several at once), Pending,
// durability of a consumer's position across reopening, and cancellation.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/bus"
)

// Features says which optional behaviours a bus offers. The suite asserts
// the behaviour when present and a clean refusal when absent.
type Features struct {
	// MultipleSubjects: a consumer may filter on several subjects. Without
	// it, Consume with more than one subject must return an error (never
	// deliver unfiltered messages).
	MultipleSubjects bool
}

// All is every feature; Run uses it.
var All = Features{MultipleSubjects: true}

// Run runs the whole suite with every feature; see RunFeatures.
func Run(t *testing.T, open func(t *testing.T) bus.Bus) {
	RunFeatures(t, open, All)
}

// RunFeatures runs the suite as parallel subtests.
//
// open returns a bus for the (sub)test t. Buses opened for the same t share
// their stored messages and consumers (same data directory, stream, …),
// buses of different tests are isolated from each other. open arranges for
// the bus to be closed when t ends (Close must therefore be idempotent: the
// suite may close a bus itself first), and the suite closes a bus before it
// opens another for the same t.
func RunFeatures(t *testing.T, open func(t *testing.T) bus.Bus, f Features) {
	for _, c := range cases(f) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, open)
		})
	}
}

type testCase struct {
	name string
	fn   func(t *testing.T, open func(t *testing.T) bus.Bus)
}

// timeout bounds every subtest; the suite as a whole takes a few seconds.
const timeout = 20 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// messages makes n messages with IDs "<tag>-<i>" on the given subjects in
// turn; Data is "<subject>#<i>".
func messages(tag string, n int, subjects ...string) []bus.Message {
	ms := make([]bus.Message, n)
	for i := range ms {
		s := subjects[i%len(subjects)]
		ms[i] = bus.Message{ID: fmt.Sprintf("%s-%d", tag, i), Subject: s, Data: fmt.Appendf(nil, "%s#%d", s, i)}
	}
	return ms
}

// publish publishes ms in calls of size chunk.
func publish(ctx context.Context, t *testing.T, b bus.Bus, ms []bus.Message, chunk int) {
	t.Helper()
	for i := 0; i < len(ms); i += chunk {
		if err := b.Publish(ctx, ms[i:min(i+chunk, len(ms))]); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
}

// consumer runs one Consume call on its own goroutine.
type consumer struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Consume's result, set before done is closed
	once   sync.Once
}

// start calls b.Consume on a new goroutine; the test stops it with stop (a
// cleanup does it otherwise).
func start(ctx context.Context, t *testing.T, b bus.Bus, cfg bus.ConsumerConfig, batch int, fn func(context.Context, []bus.Delivery)) *consumer {
	ctx, cancel := context.WithCancel(ctx)
	c := &consumer{ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.err = b.Consume(ctx, cfg, batch, fn)
	}()
	t.Cleanup(func() { c.stop(t) })
	return c
}

// stop cancels the Consume call and checks that it returns its ctx's error
// (context.Canceled, or DeadlineExceeded when the test timed out) promptly.
func (c *consumer) stop(t *testing.T) {
	t.Helper()
	c.once.Do(func() {
		c.cancel()
		select {
		case <-c.done:
			if want := c.ctx.Err(); !errors.Is(c.err, want) {
				t.Errorf("Consume returned %v after cancel, want %v", c.err, want)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Consume did not return within 5s of cancel")
		}
	})
}

// collector records deliveries; its methods are safe for concurrent use.
type collector struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change; guarded by mu
	byID    map[string]int
	order   []bus.Message // every delivery, in arrival order
}

func newCollector() *collector {
	return &collector{changed: make(chan struct{}), byID: map[string]int{}}
}

// add records ds and returns how many of them were first deliveries.
func (c *collector) add(ds []bus.Delivery) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	fresh := 0
	for _, d := range ds {
		m := d.Message()
		if c.byID[m.ID] == 0 {
			fresh++
		}
		c.byID[m.ID]++
		c.order = append(c.order, m)
	}
	close(c.changed)
	c.changed = make(chan struct{})
	return fresh
}

// counts reports distinct messages and total deliveries.
func (c *collector) counts() (distinct, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID), len(c.order)
}

// wait blocks until at least n distinct messages were delivered.
func (c *collector) wait(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	for {
		c.mu.Lock()
		got, ch := len(c.byID), c.changed
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("got %d distinct messages, want %d: %v", got, n, ctx.Err())
		}
	}
}

// duplicates lists IDs delivered more than once.
func (c *collector) duplicates() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id, n := range c.byID {
		if n > 1 {
			ids = append(ids, id)
		}
	}
	return ids
}

// ackAll is a handler that records and acknowledges every delivery.
func (c *collector) ackAll(t *testing.T) func(context.Context, []bus.Delivery) {
	return func(_ context.Context, ds []bus.Delivery) {
		c.add(ds)
		for _, d := range ds {
			if err := d.Ack(); err != nil {
				t.Errorf("Ack: %v", err)
			}
		}
	}
}

// waitPending polls b.Pending until it reports want.
func waitPending(ctx context.Context, t *testing.T, b bus.Bus, durable string, want int64) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := b.Pending(ctx, durable)
		if err != nil {
			t.Fatalf("Pending(%s): %v", durable, err)
		}
		if got == want {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("Pending(%s) = %d, want %d", durable, got, want)
		}
	}
}
