package search_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"mercato/internal/catalog/search"
	"mercato/internal/catalog/search/blevesearch"
	"mercato/internal/catalog/search/pgsearch"
	"mercato/internal/catalog/search/searchtest"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// walkOnly hides an index's IDs, so that Rebuild walks its pages.
type walkOnly struct{ search.Index }

func indexes(t *testing.T) map[string]func(t *testing.T) search.Index {
	return map[string]func(t *testing.T) search.Index{
		"bleve": func(t *testing.T) search.Index {
			idx, err := blevesearch.Open(filepath.Join(t.TempDir(), "search"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { idx.Close() })
			return idx
		},
		"bleve-walk": func(t *testing.T) search.Index {
			idx, err := blevesearch.Open(filepath.Join(t.TempDir(), "search"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { idx.Close() })
			return walkOnly{idx}
		},
		"postgres": func(t *testing.T) search.Index {
			db := sqldbtest.Open(t, sqldb.Postgres, pgsearch.Migrations())
			idx, err := pgsearch.New(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			return idx
		},
	}
}

func TestRebuild(t *testing.T) {
	ctx := context.Background()
	for name, open := range indexes(t) {
		t.Run(name, func(t *testing.T) {
			for _, counted := range []bool{false, true} {
				idx := open(t)
				// The index holds 1,300 documents; the catalog 1,200 of
				// them (one changed) and 50 new ones.
				old := searchtest.Synthetic(1300, 1)
				if err := idx.Put(ctx, old); err != nil {
					t.Fatal(err)
				}
				docs := append(searchtest.Synthetic(1200, 1), searchtest.Fixture()[:50]...)
				docs[0].Title = "Zeppelin"
				src := &searchtest.CountedSource{Source: searchtest.Source{Docs: docs}}
				var calls [][2]int
				progress := func(done, total int) { calls = append(calls, [2]int{done, total}) }
				var err error
				if counted {
					err = search.Rebuild(ctx, idx, src, progress)
				} else {
					err = search.Rebuild(ctx, idx, &src.Source, progress)
				}
				if err != nil {
					t.Fatalf("Rebuild: %v", err)
				}
				if n, _ := idx.Count(ctx); n != len(docs) {
					t.Errorf("Count = %d, want %d", n, len(docs))
				}
				all, _ := searchtest.All(t, idx, search.Query{}, 100)
				slices.Sort(all)
				var want []string
				for _, d := range docs {
					want = append(want, d.ID)
				}
				slices.Sort(want)
				if !slices.Equal(all, want) {
					t.Errorf("after Rebuild the index lists %d ids, want the source's %d", len(all), len(want))
				}
				res, err := idx.Search(ctx, search.Query{Text: "zeppelin"})
				if err != nil || res.Total != 1 || res.Hits[0].ID != docs[0].ID {
					t.Errorf("changed document: %+v, %v", res, err)
				}
				// 1,250 documents in batches of 500: three calls and the
				// last; the total is the source's count, or the index's
				// size before.
				wantTotal := 1300
				if counted {
					wantTotal = 1250
				}
				wantCalls := [][2]int{{500, wantTotal}, {1000, wantTotal}, {1250, wantTotal}, {1250, 1250}}
				if !slices.Equal(calls, wantCalls) {
					t.Errorf("progress calls %v, want %v", calls, wantCalls)
				}
				if src.Scans != 3 {
					t.Errorf("%d batches scanned, want 3", src.Scans)
				}
			}
		})
	}
}

// TestRebuildTotal: without a Counter the total grows past the index's size.
func TestRebuildTotal(t *testing.T) {
	ctx := context.Background()
	idx := indexes(t)["bleve"](t)
	if err := idx.Put(ctx, searchtest.Synthetic(10, 1)); err != nil {
		t.Fatal(err)
	}
	src := &searchtest.Source{Docs: searchtest.Synthetic(1100, 2)}
	var calls [][2]int
	if err := search.Rebuild(ctx, idx, src, func(d, n int) { calls = append(calls, [2]int{d, n}) }); err != nil {
		t.Fatal(err)
	}
	want := [][2]int{{500, 500}, {1000, 1000}, {1100, 1100}, {1100, 1100}}
	if !slices.Equal(calls, want) {
		t.Errorf("progress %v, want %v", calls, want)
	}
	if n, _ := idx.Count(ctx); n != 1100 {
		t.Errorf("Count = %d, want 1100", n)
	}
}
