package catalog

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// TestConcurrentPatches: parallel patches of one product are applied one
// after another (the version-conditional write), none lost, on both
// engines and through the group-commit batcher.
func TestConcurrentPatches(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		b := groupcommit.New(db, groupcommit.Config{})
		t.Cleanup(b.Close)
		s := New(platformOf(db), Config{})
		s.write = b
		ctx := context.Background()
		p, err := s.CreateProduct(ctx, ProductInput{Title: "Hot", Variants: []VariantInput{{SKU: "HOT-1", Price: eur(1)}}})
		if err != nil {
			t.Fatal(err)
		}
		const n = 12
		var wg sync.WaitGroup
		errc := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				title := fmt.Sprintf("Hot %d", i)
				_, err := s.UpdateProduct(ctx, p.ID, ProductPatch{Title: &title})
				errc <- err
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Product(ctx, p.ID)
		if err != nil || got.Version != n+1 {
			t.Fatalf("version %d, want %d (%v)", got.Version, n+1, err)
		}
		var events int
		db.Reader().QueryRow(`SELECT count(*) FROM outbox WHERE type = 'product.updated'`).Scan(&events)
		if events != n {
			t.Fatalf("%d product.updated events, want %d", events, n)
		}
	}, sources()...)
}

// TestConcurrentMovesMakeNoCycle: two categories moved under each other at
// once: one move wins, the other is 422, never a cycle — on both engines.
func TestConcurrentMovesMakeNoCycle(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		s := New(platformOf(db), Config{})
		ctx := context.Background()
		for round := range 5 {
			a, _ := s.CreateCategory(ctx, CategoryInput{Name: fmt.Sprintf("A%d", round)})
			b, _ := s.CreateCategory(ctx, CategoryInput{Name: fmt.Sprintf("B%d", round)})
			var wg sync.WaitGroup
			var errA, errB error
			wg.Go(func() {
				_, errA = s.UpdateCategory(ctx, a.ID, CategoryPatch{ParentID: OptionalRef{Set: true, ID: b.ID}})
			})
			wg.Go(func() {
				_, errB = s.UpdateCategory(ctx, b.ID, CategoryPatch{ParentID: OptionalRef{Set: true, ID: a.ID}})
			})
			wg.Wait()
			ok := 0
			for _, err := range []error{errA, errB} {
				switch {
				case err == nil:
					ok++
				case errs.KindOf(err) != errs.Invalid:
					t.Fatalf("round %d: %v", round, err)
				}
			}
			if ok != 1 {
				t.Fatalf("round %d: %d moves won (%v, %v), want 1", round, ok, errA, errB)
			}
			tr, err := loadTree(ctx, db.Reader())
			if err != nil {
				t.Fatal(err)
			}
			pa, pb := tr.byID[a.ID].ParentID, tr.byID[b.ID].ParentID
			if pa != nil && *pa == b.ID && pb != nil && *pb == a.ID {
				t.Fatalf("round %d: %s and %s are each other's parent", round, a.ID, b.ID)
			}
			if (pa == nil) == (pb == nil) {
				t.Fatalf("round %d: parents %v, %v: exactly one move should have been applied", round, pa, pb)
			}
		}
	}, sources()...)
}
