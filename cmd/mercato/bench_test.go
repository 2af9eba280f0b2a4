package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
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
		})
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
