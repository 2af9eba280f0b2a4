package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// handoff checks the relay's ordering contract on the calls it makes to
// its publisher: within a call each aggregate's events are consecutive and
// in sequence, and a call never starts an aggregate past its first event
// not yet acknowledged (by a call that returned nil). It is safe for
// concurrent use.
type handoff struct {
	mu       sync.Mutex
	acked    map[string]int64 // aggregate → highest sequence acknowledged
	failures int              // calls that returned an error
	problems []string
}

func newHandoff() *handoff { return &handoff{acked: map[string]int64{}} }

// envelopes decodes the messages of one call.
func envelopes(t *testing.T, msgs []bus.Message) []event.Envelope {
	es := make([]event.Envelope, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Data, &es[i]); err != nil || es[i].ID != m.ID || m.Subject != es[i].Subject() {
			t.Errorf("message %s (%s) is not its envelope: %v", m.ID, m.Subject, err)
		}
	}
	return es
}

// call records one Publish call and its result.
func (h *handoff) call(es []event.Envelope, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	prev := map[string]int64{}
	for _, e := range es {
		k := e.AggregateType + "/" + e.AggregateID
		if p, ok := prev[k]; ok && e.Sequence != p+1 {
			h.problems = append(h.problems, fmt.Sprintf("%s: sequence %d handed over after %d in one call", k, e.Sequence, p))
		} else if !ok && e.Sequence > h.acked[k]+1 {
			h.problems = append(h.problems, fmt.Sprintf("%s: sequence %d handed over while %d was not acknowledged",
				k, e.Sequence, h.acked[k]+1))
		}
		prev[k] = e.Sequence
	}
	if err != nil {
		h.failures++
		return
	}
	for k, s := range prev {
		h.acked[k] = max(h.acked[k], s)
	}
}

func (h *handoff) check(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.problems) > 0 {
		t.Fatalf("%d breaches of the relay's order, first: %v", len(h.problems), h.problems[:min(5, len(h.problems))])
	}
}

// checking is a bus.Publisher that checks every call with a handoff before
// passing it on.
type checking struct {
	t    *testing.T
	next bus.Publisher
	h    *handoff
}

func (c checking) Publish(ctx context.Context, msgs []bus.Message) error {
	err := c.next.Publish(ctx, msgs)
	c.h.call(envelopes(c.t, msgs), err)
	return err
}

// faulty is an in-memory bus.Publisher that stores messages the way
// JetStream does (in arrival order, repeats by ID dropped) and fails calls
// as a loaded or flapping bus can, drawn from a seeded source:
//
//   - partial: some messages are stored, others lost (a middle one may be
//     lost while later ones are stored: a leader change, a reconnect), and
//     the call fails;
//   - lost ack: every message is stored but the call times out.
//
// No timing is involved: a fault is decided per call.
type faulty struct {
	mu     sync.Mutex
	rnd    *rand.Rand
	faults int // calls left to fail
	stored []event.Envelope
	seen   map[string]bool
}

var errInjected = errors.New("injected publish failure")

func (f *faulty) Publish(_ context.Context, msgs []bus.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := f.faults > 0 && f.rnd.IntN(3) > 0
	partial := fail && f.rnd.IntN(2) == 0
	for _, m := range msgs {
		if partial && f.rnd.IntN(4) == 0 {
			continue // lost
		}
		if f.seen[m.ID] {
			continue
		}
		var e event.Envelope
		json.Unmarshal(m.Data, &e)
		f.seen[m.ID] = true
		f.stored = append(f.stored, e)
	}
	if fail {
		f.faults--
		return errInjected
	}
	return nil
}

// TestRelayOrderUnderPublishFailures appends events of few aggregates from
// concurrent transactions while the bus fails calls partway. It proves
// what the relay guarantees — every event reaches the bus, and the relay
// hands each aggregate's events over in sequence, never past one not yet
// acknowledged — and shows why it guarantees no more: after a partial
// failure the bus can hold an aggregate's events out of sequence, which is
// why consumers order by sequence (inbox).
func TestRelayOrderUnderPublishFailures(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		const writers, txs, perTx, aggs = 4, 25, 20, 8
		fb := &faulty{rnd: rand.New(rand.NewPCG(1, 2)), faults: 40, seen: map[string]bool{}}
		h := newHandoff()
		relay := start(t, db, checking{t, fb, h}, RelayConfig{BatchSize: 64, PollInterval: time.Millisecond})
		ctx := WithWaker(context.Background(), relay.r)
		var wg sync.WaitGroup
		errc := make(chan error, writers*txs)
		for w := range writers {
			wg.Go(func() {
				rnd := rand.New(rand.NewPCG(uint64(w), 7))
				for i := range txs {
					evs := make([]*event.Envelope, perTx)
					for j := range evs {
						e, _ := orderPlaced.New(fmt.Sprintf("a%d", rnd.IntN(aggs)), time.Time{},
							orderRef{Order: fmt.Sprintf("%d/%d/%d", w, i, j)})
						evs[j] = &e
					}
					errc <- db.InTx(ctx, func(tx *sqldb.Tx) error { return Append(ctx, tx, evs...) })
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatalf("append: %v", err)
			}
		}
		waitDrained(t, db)
		h.check(t)

		fb.mu.Lock()
		defer fb.mu.Unlock()
		// How many of the 40 faults are spent depends on how the relay
		// batched the events (fewer, fuller calls under load), so the test
		// asks for enough of them, not all.
		if h.failures < 5 {
			t.Fatalf("%d injected failures seen, %d left: the test proved nothing", h.failures, fb.faults)
		}
		seqs := map[string][]int64{}
		for _, e := range fb.stored {
			seqs[e.AggregateID] = append(seqs[e.AggregateID], e.Sequence)
		}
		total, outOfOrder := 0, 0
		for agg, ss := range seqs {
			if !slices.IsSorted(ss) {
				outOfOrder++
			}
			sorted := slices.Sorted(slices.Values(ss))
			for i, s := range sorted {
				if s != int64(i+1) {
					t.Fatalf("aggregate %s: stored sequences %v are not 1..%d once each", agg, sorted, len(ss))
				}
			}
			total += len(ss)
		}
		if total != writers*txs*perTx {
			t.Fatalf("%d events on the bus, want %d", total, writers*txs*perTx)
		}
		t.Logf("%d publish failures injected; %d of %d aggregates stored out of sequence", h.failures, outOfOrder, len(seqs))
	}, Migrations())
}

// waitDrained waits until the relay has published and marked every event.
// It polls: marking has no signal of its own. The deadline only bounds a
// broken run; nothing is asserted about speed.
func waitDrained(t *testing.T, db *sqldb.DB) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for pending(t, db) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("outbox still holds %d unpublished events", pending(t, db))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
