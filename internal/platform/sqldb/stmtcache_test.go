package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
)

// openTestSQLite opens a SQLite DB in a temporary directory.
func openTestSQLite(t testing.TB) *DB {
	t.Helper()
	db, err := Open(context.Background(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// kept returns the statements the writer connection keeps, by query text.
func kept(t *testing.T, db *DB) map[string]*cachedStmt {
	t.Helper()
	c, err := db.w.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var m map[string]*cachedStmt
	if err := c.Raw(func(dc any) error {
		m = map[string]*cachedStmt{}
		for q, cs := range dc.(*cachingConn).stmts {
			m[q] = cs
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStatementCache(t *testing.T) {
	ctx := context.Background()
	db := openTestSQLite(t)
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.w.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`)
	const ins = `INSERT INTO kv (k, v) VALUES ($1, $2)`
	const sel = `SELECT k, v FROM kv ORDER BY k`

	t.Run("a repeated statement is prepared once and keeps working", func(t *testing.T) {
		for i := range 50 {
			mustExec(ins, fmt.Sprint("k", i), i)
		}
		m := kept(t, db)
		if m[ins] == nil {
			t.Fatalf("INSERT not kept; kept %d statements", len(m))
		}
		if _, ok := m[`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`]; ok {
			t.Error("a schema command was kept")
		}
		var n int
		if err := db.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM kv`).Scan(&n); err != nil || n != 50 {
			t.Fatalf("count = %d, %v; want 50", n, err)
		}
	})

	t.Run("a constraint violation leaves the statement usable", func(t *testing.T) {
		if _, err := db.w.ExecContext(ctx, ins, "k1", 1); err == nil {
			t.Fatal("duplicate key accepted")
		}
		mustExec(ins, "after", 1)
		var v int
		if err := db.w.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = $1`, "after").Scan(&v); err != nil || v != 1 {
			t.Fatalf("row after the violation: %d, %v", v, err)
		}
	})

	t.Run("the same query inside the loop over its own rows", func(t *testing.T) {
		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		outer, err := tx.QueryContext(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		rows := 0
		for outer.Next() {
			var k string
			var v int
			if err := outer.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			rows++
			if rows == 3 { // the same text while the first rows are open
				inner, err := tx.QueryContext(ctx, sel)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for inner.Next() {
					n++
				}
				if err := errors.Join(inner.Err(), inner.Close()); err != nil || n != 51 {
					t.Fatalf("inner query: %d rows, %v; want 51", n, err)
				}
			}
		}
		if err := errors.Join(outer.Err(), outer.Close()); err != nil || rows != 51 {
			t.Fatalf("outer query: %d rows, %v; want 51", rows, err)
		}
		tx.Rollback() // kept needs the one writer connection
		if cs := kept(t, db)[sel]; cs == nil || cs.busy {
			t.Fatalf("SELECT kept %v, busy after close", cs)
		}
	})

	t.Run("a schema change re-prepares a kept statement", func(t *testing.T) {
		const star = `SELECT * FROM kv WHERE k = $1`
		cols := func() int {
			rows, err := db.w.QueryContext(ctx, star, "k1")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			cs, err := rows.Columns()
			if err != nil {
				t.Fatal(err)
			}
			return len(cs)
		}
		if n := cols(); n != 2 {
			t.Fatalf("%d columns, want 2", n)
		}
		mustExec(`ALTER TABLE kv ADD COLUMN note TEXT NOT NULL DEFAULT 'x'`)
		if n := cols(); n != 3 {
			t.Fatalf("%d columns after ALTER TABLE, want 3", n)
		}
	})

	t.Run("bounded, least recently used dropped first", func(t *testing.T) {
		for i := range stmtCacheSize + 20 {
			var n int
			if err := db.w.QueryRowContext(ctx, fmt.Sprintf(`SELECT %d + COUNT(*) FROM kv`, i)).Scan(&n); err != nil {
				t.Fatal(err)
			}
			mustExec(ins, fmt.Sprint("lru", i), i) // keeps the INSERT recently used
		}
		m := kept(t, db)
		if len(m) > stmtCacheSize {
			t.Fatalf("%d statements kept, at most %d", len(m), stmtCacheSize)
		}
		if m[ins] == nil {
			t.Error("the statement used all along was dropped")
		}
		if m[`SELECT 0 + COUNT(*) FROM kv`] != nil {
			t.Error("the statement used least recently is still kept")
		}
	})

	t.Run("writer statements are counted", func(t *testing.T) {
		before := db.WriteStats()
		mustExec(ins, "counted", 1)
		if got := db.WriteStats().Sub(before).Statements; got != 1 {
			t.Fatalf("statements = %d, want 1", got)
		}
		var n int
		if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM kv`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if got := db.WriteStats().Sub(before).Statements; got != 1 {
			t.Fatalf("a reader's statement counted: %d", got)
		}
	})

	t.Run("by query only while profiling, lists of placeholders as one", func(t *testing.T) {
		mustExec(ins, "unprofiled", 1)
		if got := db.StatementsByQuery(); got != nil {
			t.Fatalf("counted by query before ProfileStatements: %v", got)
		}
		db.ProfileStatements()
		mustExec(ins, "p1", 1)
		mustExec(`INSERT INTO kv (k, v)
			VALUES ($1, $2)`, "p2", 2)
		mustExec(`INSERT INTO kv (k, v) VALUES ($1, $2), ($3, $4), ($5, $6)`, "p3", 3, "p4", 4, "p5", 5)
		mustExec(`INSERT INTO kv (k, v) VALUES ($1, $2), ($3, $4)`, "p6", 6, "p7", 7)
		mustExec(`DELETE FROM kv WHERE k IN ($1, $2)`, "p6", "p7")
		mustExec(`DELETE FROM kv WHERE k IN ($1)`, "p5")
		if _, err := db.r.ExecContext(ctx, `SELECT 1`); err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{
			`INSERT INTO kv (k, v) VALUES (…)`:  2,
			`INSERT INTO kv (k, v) VALUES (…)…`: 2,
			`DELETE FROM kv WHERE k IN (…)`:     1,
			`DELETE FROM kv WHERE k IN ($1)`:    1,
		}
		got := db.StatementsByQuery()
		if len(got) != len(want) {
			t.Errorf("by query: %v, want %v", got, want)
		}
		for q, n := range want {
			if got[q] != n {
				t.Errorf("%q: %d, want %d (all: %v)", q, got[q], n, got)
			}
		}
	})
}

// BenchmarkStatementCache measures a small INSERT and a point SELECT on
// SQLite's writer with kept statements against the driver on its own
// (which parses every statement again), in the same run.
//
//	go test -run '^$' -bench StatementCache ./internal/platform/sqldb/
func BenchmarkStatementCache(b *testing.B) {
	for _, mode := range []string{"kept", "driver"} {
		b.Run(mode, func(b *testing.B) {
			dir := b.TempDir()
			var w *sql.DB
			dsn := "file:" + dir + "/b.db?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)"
			if mode == "kept" {
				w = openSQLite(dsn, nil)
			} else {
				var err error
				if w, err = sql.Open("sqlite", dsn); err != nil {
					b.Fatal(err)
				}
			}
			defer w.Close()
			w.SetMaxOpenConns(1)
			ctx := context.Background()
			if _, err := w.Exec(`CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL, at INTEGER NOT NULL)`); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := w.ExecContext(ctx, `INSERT INTO kv (k, v, at) VALUES ($1, $2, $3)`, i, "value", i); err != nil {
					b.Fatal(err)
				}
				var v string
				if err := w.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = $1`, i).Scan(&v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
