package sqldbtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// StockRow is a hot SKU row (wp_stock) as the units of one transaction
// share it through Tx.Local: read once, taken from in memory by each unit,
// written once by a BeforeCommit hook.
type StockRow struct {
	SKU       string
	Available int // on_hand - reserved as read by the transaction
	Taken     int // reserved by the transaction's units so far
	Updates   int // UPDATE statements the transaction ran on the row
}

type stockKey struct{ sku string }

// ErrOutOfStock is Reserve's answer when the row cannot cover a unit.
var ErrOutOfStock = errs.E("sqldbtest.Reserve", errs.Conflict, errs.CodeOutOfStock)

// Reserve is the merge pattern as a module (inventory) uses it on the write
// path: the first unit of a transaction to reserve sku reads its row (FOR
// UPDATE on PostgreSQL, so a concurrent batch waits for this one's commit)
// and registers one BeforeCommit hook; each unit takes qty from the
// in-memory count or fails with ErrOutOfStock, decided on its own; the hook
// writes the transaction's total in one conditional UPDATE (a row that
// changed anyway is an sqldb.ErrConflict: the batch runs again). A unit
// rolled back after taking gives its share back through OnRollback.
// committed, when set, is called with the row after the transaction commits.
func Reserve(tx *sqldb.Tx, sku string, qty int, committed func(StockRow)) error {
	v, err := tx.Local(stockKey{sku}, func() (any, error) {
		q := `SELECT on_hand - reserved FROM wp_stock WHERE sku = $1`
		if tx.Engine() == sqldb.Postgres {
			q += ` FOR UPDATE`
		}
		r := &StockRow{SKU: sku}
		if err := tx.QueryRowContext(context.Background(), q, sku).Scan(&r.Available); err != nil {
			return nil, err
		}
		tx.BeforeCommit(func(ctx context.Context) error {
			if r.Taken == 0 {
				return nil
			}
			r.Updates++
			res, err := tx.ExecContext(ctx, `UPDATE wp_stock SET reserved = reserved + $1
				WHERE sku = $2 AND on_hand - reserved >= $1`, r.Taken, sku)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("stock of %s changed since it was read: %w", sku, sqldb.ErrConflict)
			}
			return nil
		})
		if committed != nil {
			tx.AfterCommit(func() { committed(*r) })
		}
		return r, nil
	})
	if err != nil {
		return err
	}
	r := v.(*StockRow)
	if r.Available-r.Taken < qty {
		return ErrOutOfStock
	}
	r.Taken += qty
	tx.OnRollback(func() { r.Taken -= qty })
	return nil
}

// SetStock creates or replaces sku's row with on_hand and nothing reserved.
func SetStock(t testing.TB, db *sqldb.DB, sku string, onHand int) {
	t.Helper()
	ctx := context.Background()
	if err := db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM wp_stock WHERE sku = $1`, sku); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO wp_stock (sku, on_hand) VALUES ($1, $2)`, sku, onHand)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// hotRow: 100 concurrent units reserve 1 each from a row holding 60, each
// also writing its own reservation row: exactly 60 succeed, 40 are out of
// stock, nothing is left, and every committed transaction that touched the
// row ran exactly one UPDATE on it.
func hotRow(t *testing.T, db *sqldb.DB, c sqldb.Committer) {
	SetStock(t, db, "hot", 60)
	var mu sync.Mutex
	var txs []StockRow // guarded by mu
	out := concurrently(c, 100, func(i int) sqldb.Unit {
		return sqldb.Unit{Run: func(tx *sqldb.Tx) error {
			if err := Reserve(tx, "hot", 1, func(r StockRow) { mu.Lock(); txs = append(txs, r); mu.Unlock() }); err != nil {
				return err
			}
			return insertRow(tx, fmt.Sprintf("h-%03d", i))
		}}
	})
	won, lost := 0, 0
	for i, err := range out {
		switch {
		case err == nil:
			won++
		case errors.Is(err, ErrOutOfStock):
			lost++
		default:
			t.Errorf("unit %d: %v", i, err)
		}
	}
	if won != 60 || lost != 40 {
		t.Fatalf("won %d, out of stock %d; want 60 and 40", won, lost)
	}
	if n := Count(t, db, `SELECT on_hand - reserved FROM wp_stock WHERE sku = 'hot'`); n != 0 {
		t.Fatalf("available = %d, want 0", n)
	}
	if n := Count(t, db, `SELECT count(*) FROM wp_rows WHERE name LIKE 'h-%'`); n != 60 {
		t.Fatalf("reservation rows = %d, want 60", n)
	}
	mu.Lock()
	defer mu.Unlock()
	taken := 0
	for _, r := range txs {
		taken += r.Taken
		if r.Updates != 1 {
			t.Errorf("a committed transaction ran %d UPDATEs on the row, want 1", r.Updates)
		}
	}
	if taken != 60 {
		t.Errorf("committed transactions took %d, want 60", taken)
	}
	t.Logf("%d reservations in %d transactions (one UPDATE each)", taken, len(txs))
}
