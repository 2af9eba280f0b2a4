package inventory

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// gate is a point a gatedAllocator stops at once: reached is closed when a
// unit's allocation of the SKU gets there (after the unit read the SKU),
// and the unit goes on when release is closed.
type gate struct{ reached, release chan struct{} }

// gatedAllocator is MostAvailable, stopping at the gates armed for a SKU
// (each gate once: a batch that runs again passes straight through).
type gatedAllocator struct {
	mu    sync.Mutex
	gates map[string]*gate
}

func (a *gatedAllocator) arm(sku string) *gate {
	g := &gate{reached: make(chan struct{}), release: make(chan struct{})}
	a.mu.Lock()
	a.gates[sku] = g
	a.mu.Unlock()
	return g
}

func (a *gatedAllocator) Allocate(sku string, qty int64, stock []LocationStock) ([]Allocation, bool) {
	a.mu.Lock()
	g := a.gates[sku]
	delete(a.gates, sku)
	a.mu.Unlock()
	if g != nil {
		close(g.reached)
		<-g.release
	}
	return MostAvailable{}.Allocate(sku, qty, stock)
}

// TestOppositeOrderBatches: two batches of the group-commit batcher on
// PostgreSQL, in flight at once, touch SKUs A and B in opposite orders —
// the first has read A when the second reads B, then each goes on to the
// other SKU. No batch may wait on the other in a cycle: each commits at its
// first try (a deadlock would roll one back and run it again, after the
// server's deadlock_timeout). The server's own deadlock count
// (pg_stat_database) is no witness here: other tests share the database.
func TestOppositeOrderBatches(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.Postgres, sources()...)
	alloc := &gatedAllocator{gates: map[string]*gate{}}
	e := newEnv(t, db, Config{Allocator: alloc})
	const rounds = 20
	e.setStock("SKU-A", "", 2*rounds)
	e.setStock("SKU-B", "", 2*rounds)
	ctx := context.Background()
	// unit reserves one unit of each of skus, in that order, each under a
	// reservation of its own, counting its tries.
	unit := func(round int, skus []string, tries *atomic.Int32) func(*sqldb.Tx) error {
		return func(tx *sqldb.Tx) error {
			tries.Add(1)
			for _, sku := range skus {
				ref := fmt.Sprintf("r%02d-%s-%s", round, skus[0], sku)
				if _, err := e.svc.ReserveTx(ctx, tx, ref, "", []Line{{SKU: sku, Quantity: 1}}, 0); err != nil {
					return err
				}
			}
			return nil
		}
	}
	for round := range rounds {
		ga, gb := alloc.arm("SKU-A"), alloc.arm("SKU-B")
		var tries1, tries2 atomic.Int32
		errc := make(chan error, 2)
		go func() { errc <- e.write.Do(ctx, unit(round, []string{"SKU-A", "SKU-B"}, &tries1)) }()
		<-ga.reached // the first batch has read SKU-A and waits
		go func() { errc <- e.write.Do(ctx, unit(round, []string{"SKU-B", "SKU-A"}, &tries2)) }()
		<-gb.reached // the second, in another batch, has read SKU-B
		close(ga.release)
		close(gb.release)
		for range 2 {
			if err := <-errc; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if tries1.Load() != 1 || tries2.Load() != 1 {
			t.Fatalf("round %d: the batches ran %d and %d times, want once each (a deadlock made one run again)", round, tries1.Load(), tries2.Load())
		}
	}
	for _, sku := range []string{"SKU-A", "SKU-B"} {
		if lv := e.level(sku); lv.Reserved != 2*rounds || lv.Available != 0 {
			t.Fatalf("%s: level %+v, want all %d units reserved", sku, lv, 2*rounds)
		}
	}
	e.checkInvariant()
	if n := e.count("outbox", "type = 'inventory.sold_out'"); n != 2 {
		t.Fatalf("%d inventory.sold_out events, want 2 (one per SKU)", n)
	}
}
