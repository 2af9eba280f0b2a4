package logistics

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web/webtest"
)

// TestNotes: staff with orders.write add notes, staff with orders.read
// read them oldest first; customers cannot; an unknown order is 404; a
// blank or over-long note 422.
func TestNotes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.placed(e.alice, "TEE", 1)
		for _, body := range []string{"Called the customer", "Asked for gift wrap"} {
			r := e.cs.Do("POST", "/api/v1/admin/orders/"+id+"/notes", map[string]any{"body": "  " + body + " "})
			r.WantStatus(t, http.StatusCreated)
			if r.Field("body") != body || r.Field("author_id") != "u-cs" || r.Field("order_id") != id {
				t.Fatalf("note: %s", r.Body)
			}
		}
		webtest.AssertProblem(t, e.cs.Do("POST", "/api/v1/admin/orders/"+id+"/notes", map[string]any{"body": " "}), http.StatusUnprocessableEntity, "validation_failed")
		webtest.AssertProblem(t, e.cs.Do("POST", "/api/v1/admin/orders/"+id+"/notes", map[string]any{"body": strings.Repeat("é", 2001)}),
			http.StatusUnprocessableEntity, "validation_failed")
		webtest.AssertProblem(t, e.cs.Do("POST", "/api/v1/admin/orders/nope/notes", map[string]any{"body": "x"}), http.StatusNotFound, "not_found")
		webtest.AssertProblem(t, e.alice.Do("POST", "/api/v1/admin/orders/"+id+"/notes", map[string]any{"body": "x"}), http.StatusForbidden, "forbidden")
		webtest.AssertProblem(t, e.alice.Do("GET", "/api/v1/admin/orders/"+id+"/notes", nil), http.StatusForbidden, "forbidden")
		webtest.AssertProblem(t, e.op.Do("GET", "/api/v1/admin/orders/nope/notes", nil), http.StatusNotFound, "not_found")
		list := e.op.Do("GET", "/api/v1/admin/orders/"+id+"/notes", nil)
		list.WantStatus(t, http.StatusOK)
		if list.Field("items.0.body") != "Called the customer" || list.Field("items.1.body") != "Asked for gift wrap" || list.Field("items.2") != nil {
			t.Fatalf("notes: %s", list.Body)
		}
	})
}

// TestPrivacy: a customer's export holds their returns; erasure clears
// their reasons and keeps the lines and amounts.
func TestPrivacy(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.delivered("MUG", 1)
		e.alice.Do("POST", "/api/v1/orders/"+id+"/returns", map[string]any{"reason": "My flat at 3 Elm St is too small"}).WantStatus(t, http.StatusCreated)
		ctx := context.Background()
		priv := e.svc.Module().Privacy
		got, err := priv.Export(ctx, "u-alice")
		if err != nil {
			t.Fatal(err)
		}
		if rs := got.([]Return); len(rs) != 1 || rs[0].OrderID != id || rs[0].Reason == "" {
			t.Fatalf("export: %+v", got)
		}
		if other, _ := priv.Export(ctx, "u-bob"); len(other.([]Return)) != 0 {
			t.Fatalf("bob's export holds %+v", other)
		}
		if err := e.db.InTx(ctx, func(tx *sqldb.Tx) error { return priv.Erase(ctx, tx, "u-alice") }); err != nil {
			t.Fatal(err)
		}
		got, _ = priv.Export(ctx, "u-alice")
		if rs := got.([]Return); rs[0].Reason != "erased" || rs[0].Refund.Amount() != 900 || len(rs[0].Lines) != 1 {
			t.Fatalf("after erasure: %+v", rs)
		}
	})
}
