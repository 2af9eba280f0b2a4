package orders

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

var (
	benchCaller   = Caller{CustomerID: "u-bench", Channel: "web"}
	benchAddress  = Address{Name: "B", Line1: "1 Bench St", City: "C", Region: "R", PostalCode: "1", Country: "US"}
	benchCheckout = CheckoutRequest{ShippingAddress: &benchAddress}
)

// benchCarts writes n open carts of u-bench, each one line of one of skus
// SKUs (stock plenty), in one transaction, and returns their ids.
func (e *env) benchCarts(n, skus int) []string {
	e.t.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	for i := range skus {
		e.cat.set(Variant{SKU: "B" + itoa(i), ProductID: "p", Title: "Bench", Price: usd(1000), Sellable: true})
	}
	if err := e.db.InTx(ctx, func(tx *sqldb.Tx) error {
		for i := range skus {
			if _, err := tx.ExecContext(ctx, `INSERT INTO orderstest_stock (sku, available) VALUES ($1, 1000000000)
				ON CONFLICT (sku) DO NOTHING`, "B"+itoa(i)); err != nil {
				return err
			}
		}
		for i := range ids {
			ids[i] = "cart-" + itoa(i) + "-" + time.Now().Format("150405.000000000")
			if _, err := tx.ExecContext(ctx, `INSERT INTO orders_carts (id, customer_id, currency, status, created_at, updated_at)
				VALUES ($1, 'u-bench', 'USD', 'open', 0, 0)`, ids[i]); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO orders_cart_lines (cart_id, sku, quantity, added_at) VALUES ($1, $2, 1, 0)`,
				ids[i], "B"+itoa(i%skus)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return ids
}

// place checks out every cart through c, 64 at once, and returns the
// placements per second.
func (e *env) place(b *testing.B, c sqldb.Committer, carts []string) float64 {
	ctx := context.Background()
	var next atomic.Int64
	done := make(chan error, 64)
	start := time.Now()
	for range 64 {
		go func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(carts)) {
					done <- nil
					return
				}
				if err := c.Do(ctx, func(tx *sqldb.Tx) error {
					_, err := e.svc.CheckoutTx(ctx, tx, benchCaller, carts[i], benchCheckout)
					return err
				}); err != nil {
					done <- err
					return
				}
			}
		}()
	}
	for range 64 {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	return float64(len(carts)) / time.Since(start).Seconds()
}

// BenchmarkPlace: placements per second (checkout of a one-line cart, no
// HTTP) at 64 concurrent placements through a real group-commit batcher,
// next to the same placements with one commit per order (DB.Do), measured
// in the same run on each engine. The stock double runs its conditional
// UPDATE on one of 64 SKU rows per placement.
func BenchmarkPlace(b *testing.B) {
	for _, eng := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		b.Run(string(eng), func(b *testing.B) {
			db := sqldbtest.Open(b, eng, sources()...)
			e := newEnv(b, db)
			db.SetClock(time.Now)
			n := max(b.N, 64)
			gcCarts, refCarts := e.benchCarts(n, 64), e.benchCarts(n, 64)
			gc := groupcommit.New(db, groupcommit.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			defer gc.Close()
			b.ResetTimer()
			batched := e.place(b, gc, gcCarts)
			b.StopTimer()
			ref := e.place(b, db, refCarts)
			b.ReportMetric(batched, "placements/s")
			b.ReportMetric(ref, "ref_commit_per_order/s")
			b.ReportMetric(batched/ref, "speedup")
		})
	}
}
