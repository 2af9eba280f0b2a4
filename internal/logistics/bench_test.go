package logistics

import (
	"context"
	"testing"
	"time"

	"mercato/internal/orders"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// BenchmarkShipment ships whole orders one after the other on SQLite
// through group commit (label, line writes, the order's move, two
// events), next to the reference measured on the same orders in the same
// run: paying each (one orders transition and its event). Placing the
// orders is outside the timer. Run:
//
//	go test -run '^$' -bench Shipment -benchtime 300x ./internal/logistics/
func BenchmarkShipment(b *testing.B) {
	e := newEnv(b, sqldbtest.Open(b, sqldb.SQLite, sources()...))
	ctx := context.Background()
	for _, sku := range []string{"TEE", "MUG"} {
		if _, err := e.inv.SetStock(ctx, sku, "default", 10_000_000, "u-op"); err != nil {
			b.Fatal(err)
		}
	}
	var pay, ship time.Duration
	for b.Loop() {
		b.StopTimer()
		id := e.placed(e.alice, "TEE", 1, "MUG", 2)
		b.StartTimer()
		t0 := time.Now()
		err := e.svc.write.Do(ctx, func(tx *sqldb.Tx) error {
			_, err := e.ord.PayTx(ctx, tx, orders.Caller{CustomerID: "u-alice"}, id, orders.PayRequest{Method: "sandbox", Token: orders.TokenSuccess})
			return err
		})
		t1 := time.Now()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.svc.CreateShipment(ctx, id, ShipmentRequest{Carrier: "sandbox"}); err != nil {
			b.Fatal(err)
		}
		pay, ship = pay+t1.Sub(t0), ship+time.Since(t1)
	}
	b.ReportMetric(float64(ship.Nanoseconds())/float64(b.N), "ship-ns/op")
	b.ReportMetric(float64(pay.Nanoseconds())/float64(b.N), "pay-ns/op(reference)")
	b.ReportMetric(float64(ship)/float64(pay), "ship/pay")
}
