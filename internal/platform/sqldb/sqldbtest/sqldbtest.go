// Package sqldbtest runs store tests against both engines: a fresh SQLite
// file per test, and — when MERCATO_TEST_POSTGRES_URL is set — a fresh
// PostgreSQL schema per test, dropped afterwards.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
)

// EnvPostgres names the variable holding the test PostgreSQL URL.
const EnvPostgres = "MERCATO_TEST_POSTGRES_URL"

// ForEachEngine runs fn as a subtest per engine ("sqlite", "postgres"), each
// with a fresh database migrated with sources. The PostgreSQL subtest is
// skipped, with a message, only when MERCATO_TEST_POSTGRES_URL is unset.
func ForEachEngine(t *testing.T, fn func(t *testing.T, db *sqldb.DB), sources ...migrate.Source) {
	t.Helper()
	for _, e := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(e), func(t *testing.T) {
			fn(t, Open(t, e, sources...))
		})
	}
}

// Open returns a fresh, migrated database of engine e, closed (and on
// PostgreSQL dropped) when the test ends.
func Open(t testing.TB, e sqldb.Engine, sources ...migrate.Source) *sqldb.DB {
	t.Helper()
	cfg := Config(t, e)
	db, err := sqldb.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open %s: %v", e, err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := migrate.Up(context.Background(), db, sources...); err != nil {
		t.Fatalf("migrate %s: %v", e, err)
	}
	return db
}

// Config returns the configuration of a fresh, empty database of engine e:
// a new data directory for SQLite, a new schema for PostgreSQL (skipping the
// test when MERCATO_TEST_POSTGRES_URL is unset).
func Config(t testing.TB, e sqldb.Engine) sqldb.Config {
	t.Helper()
	if e == sqldb.SQLite {
		return sqldb.Config{DataDir: t.TempDir()}
	}
	return sqldb.Config{URL: PostgresURL(t)}
}

// PostgresURL creates a fresh schema on the test server and returns a URL
// whose connections use it; the schema is dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Skipf("PostgreSQL tests skipped: %s is not set", EnvPostgres)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("postgres: create schema: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer a.Close()
		a.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("postgres url: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
