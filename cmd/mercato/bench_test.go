package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web/webtest"
)

// benchAdmin is the bootstrap admin the bench tests' servers create.
var benchAdmin = map[string]string{
	"MERCATO_BOOTSTRAP_ADMIN_EMAIL":    "root@example.com",
	"MERCATO_BOOTSTRAP_ADMIN_PASSWORD": "a very long admin password",
}

// runBench runs `mercato bench args… --json` with env and decodes its
// summary into v; it answers what went to stderr (the progress).
func runBench(t *testing.T, env map[string]string, v any, args ...string) string {
	t.Helper()
	var out, errOut syncBuffer
	err := run(context.Background(), append(append([]string{"bench"}, args...), "--json"),
		func(k string) string { return env[k] }, &out, &errOut)
	if err != nil {
		t.Fatalf("bench %v: %v\n%s", args, err, errOut.String())
	}
	if err := json.Unmarshal([]byte(out.String()), v); err != nil {
		t.Fatalf("bench %v: summary is not JSON: %v\n%s", args, err, out.String())
	}
	return errOut.String()
}

// TestBenchCheckoutCountsAddUp runs a short checkout bench against an
// in-process server on both engines: every loop is placed and paid, the
// staff read-back finds exactly those orders, the stock adds up, and the
// event consumers settled with nothing failed.
func TestBenchCheckoutCountsAddUp(t *testing.T) {
	for name, args := range engines(t) {
		t.Run(name, func(t *testing.T) {
			c, _ := startInProcess(t, benchAdmin, args(t)...)
			const buyers, orders = 4, 40
			var s CheckoutSummary
			progress := runBench(t, benchAdmin, &s, "checkout", "--url", c.URL(), "--buyers", "4", "--orders", "40", "--skus", "3")
			if !strings.Contains(progress, "placed 40  paid 40  errors 0") {
				t.Errorf("no progress line on stderr: %q", progress)
			}
			if len(s.Errors) != 0 {
				t.Fatalf("errors: %v", s.Errors)
			}
			rb := s.ReadBack
			tests := []struct {
				what      string
				got, want int
			}{
				{"buyers", s.Buyers, buyers},
				{"loops", s.Loops, orders},
				{"placed", s.Placed, orders},
				{"paid", s.Paid, orders},
				{"loop latencies", s.Loop.Count, orders},
				{"pay latencies", s.Steps["pay"].Count, orders},
				{"orders read back", rb.Orders, s.Placed},
				{"paid read back", rb.Paid, s.Paid},
				{"pending read back", rb.Pending, 0},
				{"units sold", rb.UnitsPaid, orders},
				{"put in", rb.PutIn, 3 * orders},
				{"on hand", rb.OnHand, 3*orders - orders},
				{"reserved", rb.Reserved, 0},
				{"oversold", rb.Oversold, 0},
				{"dead letters", int(rb.Sync.DeadLetters), 0},
				{"failed consumer attempts", int(rb.Sync.Failed), 0},
			}
			for _, tc := range tests {
				if tc.got != tc.want {
					t.Errorf("%s = %d, want %d", tc.what, tc.got, tc.want)
				}
			}
			if !rb.StockAddsUp || !rb.Sync.Settled {
				t.Errorf("read back: %+v", rb)
			}
			// The server's write counters came from its /metrics: every
			// paid order committed something, and the per-order figure is
			// their quotient.
			if w := s.Writes; w == nil || w.Commits <= 0 || w.BusySeconds <= 0 || w.CommitsPerOrder != w.Commits/float64(s.Paid) {
				t.Errorf("server writes: %+v", w)
			}
		})
	}
}

