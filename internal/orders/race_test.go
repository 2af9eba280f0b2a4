package orders

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// TestExpiryRacesPayment: for each of 20 due orders a payment and the
// expiry run at once; exactly one of them wins each order, and the order
// holds exactly that one's status and event.
func TestExpiryRacesPayment(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		e.setStock("TEE-M", 100)
		const n = 20
		orders := make([]Order, n)
		for i := range orders {
			orders[i] = e.placeGo(1)
		}
		e.clock.Advance(31 * time.Minute)
		ctx := context.Background()
		paid := make([]bool, n)
		expired := make([]bool, n)
		payErr := make([]error, n)
		expErr := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, o := range orders {
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				payErr[i] = e.svc.write.Do(ctx, func(tx *sqldb.Tx) error {
					_, err := e.svc.PayTx(ctx, tx, Caller{CustomerID: "u-alice"}, o.ID, PayRequest{Method: "sandbox", Token: TokenSuccess})
					return err
				})
				paid[i] = payErr[i] == nil
			}()
			go func() {
				defer wg.Done()
				<-start
				expErr[i] = e.svc.write.Do(ctx, func(tx *sqldb.Tx) (err error) { expired[i], err = e.svc.ExpireTx(ctx, tx, o.ID); return err })
			}()
		}
		close(start)
		wg.Wait()
		wins := map[string]int{}
		for i, o := range orders {
			if expErr[i] != nil {
				t.Fatalf("expire: %v", expErr[i])
			}
			if paid[i] == expired[i] {
				t.Fatalf("order %d: paid %v, expired %v (pay: %v)", i, paid[i], expired[i], payErr[i])
			}
			r := e.row(o.ID)
			want, ev := "expired", "order.expired"
			if paid[i] {
				want, ev = "paid", "order.paid"
				wins["pay"]++
			} else {
				wins["expire"]++
			}
			if r.status != want || r.events != 2 || e.count("outbox", "aggregate_id = $1 AND type = $2", o.ID, ev) != 1 {
				t.Fatalf("order %d: %+v, want %s with one %s", i, r, want, ev)
			}
		}
		t.Logf("wins: %v", wins)
	})
}

// TestParallelCheckoutOneKey: 20 checkouts of one cart with one
// Idempotency-Key at once make one order; every answer is that order.
func TestParallelCheckoutOneKey(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		alice := e.as("alice")
		cart := e.cartWith(alice, "MUG", 2)
		const n = 20
		ids := make([]string, n)
		status := make([]int, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := alice.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": goodAddress}, "Idempotency-Key: same")
				status[i] = r.Status
				if id, ok := r.Field("id").(string); ok {
					ids[i] = id
				}
			}()
		}
		close(start)
		wg.Wait()
		for i := range n {
			if status[i] != http.StatusCreated || ids[i] != ids[0] {
				t.Fatalf("answer %d: %d %q, first %q", i, status[i], ids[i], ids[0])
			}
		}
		if e.count("orders_orders", "") != 1 || e.count("outbox", "type = 'order.placed'") != 1 || e.stock("MUG") != 1 {
			t.Fatalf("orders %d, placed events %d, mugs left %d", e.count("orders_orders", ""), e.count("outbox", "type = 'order.placed'"), e.stock("MUG"))
		}
	})
}

// TestParallelCheckoutNoKey: without a key, 10 checkouts of one cart make
// one order; the others are 409 cart_checked_out.
func TestParallelCheckoutNoKey(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		alice := e.as("alice")
		cart := e.cartWith(alice, "MUG", 1)
		const n = 10
		codes := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := alice.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": goodAddress})
				codes[i] = http.StatusText(r.Status)
				if r.Problem != nil {
					codes[i] = r.Problem.Code
				}
			}()
		}
		wg.Wait()
		got := map[string]int{}
		for _, c := range codes {
			got[c]++
		}
		if got["Created"] != 1 || got["cart_checked_out"] != n-1 || e.count("orders_orders", "") != 1 || e.stock("MUG") != 2 {
			t.Fatalf("answers %v, orders %d, mugs %d", got, e.count("orders_orders", ""), e.stock("MUG"))
		}
	})
}

// TestStaleVersionRereads (PostgreSQL, where a transition can read a
// version that another transaction is about to replace): a cancel that
// read the order unpaid, and waited on the row while a payment committed,
// finds 0 rows on its version, re-reads, and decides on what the order is
// now — it cancels the paid order and asks for the refund.
func TestStaleVersionRereads(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.Postgres, sources()...)
	e := newEnv(t, db)
	o := e.placeGo(1)
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE orders_orders SET status = 'paid', payment_status = 'paid', version = version + 1 WHERE id = $1`, o.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- db.Do(ctx, func(tx *sqldb.Tx) error {
			_, err := e.svc.CancelTx(ctx, tx, Caller{CustomerID: "u-alice"}, o.ID, false)
			return err
		})
	}()
	waiting := false
	for i := 0; i < 100000 && !waiting; i++ { // each look is a round trip: no timer
		var n int
		if err := db.Reader().QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
			AND query LIKE 'UPDATE orders_orders SET status = $1%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		waiting = n > 0
	}
	if !waiting {
		t.Fatal("the cancel never waited on the order's row")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if r := e.row(o.ID); r.status != "cancelled" || r.version != 3 {
		t.Fatalf("after the race: %+v, want cancelled at version 3", r)
	}
	if d := e.outboxData(o.ID, "order.cancelled"); d["was_paid"] != true {
		t.Fatalf("the cancel decided on the stale read: %v", d)
	}
}
