package sqldbtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// NewCommitter returns the Committer under test over db, released when t
// ends. On PostgreSQL it must run at least two transactions at once (the
// deadlock case needs two).
type NewCommitter func(t *testing.T, db *sqldb.DB) sqldb.Committer

// WritePath is the conformance suite of the write path, run on both engines
// (ForEachEngine): every Committer — *sqldb.DB, the group-commit batcher —
// must pass it. It creates its own tables (wp_*).
func WritePath(t *testing.T, newC NewCommitter) {
	ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		WritePathTables(t, db)
		cases := []struct {
			name string
			run  func(t *testing.T, db *sqldb.DB, c sqldb.Committer)
		}{
			{"a failing unit among 100", failingAmong100},
			{"a panic fails its unit alone", panicAlone},
			{"OnFail failing rolls back both", onFailFailing},
			{"conflicts are retried, never reported while tries remain", conflictsRetried},
			{"a deadlock-prone pair is retried to success", deadlockPair},
			{"a hot row merged into one update per batch", hotRow},
			{"a unit whose context ended first never runs", cancelledFirst},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				db.SetRetry(sqldb.Retry{})
				tc.run(t, db, newC(t, db))
			})
		}
	})
}

// WritePathTables creates the suite's tables in db: wp_rows(name, n) and
// wp_stock(sku, on_hand, reserved).
func WritePathTables(t testing.TB, db *sqldb.DB) {
	t.Helper()
	ctx := context.Background()
	if err := db.InTx(ctx, func(tx *sqldb.Tx) error {
		for _, ddl := range []string{
			`CREATE TABLE wp_rows (name TEXT PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0)`,
			`CREATE TABLE wp_stock (sku TEXT PRIMARY KEY, on_hand INTEGER NOT NULL,
				reserved INTEGER NOT NULL DEFAULT 0, CHECK (reserved <= on_hand))`,
		} {
			if _, err := tx.ExecContext(ctx, ddl); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Count returns the single integer q selects.
func Count(t testing.TB, db *sqldb.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func insertRow(tx *sqldb.Tx, name string) error {
	_, err := tx.ExecContext(context.Background(), `INSERT INTO wp_rows (name) VALUES ($1)`, name)
	return err
}

// concurrently runs n units through c at once and returns their outcomes.
func concurrently(c sqldb.Committer, n int, unit func(i int) sqldb.Unit) []error {
	out := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = c.Run(context.Background(), unit(i))
		}()
	}
	wg.Wait()
	return out
}

func failingAmong100(t *testing.T, db *sqldb.DB, c sqldb.Committer) {
	declined := errs.E("test", errs.PaymentDeclined, "declined")
	var afterRun, afterFail, onFails atomic.Int32
	out := concurrently(c, 100, func(i int) sqldb.Unit {
		name := fmt.Sprintf("f-%03d", i)
		return sqldb.Unit{
			Run: func(tx *sqldb.Tx) error {
				tx.AfterCommit(func() { afterRun.Add(1) })
				for _, n := range []string{name, name + "-b"} {
					if err := insertRow(tx, n); err != nil {
						return err
					}
				}
				if i == 42 {
					return declined // after writing: both rows must go
				}
				return nil
			},
			OnFail: func(tx *sqldb.Tx, err error) error {
				onFails.Add(1)
				if !errors.Is(err, declined) {
					t.Errorf("OnFail got %v, want Run's error", err)
				}
				tx.AfterCommit(func() { afterFail.Add(1) })
				return insertRow(tx, name+"-answer")
			},
		}
	})
	for i, err := range out {
		if i == 42 && !errors.Is(err, declined) || i != 42 && err != nil {
			t.Errorf("unit %d: %v", i, err)
		}
	}
	if n := Count(t, db, `SELECT count(*) FROM wp_rows WHERE name LIKE 'f-%'`); n != 199 {
		t.Errorf("rows = %d, want 99×2 + 1 answer", n)
	}
	if n := Count(t, db, `SELECT count(*) FROM wp_rows WHERE name IN ('f-042', 'f-042-b')`); n != 0 {
		t.Errorf("the failed unit kept %d rows", n)
	}
	if n := Count(t, db, `SELECT count(*) FROM wp_rows WHERE name = 'f-042-answer'`); n != 1 {
		t.Error("the failed unit's OnFail did not commit")
	}
	if afterRun.Load() != 99 || afterFail.Load() != 1 || onFails.Load() == 0 {
		t.Errorf("after-commit hooks: %d of Run, %d of OnFail; OnFail ran %d times; want 99, 1, ≥1",
			afterRun.Load(), afterFail.Load(), onFails.Load())
	}
}

func panicAlone(t *testing.T, db *sqldb.DB, c sqldb.Committer) {
	var failKind atomic.Int32
	failKind.Store(-1)
	out := concurrently(c, 10, func(i int) sqldb.Unit {
		return sqldb.Unit{
			Run: func(tx *sqldb.Tx) error {
				if err := insertRow(tx, fmt.Sprintf("p-%d", i)); err != nil {
					return err
				}
				if i == 3 {
					panic("unit bug")
				}
				return nil
			},
			OnFail: func(tx *sqldb.Tx, err error) error {
				failKind.Store(int32(errs.KindOf(err)))
				return nil
			},
		}
	})
	for i, err := range out {
		if i == 3 && errs.KindOf(err) != errs.Internal || i != 3 && err != nil {
			t.Errorf("unit %d: %v", i, err)
		}
	}
	if errs.Kind(failKind.Load()) != errs.Internal {
		t.Errorf("OnFail saw kind %d, want Internal", failKind.Load())
	}
	if n := Count(t, db, `SELECT count(*) FROM wp_rows WHERE name LIKE 'p-%'`); n != 9 {
		t.Errorf("rows = %d, want 9", n)
	}
}

func onFailFailing(t *testing.T, db *sqldb.DB, c sqldb.Committer) {
	boom, bad := errors.New("boom"), errors.New("recording failed")
	out := concurrently(c, 10, func(i int) sqldb.Unit {
		name := fmt.Sprintf("o-%d", i)
		return sqldb.Unit{
			Run: func(tx *sqldb.Tx) error {
				if err := insertRow(tx, name); err != nil {
					return err
				}
				if i == 5 {
					return boom
				}
				return nil
			},
			OnFail: func(tx *sqldb.Tx, err error) error {
				if err := insertRow(tx, name+"-answer"); err != nil {
					return err
				}
				return bad // after writing: the answer must go too
			},
		}
	})
	for i, err := range out {
		if i == 5 && !(errors.Is(err, boom) && errors.Is(err, bad)) || i != 5 && err != nil {
			t.Errorf("unit %d: %v", i, err)
		}
	}
	if n := Count(t, db, `SELECT count(*) FROM wp_rows WHERE name LIKE 'o-5%'`); n != 0 {
		t.Errorf("the failed unit and its failed OnFail kept %d rows", n)
	}
	if n := Count(t, db, `SELECT count(*) FROM wp_rows WHERE name LIKE 'o-%'`); n != 9 {
		t.Errorf("rows = %d, want 9", n)
	}
}

func conflictsRetried(t *testing.T, db *sqldb.DB, c sqldb.Committer) {
	var waits atomic.Int32
	db.SetRetry(sqldb.Retry{Attempts: 3, Wait: func(ctx context.Context, n int) error {
		waits.Add(1)
		return nil
	}})
	tests := []struct {
		name      string
		conflicts int32 // how many runs conflict before one succeeds
		inCommit  bool  // the conflict comes from a BeforeCommit hook
		wantErr   bool
	}{
		{"unit conflicts twice", 2, false, false},
		{"commit hook conflicts once", 1, true, false},
		{"unit always conflicts", 1 << 20, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			waits.Store(0)
			var runs atomic.Int32
			name := "r-" + tc.name
			err := c.Run(context.Background(), sqldb.Unit{Run: func(tx *sqldb.Tx) error {
				if err := insertRow(tx, name); err != nil {
					return err
				}
				n := runs.Add(1)
				if !tc.inCommit {
					if n <= tc.conflicts {
						return fmt.Errorf("row changed under us: %w", sqldb.ErrConflict)
					}
					return nil
				}
				tx.BeforeCommit(func(context.Context) error {
					if n <= tc.conflicts {
						return fmt.Errorf("merged update matched nothing: %w", sqldb.ErrConflict)
					}
					return nil
				})
				return nil
			}})
			wantRuns := min(tc.conflicts+1, 3)
			if tc.wantErr != (err != nil) || tc.wantErr && !sqldb.IsRetryable(err) {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if runs.Load() != wantRuns || waits.Load() != wantRuns-1 {
				t.Fatalf("runs %d, waits %d; want %d and %d", runs.Load(), waits.Load(), wantRuns, wantRuns-1)
			}
			want := 1
			if tc.wantErr {
				want = 0
			}
			if n := Count(t, db, `SELECT count(*) FROM wp_rows WHERE name = $1`, name); n != want {
				t.Fatalf("rows = %d, want %d", n, want)
			}
		})
	}
}

// deadlockPair runs unit A (locks dl-a, then dl-b) and unit B (dl-b, then
// dl-a) from two transactions. On PostgreSQL their first runs are made to
// interleave so that the server must break a deadlock: the victim is tried
// again and both succeed. On SQLite (one writer) they run one after the
// other.
func deadlockPair(t *testing.T, db *sqldb.DB, c sqldb.Committer) {
	ctx := context.Background()
	var waits atomic.Int32
	db.SetRetry(sqldb.Retry{Wait: func(ctx context.Context, n int) error { waits.Add(1); return nil }})
	if err := db.InTx(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO wp_rows (name) VALUES ('dl-a'), ('dl-b')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	pg := db.Engine() == sqldb.Postgres
	var runsA, runsB atomic.Int32
	bump := func(tx *sqldb.Tx, name string) error {
		_, err := tx.ExecContext(ctx, `UPDATE wp_rows SET n = n + 1 WHERE name = $1`, name)
		return err
	}
	aHas, bHas := make(chan struct{}), make(chan struct{})
	unitA := sqldb.Unit{Run: func(tx *sqldb.Tx) error {
		if err := bump(tx, "dl-a"); err != nil {
			return err
		}
		if runsA.Add(1) == 1 && pg {
			close(aHas)
			<-bHas
		}
		return bump(tx, "dl-b")
	}}
	unitB := sqldb.Unit{Run: func(tx *sqldb.Tx) error {
		if err := bump(tx, "dl-b"); err != nil {
			return err
		}
		if runsB.Add(1) == 1 && pg {
			close(bHas)
		}
		return bump(tx, "dl-a")
	}}
	var errA, errB error
	if pg {
		done := make(chan struct{})
		go func() { errA = c.Run(ctx, unitA); close(done) }()
		<-aHas // A holds dl-a: B can only be in another transaction
		errB = c.Run(ctx, unitB)
		<-done
	} else {
		errA, errB = c.Run(ctx, unitA), c.Run(ctx, unitB)
	}
	if errA != nil || errB != nil {
		t.Fatalf("A: %v, B: %v; want both to succeed", errA, errB)
	}
	// Every lost conflict is one wait and one more run. On PostgreSQL at
	// least the forced deadlock was lost (a retry may lose another: it can
	// take dl-a again before the winner gets it).
	runs, w := runsA.Load()+runsB.Load(), waits.Load()
	if runs != 2+w || pg && w < 1 || !pg && w != 0 {
		t.Fatalf("runs %d, waits %d; want 2 + waits runs, and a wait only on PostgreSQL", runs, w)
	}
	t.Logf("%d runs, %d conflicts retried", runs, w)
	if n := Count(t, db, `SELECT sum(n) FROM wp_rows WHERE name IN ('dl-a', 'dl-b')`); n != 4 {
		t.Fatalf("sum = %d, want 4 (each unit bumped each row once)", n)
	}
}

func cancelledFirst(t *testing.T, db *sqldb.DB, c sqldb.Committer) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := c.Run(ctx, sqldb.Unit{Run: func(tx *sqldb.Tx) error { ran = true; return nil }})
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("err = %v, ran = %v; want context.Canceled and not run", err, ran)
	}
}
