package sqldb_test

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"io/fs"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

//go:embed testdata/migrations
var testMigrations embed.FS

func testSource() migrate.Source {
	sub, err := fs.Sub(testMigrations, "testdata/migrations")
	if err != nil {
		panic(err)
	}
	return migrate.Source{Module: "sqldbtest", FS: sub}
}

func count(t *testing.T, db *sqldb.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("count %q: %v", q, err)
	}
	return n
}

// TestConformance is the store contract every engine must meet.
func TestConformance(t *testing.T) {
	ctx := context.Background()
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		t.Run("migrations from zero, twice", func(t *testing.T) {
			// ForEachEngine applied them once; a second run applies nothing.
			again, err := migrate.Up(ctx, db, testSource())
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != 0 {
				t.Fatalf("second migrate applied %v, want nothing", again)
			}
			if n := count(t, db, `SELECT count(*) FROM schema_migrations WHERE module = 'sqldbtest'`); n != 2 {
				t.Fatalf("schema_migrations rows = %d, want 2", n)
			}
			if n := count(t, db, `SELECT count(*) FROM stock`); n != 1 {
				t.Fatalf("seed rows = %d, want 1 (a migration ran twice?)", n)
			}
		})
		t.Run("JSONTable reads rows of any number through one text", func(t *testing.T) {
			q := `SELECT r.s, r.n FROM ` + sqldb.JSONTable(db.Engine(), "$1", "s text", "n bigint") + ` AS r ORDER BY r.n`
			tests := []struct {
				name string
				rows [][]any
			}{
				{"none", [][]any{}},
				{"one", [][]any{{"a", int64(1)}}},
				{"quotes, unicode, a NULL, the largest int64", [][]any{
					{`it's "quoted", \ and a ␀ byte \x00`, int64(-7)}, {"订单 ☃", int64(0)},
					{nil, int64(2)}, {"max", int64(math.MaxInt64)}}},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					js, err := sqldb.JSONRows(tc.rows)
					if err != nil {
						t.Fatal(err)
					}
					rows, err := db.Reader().QueryContext(ctx, q, js)
					if err != nil {
						t.Fatal(err)
					}
					defer rows.Close()
					var got [][]any
					for rows.Next() {
						var s sql.NullString
						var n int64
						if err := rows.Scan(&s, &n); err != nil {
							t.Fatal(err)
						}
						var v any
						if s.Valid {
							v = s.String
						}
						got = append(got, []any{v, n})
					}
					if err := rows.Err(); err != nil {
						t.Fatal(err)
					}
					want := slices.SortedFunc(slices.Values(tc.rows), func(a, b []any) int { return cmp.Compare(a[1].(int64), b[1].(int64)) })
					if len(got) != len(want) {
						t.Fatalf("got %v, want %v", got, want)
					}
					for i := range want {
						if got[i][0] != want[i][0] || got[i][1] != want[i][1] {
							t.Fatalf("row %d: got %v, want %v", i, got[i], want[i])
						}
					}
				})
			}
		})
		t.Run("commit keeps, rollback leaves nothing", func(t *testing.T) {
			err := db.InTx(ctx, func(tx *sqldb.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO items (name, created_at) VALUES ($1, $2)`, "kept", sqldb.Micros(tx.Now))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			boom := errors.New("boom")
			err = db.InTx(ctx, func(tx *sqldb.Tx) error {
				for _, n := range []string{"gone-1", "gone-2"} {
					if _, err := tx.ExecContext(ctx, `INSERT INTO items (name, created_at) VALUES ($1, $2)`, n, sqldb.Micros(tx.Now)); err != nil {
						return err
					}
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("InTx error = %v, want boom", err)
			}
			if n := count(t, db, `SELECT count(*) FROM items WHERE name LIKE 'gone-%'`); n != 0 {
				t.Fatalf("rolled-back rows visible: %d", n)
			}
			if n := count(t, db, `SELECT count(*) FROM items WHERE name = 'kept'`); n != 1 {
				t.Fatalf("committed row missing")
			}
		})
		t.Run("panic rolls back", func(t *testing.T) {
			func() {
				defer func() { recover() }()
				db.InTx(ctx, func(tx *sqldb.Tx) error {
					tx.ExecContext(ctx, `INSERT INTO items (name, created_at) VALUES ('panicked', 1)`)
					panic("x")
				})
			}()
			if n := count(t, db, `SELECT count(*) FROM items WHERE name = 'panicked'`); n != 0 {
				t.Fatal("panicking transaction committed")
			}
			// The writer is usable afterwards.
			if err := db.InTx(ctx, func(tx *sqldb.Tx) error { return nil }); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("read transaction reads, never writes", func(t *testing.T) {
			if err := db.InTx(ctx, func(tx *sqldb.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO items (name, created_at) VALUES ('seen by reads', 1)`)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			var n int
			err := db.ReadTx(ctx, func(tx *sqldb.Tx) error {
				tx.AfterCommit(func() { t.Error("a read transaction's after-commit hook ran") })
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM items WHERE name = 'seen by reads'`).Scan(&n); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO items (name, created_at) VALUES ('written by a read', 1)`)
				if err == nil {
					t.Error("a write in a read transaction succeeded")
				}
				return nil
			})
			if err != nil || n != 1 {
				t.Fatalf("ReadTx: %v, saw %d rows", err, n)
			}
			var written int
			if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM items WHERE name = 'written by a read'`).Scan(&written); err != nil || written != 0 {
				t.Fatalf("%d rows written by a read transaction (%v)", written, err)
			}
		})
		t.Run("savepoint rolls back only its part", func(t *testing.T) {
			var ran bool
			err := db.InTx(ctx, func(tx *sqldb.Tx) error {
				tx.AfterCommit(func() { ran = true })
				if _, err := tx.ExecContext(ctx, `INSERT INTO items (name, created_at) VALUES ('outer', 1)`); err != nil {
					return err
				}
				err := tx.Savepoint(ctx, func() error {
					tx.AfterCommit(func() { t.Error("after-commit hook of a rolled-back savepoint ran") })
					if _, err := tx.ExecContext(ctx, `INSERT INTO items (name, created_at) VALUES ('inner', 1)`); err != nil {
						return err
					}
					// A constraint violation inside the savepoint must not doom the transaction.
					_, err := tx.ExecContext(ctx, `INSERT INTO items (name, created_at) VALUES ('outer', 1)`)
					return err
				})
				if !sqldb.IsUniqueViolation(err) {
					t.Errorf("savepoint error = %v, want unique violation", err)
				}
				_, err = tx.ExecContext(ctx, `INSERT INTO items (name, created_at) VALUES ('after', 1)`)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if !ran {
				t.Error("after-commit hook did not run")
			}
			if n := count(t, db, `SELECT count(*) FROM items WHERE name IN ('outer', 'after')`); n != 2 {
				t.Fatalf("outer rows = %d, want 2", n)
			}
			if n := count(t, db, `SELECT count(*) FROM items WHERE name = 'inner'`); n != 0 {
				t.Fatal("rolled-back savepoint row kept")
			}
		})
		t.Run("fixed now per transaction", func(t *testing.T) {
			at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
			db.SetClock(func() time.Time { return at })
			defer db.SetClock(time.Now)
			err := db.InTx(ctx, func(tx *sqldb.Tx) error {
				if !tx.Now.Equal(at) {
					t.Errorf("tx.Now = %v, want %v", tx.Now, at)
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO items (name, created_at) VALUES ('timed', $1)`, sqldb.Micros(tx.Now))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			var us int64
			db.Reader().QueryRow(`SELECT created_at FROM items WHERE name = 'timed'`).Scan(&us)
			if got := sqldb.FromMicros(us); !got.Equal(at) {
				t.Fatalf("stored time %v, want %v", got, at)
			}
		})
		t.Run("conditional update never oversells", func(t *testing.T) {
			// 200 buyers race for 100 units, one unit each, through the single
			// conditional statement; exactly 100 win.
			var wg sync.WaitGroup
			var mu sync.Mutex
			won := 0
			for range 200 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := db.InTx(ctx, func(tx *sqldb.Tx) error {
						res, err := tx.ExecContext(ctx, `UPDATE stock SET available = available - $1 WHERE sku = $2 AND available >= $1`, 1, "hot")
						if err != nil {
							return err
						}
						if n, _ := res.RowsAffected(); n == 1 {
							mu.Lock()
							won++
							mu.Unlock()
						}
						return nil
					})
					if err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if won != 100 {
				t.Fatalf("winners = %d, want 100", won)
			}
			if n := count(t, db, `SELECT available FROM stock WHERE sku = 'hot'`); n != 0 {
				t.Fatalf("available = %d, want 0", n)
			}
		})
	}, testSource())
}

func TestMigrateRejectsBadNames(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	bad := migrate.Source{Module: "bad", FS: fstestMap{"sqlite/one_init.sql": "SELECT 1"}}
	if _, err := migrate.Up(context.Background(), db, bad); err == nil {
		t.Fatal("migration with a non-numeric version accepted")
	}
	failing := migrate.Source{Module: "failing", FS: fstestMap{
		"sqlite/001_ok.sql":   "CREATE TABLE ok_t (x INTEGER)",
		"sqlite/002_fail.sql": "CREATE TABLE broken (",
	}}
	if _, err := migrate.Up(context.Background(), db, failing); err == nil {
		t.Fatal("broken migration accepted")
	}
	// All of a module's pending migrations apply in one transaction: none kept.
	if n := count(t, db, `SELECT count(*) FROM schema_migrations WHERE module = 'failing'`); n != 0 {
		t.Fatalf("partial migration recorded: %d rows", n)
	}
}