// TestBenchCheckoutPayReference runs the pay comparison on both engines
// against two in-process servers, one paying through the payments module
// and one started with --pay-inline-sandbox: every loop of every round is
// placed and paid on both, both read back whole, and the reference really
// paid inline (its orders have no payment; the other's have one).
func TestBenchCheckoutPayReference(t *testing.T) {
	for name, args := range engines(t) {
		t.Run(name, func(t *testing.T) {
			payments, _ := startInProcess(t, benchAdmin, append(args(t), "--relay-poll", "50ms")...)
			inline, _ := startInProcess(t, benchAdmin, append(args(t), "--relay-poll", "50ms", "--pay-inline-sandbox")...)
			const orders, rounds = 24, 2
			var cmp PayComparison
			progress := runBench(t, benchAdmin, &cmp, "checkout", "--url", payments.URL(), "--pay-reference", inline.URL(),
				"--buyers", "4", "--orders", "24", "--rounds", "2", "--skus", "2")
			if !strings.Contains(progress, "round 2/2 payments: placed 12  paid 12  errors 0") ||
				!strings.Contains(progress, "round 1/2 inline  : placed 12  paid 12  errors 0") {
				t.Errorf("no progress lines for the rounds on stderr: %q", progress)
			}
			for _, side := range []struct {
				name string
				s    *PaySide
				c    *webtest.Client
				want int // GET /api/v1/admin/orders/{id}/payment of a paid order
			}{{"payments", cmp.Payments, payments, http.StatusOK}, {"inline", cmp.Inline, inline, http.StatusNotFound}} {
				checkSide(t, side.name, side.s, orders, rounds,
					countCheck{"loop latencies", side.s.Loop.Count, orders},
					countCheck{"units sold", side.s.ReadBack.UnitsPaid, orders})
				login := side.c.Do("POST", "/api/v1/auth/login", map[string]string{"email": benchAdmin["MERCATO_BOOTSTRAP_ADMIN_EMAIL"],
					"password": benchAdmin["MERCATO_BOOTSTRAP_ADMIN_PASSWORD"]})
				login.WantStatus(t, http.StatusOK)
				admin := side.c.WithToken(login.Field("token").(string))
				list := admin.Do("GET", "/api/v1/admin/orders?limit=1&status=paid", nil)
				list.WantStatus(t, http.StatusOK)
				id, _ := list.Field("items.0.id").(string)
				if got := admin.Do("GET", "/api/v1/admin/orders/"+id+"/payment", nil).Status; id == "" || got != side.want {
					t.Errorf("%s: the payment of paid order %q: %d, want %d", side.name, id, got, side.want)
				}
			}
			if want := cmp.Payments.PaidPerSec / cmp.Inline.PaidPerSec; cmp.Ratio != want || len(cmp.RoundRatios) != rounds || cmp.Buyers != 4 || cmp.Rounds != rounds {
				t.Errorf("ratio %v, want %v; buyers %d, rounds %d", cmp.Ratio, want, cmp.Buyers, cmp.Rounds)
			}
		})
	}
}

// countCheck is one count a bench test asserts.
type countCheck struct {
	what      string
	got, want int
}

// checkSide asserts what every side of a comparison (pay reference,
// coupon) must show: no errors; every loop placed, paid and read back in
// its rounds; no dead letter; the stock adding up and the consumers
// settled. extra are the side's own counts.
func checkSide(t *testing.T, name string, s *PaySide, orders, rounds int, extra ...countCheck) {
	t.Helper()
	rb := s.ReadBack
	if len(s.Errors) != 0 {
		t.Fatalf("%s: errors %v", name, s.Errors)
	}
	checks := append([]countCheck{
		{"loops", s.Loops, orders},
		{"placed", s.Placed, orders},
		{"paid", s.Paid, orders},
		{"rounds", len(s.RoundsPerSec), rounds},
		{"orders read back", rb.Orders, orders},
		{"paid read back", rb.Paid, orders},
		{"dead letters", int(rb.Sync.DeadLetters), 0},
	}, extra...)
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %s = %d, want %d", name, c.what, c.got, c.want)
		}
	}
	if !rb.StockAddsUp || !rb.Sync.Settled || s.PaidPerSec <= 0 {
		t.Errorf("%s: %+v; read back %+v", name, s, rb)
	}
}

