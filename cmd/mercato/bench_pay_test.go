package main

import (
	"strings"
	"testing"
)

// TestBenchPayReferenceWrites: `bench checkout --pay-reference` reports
// each server's write path from its /metrics (commits, writer statements —
// SQLite counts them — and writer busy time, per paid order) and prints
// them with their difference. (What a pay costs exactly is counted by
// internal/payments' TestPayWriteBudget; here the consumers' batches make
// the per-order figures vary from run to run.)
func TestBenchPayReferenceWrites(t *testing.T) {
	payments, _ := startInProcess(t, benchAdmin, "--data-dir", t.TempDir(), "--relay-poll", "50ms")
	inline, _ := startInProcess(t, benchAdmin, "--data-dir", t.TempDir(), "--relay-poll", "50ms", "--pay-inline-sandbox")
	var cmp PayComparison
	runBench(t, benchAdmin, &cmp, "checkout", "--url", payments.URL(), "--pay-reference", inline.URL(),
		"--buyers", "2", "--orders", "8", "--rounds", "2", "--skus", "1")
	p, in := cmp.Payments.Writes, cmp.Inline.Writes
	if p == nil || in == nil {
		t.Fatalf("server writes: payments %+v, inline %+v; want both", p, in)
	}
	if cmp.Payments.Paid != 8 || cmp.Inline.Paid != 8 {
		t.Fatalf("paid: payments %d, inline %d, want 8 each", cmp.Payments.Paid, cmp.Inline.Paid)
	}
	for _, s := range []*ServerWrites{p, in} {
		if s.Commits <= 0 || s.Statements <= 0 || s.BusySeconds <= 0 || s.StmtsPerOrder != s.Statements/8 {
			t.Errorf("writes %+v: want commits, statements and busy time counted, per paid order", s)
		}
	}
	var out strings.Builder
	printPayComparison(&out, &cmp)
	if !strings.Contains(out.String(), "statements on the writer:") || !strings.Contains(out.String(), "writes per paid order, payments − inline:") {
		t.Errorf("the printed comparison has no writes:\n%s", out.String())
	}
}
