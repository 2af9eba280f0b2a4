package channels

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// BenchmarkImport measures a channel's order import through the HTTP
// server on SQLite (validation, quota-free reservation, order, order.paid,
// the idempotency record) and, in the same run, two references: a repeat
// of an imported external_id (the replay) and GET /api/v1/admin/channels
// (a read through the same server and authentication).
//
//	go test ./internal/channels -run '^$' -bench Import -benchtime 300x
func BenchmarkImport(b *testing.B) {
	e := newEnv(b, sqldbtest.Open(b, sqldb.SQLite, sources()...))
	if _, err := e.inv.SetStock(context.Background(), "TEE-M", "", 1_000_000_000, "bench"); err != nil {
		b.Fatal(err)
	}
	ch := e.c.WithToken(e.channel("amazon", "marketplace"))
	op := e.c.WithToken(e.op)
	var imp, rep, read time.Duration
	for i := 0; b.Loop(); i++ {
		body := importBody(fmt.Sprint("B-", i), line("TEE-M", 1, 1000))
		t0 := time.Now()
		if r := ch.Do("POST", "/api/v1/channels/amazon/orders", body); r.Status != http.StatusCreated {
			b.Fatalf("import %d: %s", r.Status, r.Body)
		}
		t1 := time.Now()
		if r := ch.Do("POST", "/api/v1/channels/amazon/orders", body); r.Status != http.StatusOK {
			b.Fatalf("repeat %d: %s", r.Status, r.Body)
		}
		t2 := time.Now()
		if r := op.Do("GET", "/api/v1/admin/channels", nil); r.Status != http.StatusOK {
			b.Fatalf("list %d", r.Status)
		}
		imp, rep, read = imp+t1.Sub(t0), rep+time.Since(t1)-time.Since(t2), read+time.Since(t2)
	}
	n := float64(b.N)
	b.ReportMetric(float64(imp.Microseconds())/n, "import-µs")
	b.ReportMetric(float64(rep.Microseconds())/n, "repeat-µs(ref)")
	b.ReportMetric(float64(read.Microseconds())/n, "list-µs(ref)")
}