// TestBenchFlashSaleSellsExactlyTheStock races more guest buyers than
// units on both engines: exactly the stock is sold, everyone else is told
// out_of_stock, nothing errs, and the read-back shows no oversell.
func TestBenchFlashSaleSellsExactlyTheStock(t *testing.T) {
	for name, args := range engines(t) {
		t.Run(name, func(t *testing.T) {
			c, _ := startInProcess(t, benchAdmin, args(t)...)
			const buyers, stock = 60, 20
			var s FlashSaleSummary
			runBench(t, benchAdmin, &s, "flash-sale", "--url", c.URL(), "--buyers", "60", "--stock", "20")
			rb := s.ReadBack
			tests := []struct {
				what      string
				got, want int
			}{
				{"attempts", s.Attempts, buyers},
				{"decided", s.Decided, buyers},
				{"sold", s.Sold, stock},
				{"out of stock", s.OutOfStock, buyers - stock},
				{"errors", s.ErrorCount, 0},
				{"orders read back", rb.Orders, stock},
				{"units in pending orders", rb.UnitsPending, stock},
				{"available", rb.Available, 0},
				{"reserved", rb.Reserved, stock},
				{"oversold", rb.Oversold, 0},
			}
			for _, tc := range tests {
				if tc.got != tc.want {
					t.Errorf("%s = %d, want %d", tc.what, tc.got, tc.want)
				}
			}
			if !rb.StockAddsUp {
				t.Errorf("stock does not add up: %+v", rb)
			}
		})
	}
}

// TestBenchReference measures the reference on both engines: commits were
// counted, and on PostgreSQL pgbench either ran or the summary says why not.
func TestBenchReference(t *testing.T) {
	for name, args := range engines(t) {
		t.Run(name, func(t *testing.T) {
			a := args(t)
			var db []string
			if name == "postgres" {
				db = a[2:4] // --database-url URL
			} else {
				db = a[0:2] // --data-dir DIR
			}
			var ref Reference
			runBench(t, nil, &ref, append([]string{"reference", "--reference-duration", "300ms", "--reference-clients", "2"}, db...)...)
			if ref.Engine != name || ref.Commits <= 0 || ref.CommitsPerSec <= 0 {
				t.Fatalf("reference: %+v", ref)
			}
			if name == "postgres" && ref.PgbenchTPS <= 0 && ref.PgbenchNote == "" {
				t.Errorf("no pgbench figure and no note saying why: %+v", ref)
			}
		})
	}
}

func TestBenchCommandLine(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no scenario", []string{"bench"}},
		{"unknown scenario", []string{"bench", "stampede"}},
		{"no buyers", []string{"bench", "checkout", "--buyers", "0"}},
		{"reference without a database", []string{"bench", "reference"}},
		{"no rounds", []string{"bench", "checkout", "--pay-reference", "http://127.0.0.1:1", "--rounds", "0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut syncBuffer
			err := run(context.Background(), tc.args, func(string) string { return "" }, &out, &errOut)
			if err == nil || exitCode(err) != 2 {
				t.Fatalf("err = %v, want a usage error", err)
			}
		})
	}
}

// TestServePayInlineSandboxRefusedWithStripe: the pay reference's inline
// test sandbox never runs in a shop that takes real money.
func TestServePayInlineSandboxRefusedWithStripe(t *testing.T) {
	var out, errOut syncBuffer
	env := map[string]string{"MERCATO_STRIPE_KEY": "sk_test_123"}
	err := run(context.Background(), []string{"serve", "--data-dir", t.TempDir(), "--pay-inline-sandbox"}, func(k string) string { return env[k] }, &out, &errOut)
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "MERCATO_STRIPE_KEY") {
		t.Fatalf("err = %v, want a usage error naming MERCATO_STRIPE_KEY", err)
	}
}

