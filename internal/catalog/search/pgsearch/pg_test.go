package pgsearch

import (
	"context"
	"strings"
	"testing"

	"mercato/internal/catalog/search"
	"mercato/internal/catalog/search/searchtest"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

func open(t *testing.T) search.Index {
	t.Helper()
	db := sqldbtest.Open(t, sqldb.Postgres, Migrations())
	idx, err := New(context.Background(), db)
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

// TestSQLite: the migrations apply on SQLite (doing nothing) and New
// refuses it.
func TestSQLite(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite, Migrations())
	_, err := New(context.Background(), db)
	if err == nil || !strings.Contains(err.Error(), "needs a PostgreSQL database") {
		t.Fatalf("New on SQLite: %v", err)
	}
}
