package blevesearch

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"mercato/internal/catalog/search"
	"mercato/internal/catalog/search/searchtest"
)

func open(t *testing.T) search.Index {
	t.Helper()
	idx, err := Open(filepath.Join(t.TempDir(), "search"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	return idx
}

func TestConformance(t *testing.T) { searchtest.Run(t, open) }

func TestRelevance(t *testing.T) {
	idx := open(t)
	if err := idx.Put(context.Background(), searchtest.Fixture()); err != nil {
		t.Fatal(err)
	}
	searchtest.RunRelevance(t, idx, searchtest.Relevance)
}

// TestReopen: the index is on disk; reopening finds its documents.
func TestReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "search")
	idx, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fx := searchtest.Fixture()
	if err := idx.Put(context.Background(), fx); err != nil {
		t.Fatal(err)
	}
	if err := idx.Close(); err != nil {
		t.Fatal(err)
	}
	idx, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	if n, err := idx.Count(context.Background()); err != nil || n != len(fx) {
		t.Fatalf("Count after reopen = %d, %v; want %d", n, err, len(fx))
	}
	res, err := idx.Search(context.Background(), search.Query{Text: "蓝牙耳机", Limit: 1})
	if err != nil || len(res.Hits) != 1 || res.Hits[0].ID != "p002" {
		t.Fatalf("search after reopen = %+v, %v", res, err)
	}
}

// FuzzSearch: whatever the text, cursor and sort, Search answers or refuses
// with ErrInvalidQuery, and never panics.
func FuzzSearch(f *testing.F) {
	for _, s := range searchtest.Hostile {
		if len(s) < 300 {
			f.Add(s, "", "relevance", 5)
		}
	}
	f.Add("tea", "eyJoIjoiIiwiYSI6WyIxIl19", "price_asc", 3)
	f.Add("蓝牙耳机", "", "", 0)
	idx, err := Open(filepath.Join(f.TempDir(), "search"))
	if err != nil {
		f.Fatal(err)
	}
	defer idx.Close()
	if err := idx.Put(context.Background(), searchtest.Fixture()); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text, cursor, sort string, limit int) {
		q := search.Query{Text: text, Cursor: cursor, Sort: search.Sort(sort), Limit: limit, Facets: true}
		res, err := idx.Search(context.Background(), q)
		if err != nil {
			if !errors.Is(err, search.ErrInvalidQuery) {
				t.Fatalf("Search(%q, %q, %q, %d): %v", text, cursor, sort, limit, err)
			}
			return
		}
		if !utf8.ValidString(text) || utf8.RuneCountInString(text) > search.MaxTextLen {
			t.Fatalf("Search(%q) accepted", text)
		}
		if res.Total < len(res.Hits) || res.Facets == nil {
			t.Fatalf("Search(%q): %d hits of %d", text, len(res.Hits), res.Total)
		}
	})
}

// TestOpenEmptyDir: an existing empty directory is created into.
func TestOpenEmptyDir(t *testing.T) {
	idx, err := Open(t.TempDir())
	if err != nil {
		t.Fatalf("Open(empty dir): %v", err)
	}
	defer idx.Close()
	if err := idx.Put(context.Background(), searchtest.Fixture()[:3]); err != nil {
		t.Fatal(err)
	}
}
