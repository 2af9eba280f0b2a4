package payments

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// BenchmarkPay measures a pay request through the payments module (record
// the attempt, call the sandbox outside the transaction, commit capture and
// order.paid: two units) next to the reference measured in the same run:
// the orders module's inline Sandbox (one unit, no payment rows), both
// through the real HTTP server on SQLite, with an Idempotency-Key.
//
//	go test -run '^$' -bench BenchmarkPay -benchtime 200x ./internal/payments/
func BenchmarkPay(b *testing.B) {
	db := sqldbtest.Open(b, sqldb.SQLite, sources()...)
	e := newEnv(b, db)
	ref := e.inlineSandbox().WithToken("alice")
	body := map[string]any{"method": "sandbox", "token": "tok_success"}
	var viaPayments, viaInline time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		a, c := e.order(e.as("alice"), 1), e.order(e.as("alice"), 1)
		b.StartTimer()
		t0 := time.Now()
		r := e.as("alice").Do("POST", "/api/v1/orders/"+a+"/pay", body, fmt.Sprintf("Idempotency-Key: p%d", i))
		t1 := time.Now()
		r2 := ref.Do("POST", "/api/v1/orders/"+c+"/pay", body, fmt.Sprintf("Idempotency-Key: i%d", i))
		t2 := time.Now()
		if r.Status != http.StatusOK || r2.Status != http.StatusOK {
			b.Fatalf("pay: %d / %d", r.Status, r2.Status)
		}
		viaPayments += t1.Sub(t0)
		viaInline += t2.Sub(t1)
	}
	b.ReportMetric(float64(viaPayments.Microseconds())/float64(b.N), "µs/pay")
	b.ReportMetric(float64(viaInline.Microseconds())/float64(b.N), "µs/pay-inline-ref")
	b.ReportMetric(0, "ns/op")
}
