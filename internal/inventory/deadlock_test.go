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
// Both for SKUs of one stock row (flushed by one UPDATE … RETURNING) and
// of two (locked and read afresh first).
func TestOppositeOrderBatches(t *testing.T) {
	for _, locations := range [][]string{{""}, {"", "zzz"}} {
		t.Run(fmt.Sprintf("%d locations", len(locations)), func(t *testing.T) { oppositeOrder(t, locations) })
	}
}

func oppositeOrder(t *testing.T, locations []string) {
	db := sqldbtest.Open(t, sqldb.Postgres, sources()...)
	alloc := &gatedAllocator{gates: map[string]*gate{}}
	e := newEnv(t, db, Config{Allocator: alloc})
	const rounds = 20
	ctx := context.Background()
	for _, loc := range locations {
		if loc != "" {
			if err := e.write.Do(ctx, func(tx *sqldb.Tx) error {
				_, err := e.svc.CreateLocationTx(ctx, tx, LocationRequest{Code: loc, Name: loc}, e.opID)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		// Each location could take every round's units: a batch that
		// runs again here is a deadlock's victim, not one refused at its
		// flush because the other took the units it counted on.
		e.setStock("SKU-A", loc, 2*rounds)
		e.setStock("SKU-B", loc, 2*rounds)
	}
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
	left := int64(2 * rounds * (len(locations) - 1))
	for _, sku := range []string{"SKU-A", "SKU-B"} {
		if lv := e.level(sku); lv.Reserved != 2*rounds || lv.Available != left {
			t.Fatalf("%s: level %+v, want %d units reserved, %d left", sku, lv, 2*rounds, left)
		}
	}
	e.checkInvariant()
	soldOut := 0
	if left == 0 {
		soldOut = 2 // one per SKU
	}
	if n := e.count("outbox", "type = 'inventory.sold_out'"); n != soldOut {
		t.Fatalf("%d inventory.sold_out events, want %d", n, soldOut)
	}
}

// TestStaleReadRefused: stock is read without a lock, so a batch may
// decide from rows that another batch changes before the first one
// flushes. The flush must then refuse (the batch runs again and decides
// afresh) rather than write from the stale read: a PUT whose row's on_hand
// changed meanwhile, a reservation of a location another batch emptied,
// and the release of a reservation committed after the stock was read. PostgreSQL only: on SQLite, one writer, the read is never stale.
func TestStaleReadRefused(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		// setup stocks SKU-S; first is the gated batch's unit (it reads
		// SKU-S through a reservation first); second commits meanwhile.
		setup  func(e *env)
		first  func(e *env, tx *sqldb.Tx) error
		second func(e *env) error
		check  func(t *testing.T, e *env)
	}{{
		name:  "put after a concurrent put",
		setup: func(e *env) { e.setStock("SKU-S", "", 10) },
		first: func(e *env, tx *sqldb.Tx) error {
			if _, err := e.svc.ReserveTx(ctx, tx, "stale-1", "", []Line{{SKU: "SKU-S", Quantity: 1}}, 0); err != nil {
				return err
			}
			_, err := e.svc.SetStockTx(ctx, tx, "SKU-S", "", 50, e.opID)
			return err
		},
		second: func(e *env) error { _, err := e.svc.SetStock(ctx, "SKU-S", "", 30, e.opID); return err },
		check: func(t *testing.T, e *env) {
			if lv := e.level("SKU-S"); lv.OnHand != 50 || lv.Reserved != 1 {
				t.Fatalf("level %+v, want on_hand 50 (the later PUT) and 1 reserved", lv)
			}
			var dOnHand, dRes int64
			if err := e.db.Reader().QueryRow(`SELECT SUM(on_hand_delta), SUM(reserved_delta) FROM inventory_ledger WHERE sku = 'SKU-S'`).Scan(&dOnHand, &dRes); err != nil {
				t.Fatal(err)
			}
			if dOnHand != 50 || dRes != 1 {
				t.Fatalf("the ledger sums to on_hand %d, reserved %d; want 50 and 1", dOnHand, dRes)
			}
		},
	}, {
		name: "the location it counted on emptied",
		setup: func(e *env) {
			if err := e.write.Do(ctx, func(tx *sqldb.Tx) error {
				_, err := e.svc.CreateLocationTx(ctx, tx, LocationRequest{Code: "zzz", Name: "Z"}, e.opID)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			e.setStock("SKU-S", "", 1)
			e.setStock("SKU-S", "zzz", 1)
		},
		first: func(e *env, tx *sqldb.Tx) error {
			_, err := e.svc.ReserveTx(ctx, tx, "stale-1", "", []Line{{SKU: "SKU-S", Quantity: 1}}, 0)
			return err
		},
		second: func(e *env) error {
			_, err := e.svc.Reserve(ctx, "stale-2", "", []Line{{SKU: "SKU-S", Quantity: 1}}, 0)
			return err
		},
		check: func(t *testing.T, e *env) {
			lv := e.level("SKU-S")
			if lv.Reserved != 2 || lv.Available != 0 {
				t.Fatalf("level %+v, want both units reserved", lv)
			}
			for _, l := range lv.Locations {
				if l.Reserved != 1 {
					t.Fatalf("location %s has %d reserved, want 1 each", l.Location, l.Reserved)
				}
			}
			if n := e.count("outbox", "type = 'inventory.sold_out' AND aggregate_id = 'SKU-S'"); n != 1 {
				t.Fatalf("%d inventory.sold_out events, want 1", n)
			}
		},
	}, {
		name:  "a release of a reservation committed after the read",
		setup: func(e *env) { e.setStock("SKU-S", "", 10) },
		first: func(e *env, tx *sqldb.Tx) error {
			if _, err := e.svc.ReserveTx(ctx, tx, "stale-1", "", []Line{{SKU: "SKU-S", Quantity: 1}}, 0); err != nil {
				return err
			}
			return e.svc.ReleaseTx(ctx, tx, "stale-2")
		},
		second: func(e *env) error {
			_, err := e.svc.Reserve(ctx, "stale-2", "", []Line{{SKU: "SKU-S", Quantity: 2}}, 0)
			return err
		},
		check: func(t *testing.T, e *env) {
			if lv := e.level("SKU-S"); lv.OnHand != 10 || lv.Reserved != 1 {
				t.Fatalf("level %+v, want 1 reserved (stale-1; stale-2 released)", lv)
			}
			if n := e.count("inventory_reservations", "ref = 'stale-2' AND status = 'released'"); n != 1 {
				t.Fatalf("stale-2 is not released")
			}
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := sqldbtest.Open(t, sqldb.Postgres, sources()...)
			alloc := &gatedAllocator{gates: map[string]*gate{}}
			e := newEnv(t, db, Config{Allocator: alloc})
			c.setup(e)
			g := alloc.arm("SKU-S")
			var tries atomic.Int32
			errc := make(chan error, 1)
			go func() {
				errc <- e.write.Do(ctx, func(tx *sqldb.Tx) error { tries.Add(1); return c.first(e, tx) })
			}()
			<-g.reached // the first batch has read SKU-S and waits
			if err := c.second(e); err != nil {
				t.Fatalf("the second batch: %v", err)
			}
			close(g.release)
			if err := <-errc; err != nil {
				t.Fatalf("the first batch: %v", err)
			}
			if n := tries.Load(); n != 2 {
				t.Fatalf("the first batch ran %d times, want 2 (refused at its flush, then decided afresh)", n)
			}
			c.check(t, e)
			e.checkInvariant()
		})
	}
}
