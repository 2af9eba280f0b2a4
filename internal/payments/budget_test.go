package payments

import (
	"fmt"
	"net/http"
	"testing"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web/webtest"
)

// payBudgetStatements is K of TestPayWriteBudget: the writer statements a
// pay through the payments module may cost over the same pay through the
// orders module's inline sandbox: the write-ahead's two INSERTs and the
// capture's two UPDATEs (attempt, intent), less the read of the order the
// inline pay makes before its UPDATE (the module's is one UPDATE …
// RETURNING) — 9 against 6.
const payBudgetStatements = 3

// TestPayWriteBudget: a pay through the payments module (attempt recorded
// in its own unit, the sandbox called, the capture committed with
// order.paid) costs exactly one commit more than the same pay through the
// orders module's inline sandbox (the attempt's write-ahead), and at most
// payBudgetStatements writer statements more (SQLite counts them), counted
// with sqldb.DB.WriteStats over pays one at a time, with and without an
// Idempotency-Key.
func TestPayWriteBudget(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ref := e.inlineSandbox().WithToken("alice")
		body := map[string]any{"method": "sandbox", "token": "tok_success"}
		cost := func(c *webtest.Client, key string) sqldb.WriteStats {
			t.Helper()
			id := e.order(e.as("alice"), 2)
			var hdr []string
			if key != "" {
				hdr = append(hdr, "Idempotency-Key: "+key)
			}
			before := e.db.WriteStats()
			r := c.Do("POST", "/api/v1/orders/"+id+"/pay", body, hdr...)
			got := e.db.WriteStats().Sub(before)
			r.WantStatus(t, http.StatusOK)
			if lines, _ := r.Field("lines").([]any); len(lines) != 1 || r.Field("status") != "paid" {
				t.Fatalf("the pay's answer: status %v, lines %v, want paid with its one line", r.Field("status"), r.Field("lines"))
			}
			if st, ps := e.orderStatus(id); st != "paid" || ps != "paid" {
				t.Fatalf("order %s after the pay: %s/%s", id, st, ps)
			}
			return got
		}
		for i, tc := range []struct {
			name string
			key  bool
		}{{"with an Idempotency-Key", true}, {"without one", false}} {
			t.Run(tc.name, func(t *testing.T) {
				key := func(side string) string {
					if !tc.key {
						return ""
					}
					return fmt.Sprintf("budget-%s-%d", side, i)
				}
				viaPayments, viaInline := cost(e.as("alice"), key("p")), cost(ref, key("i"))
				t.Logf("payments: %+v; inline: %+v", viaPayments, viaInline)
				if got := viaPayments.Commits - viaInline.Commits; got != 1 {
					t.Errorf("commits: payments %d, inline %d: +%d, want +1", viaPayments.Commits, viaInline.Commits, got)
				}
				if viaPayments.Rollbacks != 0 || viaInline.Rollbacks != 0 {
					t.Errorf("rollbacks: payments %d, inline %d, want none", viaPayments.Rollbacks, viaInline.Rollbacks)
				}
				if e.db.Engine() != sqldb.SQLite {
					return // writer statements are counted on SQLite only
				}
				if got := viaPayments.Statements - viaInline.Statements; got > payBudgetStatements {
					t.Errorf("writer statements: payments %d, inline %d: +%d, want at most +%d",
						viaPayments.Statements, viaInline.Statements, got, payBudgetStatements)
				}
			})
		}
	})
}
