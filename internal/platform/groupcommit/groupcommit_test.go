package groupcommit_test

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

//go:embed testdata/migrations
var testMigrations embed.FS

func source() migrate.Source {
	sub, _ := fs.Sub(testMigrations, "testdata/migrations")
	return migrate.Source{Module: "groupcommittest", FS: sub}
}

func count(t testing.TB, db *sqldb.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// insertUnit writes a unit's row and two parts, so a rollback must undo three rows.
func insertUnit(ctx context.Context, tx *sqldb.Tx, name string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO units (name) VALUES ($1)`, name); err != nil {
		return err
	}
	for part := range 2 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO unit_parts (name, part) VALUES ($1, $2)`, name, part); err != nil {
			return err
		}
	}
	return nil
}

func TestBatcher(t *testing.T) {
	ctx := context.Background()
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		t.Run("one failing unit among 100", func(t *testing.T) {
			// A long delay makes all 100 land in one batch.
			b := groupcommit.New(db, groupcommit.Config{MaxBatch: 100, MaxDelay: 200 * time.Millisecond})
			defer b.Close()
			boom := errs.E("test", errs.Conflict, errs.CodeOutOfStock)
			var wg sync.WaitGroup
			results := make([]error, 100)
			var afterCommit atomic.Int32
			for i := range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i] = b.Do(ctx, func(tx *sqldb.Tx) error {
						tx.AfterCommit(func() { afterCommit.Add(1) })
						if err := insertUnit(ctx, tx, fmt.Sprintf("u%03d", i)); err != nil {
							return err
						}
						if i == 42 {
							return boom // after writing: its rows must go
						}
						return nil
					})
				}()
			}
			wg.Wait()
			for i, err := range results {
				if i == 42 {
					if !errors.Is(err, boom) {
						t.Errorf("unit 42 got %v, want its own error", err)
					}
				} else if err != nil {
					t.Errorf("unit %d got %v, want nil", i, err)
				}
			}
			if n := count(t, db, `SELECT count(*) FROM units`); n != 99 {
				t.Errorf("units = %d, want 99", n)
			}
			if n := count(t, db, `SELECT count(*) FROM unit_parts`); n != 198 {
				t.Errorf("parts = %d, want 198", n)
			}
			if n := count(t, db, `SELECT count(*) FROM unit_parts WHERE name = 'u042'`); n != 0 {
				t.Errorf("failed unit left %d parts", n)
			}
			if got := afterCommit.Load(); got != 99 {
				t.Errorf("after-commit hooks ran %d times, want 99", got)
			}
		})
		t.Run("database errors stay with their unit", func(t *testing.T) {
			b := groupcommit.New(db, groupcommit.Config{MaxBatch: 10, MaxDelay: 100 * time.Millisecond})
			defer b.Close()
			var wg sync.WaitGroup
			errs := make([]error, 10)
			for i := range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					name := fmt.Sprintf("dup-%d", i)
					if i%2 == 0 {
						name = "dup-same" // five units fight for one unique name
					}
					errs[i] = b.Do(ctx, func(tx *sqldb.Tx) error { return insertUnit(ctx, tx, name) })
				}()
			}
			wg.Wait()
			var uniq, ok int
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case sqldb.IsUniqueViolation(err):
					uniq++
				default:
					t.Errorf("unexpected error %v", err)
				}
			}
			if ok != 6 || uniq != 4 {
				t.Fatalf("ok=%d unique violations=%d, want 6 and 4", ok, uniq)
			}
		})
		t.Run("panic fails only its unit", func(t *testing.T) {
			b := groupcommit.New(db, groupcommit.Config{MaxBatch: 3, MaxDelay: 100 * time.Millisecond})
			defer b.Close()
			var wg sync.WaitGroup
			res := make([]error, 3)
			for i := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res[i] = b.Do(ctx, func(tx *sqldb.Tx) error {
						if err := insertUnit(ctx, tx, fmt.Sprintf("p-%d", i)); err != nil {
							return err
						}
						if i == 1 {
							panic("unit bug")
						}
						return nil
					})
				}()
			}
			wg.Wait()
			if res[0] != nil || res[2] != nil || errs.KindOf(res[1]) != errs.Internal {
				t.Fatalf("results %v", res)
			}
			if n := count(t, db, `SELECT count(*) FROM units WHERE name LIKE 'p-%'`); n != 2 {
				t.Fatalf("rows = %d, want 2", n)
			}
		})
		t.Run("hot row: conditional reservations never oversell", func(t *testing.T) {
			if err := db.InTx(ctx, func(tx *sqldb.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO stock (sku, available) VALUES ('hot', 100)`)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			b := groupcommit.New(db, groupcommit.Config{})
			defer b.Close()
			outOfStock := errs.E("reserve", errs.Conflict, errs.CodeOutOfStock)
			var won, lost atomic.Int32
			var wg sync.WaitGroup
			for range 300 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := b.Do(ctx, func(tx *sqldb.Tx) error {
						res, err := tx.ExecContext(ctx, `UPDATE stock SET available = available - 1 WHERE sku = 'hot' AND available >= 1`)
						if err != nil {
							return err
						}
						if n, _ := res.RowsAffected(); n == 0 {
							return outOfStock
						}
						return nil
					})
					switch {
					case err == nil:
						won.Add(1)
					case errors.Is(err, outOfStock):
						lost.Add(1)
					default:
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if won.Load() != 100 || lost.Load() != 200 {
				t.Fatalf("won=%d lost=%d, want 100/200", won.Load(), lost.Load())
			}
			if n := count(t, db, `SELECT available FROM stock WHERE sku = 'hot'`); n != 0 {
				t.Fatalf("available = %d", n)
			}
		})
		t.Run("a failing unit runs at most twice, later batches guarded", func(t *testing.T) {
			// One worker and a batch of two: the pair always shares one
			// transaction (the batch is full as soon as both are queued).
			b := groupcommit.New(db, groupcommit.Config{Workers: 1, MaxBatch: 2, MaxDelay: time.Minute})
			defer b.Close()
			boom := errors.New("boom")
			pair := func(round string) (calls [2]atomic.Int32, res [2]error) {
				var wg sync.WaitGroup
				for i := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						res[i] = b.Do(ctx, func(tx *sqldb.Tx) error {
							calls[i].Add(1)
							if err := insertUnit(ctx, tx, fmt.Sprintf("%s-%d", round, i)); err != nil {
								return err
							}
							if i == 1 {
								return boom
							}
							return nil
						})
					}()
				}
				wg.Wait()
				return
			}
			calls, res := pair("first")
			if res[0] != nil || !errors.Is(res[1], boom) {
				t.Fatalf("results %v, want nil and boom", res)
			}
			// The optimistic pass failed (the good unit ran in it only if it
			// came first); the guarded pass ran both again.
			if c0, c1 := calls[0].Load(), calls[1].Load(); c1 != 2 || c0 < 1 || c0 > 2 {
				t.Fatalf("calls %d/%d, want 1 or 2 / 2 (optimistic, then guarded)", c0, c1)
			}
			// The next batch runs guarded straight away: a failure costs one run.
			calls, res = pair("second")
			if res[0] != nil || !errors.Is(res[1], boom) || calls[0].Load() != 1 || calls[1].Load() != 1 {
				t.Fatalf("results %v calls %d/%d, want nil/boom and one guarded run each", res, calls[0].Load(), calls[1].Load())
			}
			if n := count(t, db, `SELECT count(*) FROM units WHERE name IN ('first-1', 'second-1')`); n != 0 {
				t.Fatal("failed unit kept its rows")
			}
			if n := count(t, db, `SELECT count(*) FROM units WHERE name IN ('first-0', 'second-0')`); n != 2 {
				t.Fatalf("committed units = %d, want 2", n)
			}
		})
		t.Run("a lone failing unit runs once", func(t *testing.T) {
			b := groupcommit.New(db, groupcommit.Config{})
			defer b.Close()
			boom := errors.New("boom")
			calls := 0
			err := b.Do(ctx, func(tx *sqldb.Tx) error {
				calls++
				if err := insertUnit(ctx, tx, "lone"); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) || calls != 1 {
				t.Fatalf("err=%v calls=%d, want boom after one run", err, calls)
			}
			if n := count(t, db, `SELECT count(*) FROM units WHERE name = 'lone'`); n != 0 {
				t.Fatal("failed unit kept its rows")
			}
		})
		t.Run("cancelled before batching never runs", func(t *testing.T) {
			b := groupcommit.New(db, groupcommit.Config{})
			defer b.Close()
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			ran := false
			err := b.Do(cctx, func(tx *sqldb.Tx) error { ran = true; return nil })
			if !errors.Is(err, context.Canceled) || ran {
				t.Fatalf("err=%v ran=%v", err, ran)
			}
		})
		t.Run("close finishes queued units then refuses", func(t *testing.T) {
			b := groupcommit.New(db, groupcommit.Config{})
			var wg sync.WaitGroup
			var okN atomic.Int32
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if b.Do(ctx, func(tx *sqldb.Tx) error { return insertUnit(ctx, tx, fmt.Sprintf("c-%d", i)) }) == nil {
						okN.Add(1)
					}
				}()
			}
			wg.Wait()
			b.Close()
			if err := b.Do(ctx, func(*sqldb.Tx) error { return nil }); !errors.Is(err, groupcommit.ErrClosed) {
				t.Fatalf("Do after Close = %v", err)
			}
			if n := count(t, db, `SELECT count(*) FROM units WHERE name LIKE 'c-%'`); n != int(okN.Load()) || n != 50 {
				t.Fatalf("rows %d, acknowledged %d", n, okN.Load())
			}
		})
	}, source())
}