// benchEngines is engines for benchmarks: the serve arguments and the
// reference flags naming the same database.
func benchEngines(b *testing.B) map[string]func() (serve []string, ref referenceFlags) {
	return map[string]func() ([]string, referenceFlags){
		"sqlite": func() ([]string, referenceFlags) {
			dir := b.TempDir()
			return []string{"--data-dir", dir}, referenceFlags{dataDir: dir}
		},
		"postgres": func() ([]string, referenceFlags) {
			u := sqldbtest.PostgresURL(b)
			return []string{"--data-dir", b.TempDir(), "--database-url", u}, referenceFlags{databaseURL: u}
		},
	}
}

// BenchmarkLoadCheckout runs `mercato bench checkout` for b.N orders
// (32 buyers, 8 SKUs) against an in-process server, then the database's
// reference in the same run: paid orders/s next to one-row commits/s (and
// pgbench -N's tps at 32 clients on PostgreSQL when it is on PATH). On
// SQLite it logs the writer's statements per paid order by query text.
//
//	go test -run '^$' -bench LoadCheckout -benchtime 3000x ./cmd/mercato/
func BenchmarkLoadCheckout(b *testing.B) {
	for name, eng := range benchEngines(b) {
		b.Run(name, func(b *testing.B) {
			serve, ref := eng()
			c, _ := startInProcess(b, benchAdmin, append(serve, "--profile-statements")...)
			ref.clients, ref.duration = 32, 3*time.Second
			cfg := benchCommon{url: c.URL(), buyers: 32, settle: 2 * time.Minute, ref: ref,
				adminEmail: benchAdmin["MERCATO_BOOTSTRAP_ADMIN_EMAIL"], adminPassword: benchAdmin["MERCATO_BOOTSTRAP_ADMIN_PASSWORD"]}
			b.ResetTimer()
			s, err := benchCheckout(context.Background(), cfg, 0, b.N, 8, io.Discard)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if s.Paid != b.N || s.ReadBack.Orders != b.N || !s.ReadBack.StockAddsUp {
				b.Fatalf("paid %d, read back %d of %d; stock adds up: %v; errors %v", s.Paid, s.ReadBack.Orders, b.N, s.ReadBack.StockAddsUp, s.Errors)
			}
			b.ReportMetric(s.PaidPerSec, "paid-orders/s")
			b.ReportMetric(s.Loop.P99, "loop-p99-ms")
			b.ReportMetric(s.Reference.CommitsPerSec, "ref-commits/s")
			b.ReportMetric(s.RatioToReference, "x-ref")
			if s.Writes != nil {
				b.ReportMetric(s.Writes.CommitsPerOrder, "commits/order")
				b.ReportMetric(s.Writes.BusyMsPerOrder, "writer-ms/order")
				if s.Writes.StmtsPerOrder > 0 {
					b.ReportMetric(s.Writes.StmtsPerOrder, "writer-stmts/order")
				}
				if s.Writes.ByQuery != nil { // to stderr: go test cuts a benchmark's log after 10 lines
					fmt.Fprintf(os.Stderr, "%s: %d paid orders\n", b.Name(), s.Paid)
					printServerWrites(os.Stderr, s.Writes)
				}
			}
			if s.Reference.PgbenchTPS > 0 {
				b.ReportMetric(s.Reference.PgbenchTPS, "pgbench-tps")
				b.ReportMetric(s.RatioToPgbench, "x-pgbench")
			}
		})
	}
}

// BenchmarkLoadFlashSale runs `mercato bench flash-sale` (1,000 guest
// buyers for 500 units) b.N times against an in-process server: attempts
// decided/s next to the database's one-row commits/s of the same run.
//
//	go test -run '^$' -bench LoadFlashSale -benchtime 3x ./cmd/mercato/
func BenchmarkLoadFlashSale(b *testing.B) {
	for name, eng := range benchEngines(b) {
		b.Run(name, func(b *testing.B) {
			serve, ref := eng()
			c, _ := startInProcess(b, benchAdmin, serve...)
			ref.clients, ref.duration = 32, 3*time.Second
			cfg := benchCommon{url: c.URL(), buyers: 1000, settle: 2 * time.Minute,
				adminEmail: benchAdmin["MERCATO_BOOTSTRAP_ADMIN_EMAIL"], adminPassword: benchAdmin["MERCATO_BOOTSTRAP_ADMIN_PASSWORD"]}
			var decided float64
			for range b.N {
				s, err := benchFlashSale(context.Background(), cfg, 500, io.Discard)
				if err != nil {
					b.Fatal(err)
				}
				if s.Sold != 500 || s.ErrorCount != 0 || s.ReadBack.Oversold != 0 || s.ReadBack.Orders != 500 {
					b.Fatalf("sold %d, errors %v, oversold %d, read back %d", s.Sold, s.Errors, s.ReadBack.Oversold, s.ReadBack.Orders)
				}
				decided += s.DecidedPerSec
			}
			r, err := measureReference(context.Background(), ref, io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(decided/float64(b.N), "decided/s")
			b.ReportMetric(r.CommitsPerSec, "ref-commits/s")
			b.ReportMetric(decided/float64(b.N)/r.CommitsPerSec, "x-ref")
		})
	}
}

// BenchmarkLoadCheckoutPay runs `mercato bench checkout --pay-reference`
// for b.N orders on each of two in-process servers, in 4 alternating
// rounds: paid orders/s with the payments module paying next to the same
// loop on a server whose orders module pays with its inline sandbox
// (serve --pay-inline-sandbox), both measured in the same run, and their
// ratio (issue #17: ≥ 0.9×).
//
//	go test -run '^$' -bench LoadCheckoutPay -benchtime 2000x ./cmd/mercato/
func BenchmarkLoadCheckoutPay(b *testing.B) {
	for name, eng := range benchEngines(b) {
		b.Run(name, func(b *testing.B) {
			serve, _ := eng()
			payments, _ := startInProcess(b, benchAdmin, serve...)
			serve, _ = eng()
			inline, _ := startInProcess(b, benchAdmin, append(serve, "--pay-inline-sandbox")...)
			cfg := benchCommon{url: payments.URL(), buyers: 32, settle: 2 * time.Minute,
				adminEmail: benchAdmin["MERCATO_BOOTSTRAP_ADMIN_EMAIL"], adminPassword: benchAdmin["MERCATO_BOOTSTRAP_ADMIN_PASSWORD"]}
			b.ResetTimer()
			cmp, err := benchPayReference(context.Background(), cfg, payReferenceFlags{url: inline.URL(), rounds: 4}, 0, b.N, 8, io.Discard)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			for _, s := range []*PaySide{cmp.Payments, cmp.Inline} {
				if s.Paid != b.N || s.ReadBack.Orders != b.N || !s.ReadBack.StockAddsUp {
					b.Fatalf("%s: paid %d, read back %d of %d; stock adds up: %v; errors %v", s.URL, s.Paid, s.ReadBack.Orders, b.N, s.ReadBack.StockAddsUp, s.Errors)
				}
			}
			b.ReportMetric(cmp.Payments.PaidPerSec, "paid-orders/s")
			b.ReportMetric(cmp.Inline.PaidPerSec, "inline-ref-paid-orders/s")
			b.ReportMetric(cmp.Ratio, "x-inline")
			rs := slices.Sorted(slices.Values(cmp.RoundRatios))
			b.ReportMetric(rs[0], "x-inline-round-min")
			b.ReportMetric(rs[len(rs)-1], "x-inline-round-max")
			b.ReportMetric(cmp.Payments.Steps["pay"].P50, "pay-p50-ms")
			b.ReportMetric(cmp.Inline.Steps["pay"].P50, "inline-pay-p50-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// checkoutBudget is what one paid order of the checkout loop (cart → item
// → checkout → pay, and the consumers of its events) may cost the writer
// at most, one buyer at a time: every request its own commit. The
// statements of the orders' own work (work: every table but the
// bookkeeping ones of batchBookkeeping) count the same from run to run;
// the consumers' and the relay's bookkeeping depends on how their batches
// fall (a few per cent from run to run), and so do the commits. A change
// that adds a statement to the work, or more than the slack to the rest,
// fails TestCheckoutWriteBudget; one that cuts some lowers these numbers.
var checkoutBudget = map[string]struct{ commits, work, statements float64 }{
	// 2026-12-03 before the cuts: 10.70–10.87 commits, 51 work statements,
	// 159.9–160.3 in all; PostgreSQL, whose consumers commit per
	// delivery: 28.4–28.8 commits. The order read in one statement: 47
	// work; the outbox's sequences and the timeline at commit: 45; the
	// added item's variant read before its unit: 44 (147–154 in all); the
	// consumers' bookkeeping merged per transaction: 103 in all; their
	// inbox and positions lookups one statement: 83. Commits and the
	// whole count move with how the consumers' batches fall (10.3–11.2
	// commits, 83–87 statements seen, the latter with the package's other
	// tests running): their budgets have that slack, the work's has none.
	"sqlite":   {commits: 12, work: 44, statements: 94},
	"postgres": {commits: 30},
}

// batchBookkeeping are the tables whose statements come per batch or per
// transaction, not per order: the consumers' inbox, positions and stats,
// the outbox's rows and published marks, the webhooks' endpoint list, job
// leases.
var batchBookkeeping = map[string]bool{"inbox": true, "consumer_positions": true, "consumer_stats": true,
	"outbox": true, "webhooks_endpoints": true, "jobs_leases": true}

// TestCheckoutWriteBudget runs paid orders one after the other through the
// real server and counts, from its /metrics, the writer's commits (both
// engines) and statements (SQLite) per paid order against checkoutBudget;
// its log has the statements by query.
func TestCheckoutWriteBudget(t *testing.T) {
	for name, args := range engines(t) {
		t.Run(name, func(t *testing.T) {
			c, _ := startInProcess(t, benchAdmin, append(args(t), "--profile-statements", "--relay-poll", "50ms")...)
			var s CheckoutSummary
			runBench(t, benchAdmin, &s, "checkout", "--url", c.URL(), "--buyers", "1", "--orders", "30", "--skus", "2")
			w := s.Writes
			if len(s.Errors) != 0 || s.Paid != 30 || w == nil {
				t.Fatalf("paid %d of 30, errors %v, writes %+v", s.Paid, s.Errors, w)
			}
			var work float64
			for _, q := range w.ByQuery {
				f := strings.Fields(q.Kind)
				if len(f) < 2 || !batchBookkeeping[f[len(f)-1]] {
					work += q.PerOrder
				}
			}
			var table strings.Builder
			printServerWrites(&table, w)
			t.Logf("per paid order: %.2f commits, %.1f statements, %.2f of them the orders' work\n%s", w.CommitsPerOrder, w.StmtsPerOrder, work, table.String())
			budget := checkoutBudget[name]
			if w.CommitsPerOrder > budget.commits {
				t.Errorf("%.2f commits per paid order, budget %.2f", w.CommitsPerOrder, budget.commits)
			}
			if name != "sqlite" {
				return
			}
			if w.StmtsPerOrder <= 0 || w.StmtsPerOrder > budget.statements {
				t.Errorf("%.1f writer statements per paid order, budget %.1f", w.StmtsPerOrder, budget.statements)
			}
			if work > budget.work+0.1 { // a tenth for the rare event (low stock) of a run
				t.Errorf("%.2f statements of the orders' work per paid order, budget %.0f", work, budget.work)
			}
		})
	}
}
