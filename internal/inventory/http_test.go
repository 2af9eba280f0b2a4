package inventory

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

// TestStockHTTP: PUT and GET of a SKU's stock, its ledger, and refusals
// that write nothing.
func TestStockHTTP(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		const path = "/api/v1/admin/inventory/SKU-1"
		r := e.op.Do("PUT", path, map[string]any{"on_hand": 10})
		r.WantStatus(t, http.StatusOK)
		var lv Level
		r.Decode(t, &lv)
		want := Level{SKU: "SKU-1", OnHand: 10, Reserved: 0, Available: 10, Locations: []LocationLevel{{"default", 10, 0}}}
		if !equalLevel(lv, want) {
			t.Fatalf("PUT answered %+v, want %+v", lv, want)
		}
		if _, err := e.svc.Reserve(context.Background(), "o-1", "c", []Line{{SKU: "SKU-1", Quantity: 4}}, 0); err != nil {
			t.Fatal(err)
		}
		r = e.op.Do("GET", path, nil)
		r.WantStatus(t, http.StatusOK)
		r.Decode(t, &lv)
		want = Level{SKU: "SKU-1", OnHand: 10, Reserved: 4, Available: 6, Locations: []LocationLevel{{"default", 10, 4}}}
		if !equalLevel(lv, want) {
			t.Fatalf("GET answered %+v, want %+v", lv, want)
		}
		r = e.op.Do("PUT", path, map[string]any{"on_hand": 7, "location": "default"})
		r.WantStatus(t, http.StatusOK)
		if r.Field("available") != float64(3) {
			t.Fatalf("after lowering: %s", r.Body)
		}
		// The first receipt made SKU-1 available (restocked); lowering it
		// to 7 with 4 reserved keeps it available: no further event.
		if got := e.events(); !slices.Equal(got, []string{"inventory.restocked SKU-1", "inventory.reserved o-1"}) {
			t.Fatalf("events %v", got)
		}

		before := e.snapshot()
		long := strings.Repeat("x", MaxSKULen+1)
		for _, c := range []struct {
			name, method, path string
			body               any
			status             int
			code, field        string
		}{
			{"below reserved", "PUT", path, map[string]any{"on_hand": 3}, 409, "below_reserved", ""},
			{"negative", "PUT", path, map[string]any{"on_hand": -1}, 422, "validation_failed", "on_hand"},
			{"too large", "PUT", path, map[string]any{"on_hand": MaxOnHand + 1}, 422, "validation_failed", "on_hand"},
			{"missing on_hand", "PUT", path, map[string]any{"location": "default"}, 422, "validation_failed", "on_hand"},
			{"fraction", "PUT", path, `{"on_hand": 1.5}`, 422, "validation_failed", "on_hand"},
			{"unknown location", "PUT", path, map[string]any{"on_hand": 5, "location": "mars"}, 422, "validation_failed", "location"},
			{"bad location", "PUT", path, map[string]any{"on_hand": 5, "location": "Mars Base"}, 422, "validation_failed", "location"},
			{"location too long", "PUT", path, map[string]any{"on_hand": 5, "location": strings.Repeat("a", 33)}, 422, "validation_failed", "location"},
			{"sku too long", "PUT", "/api/v1/admin/inventory/" + long, map[string]any{"on_hand": 5}, 422, "validation_failed", "sku"},
			{"sku with a space", "PUT", "/api/v1/admin/inventory/a%20b", map[string]any{"on_hand": 5}, 422, "validation_failed", "sku"},
			{"unknown field", "PUT", path, map[string]any{"on_hand": 5, "onhand": 5}, 400, "malformed_request", ""},
			{"not json", "PUT", path, `{"on_hand":`, 400, "malformed_request", ""},
			{"null body", "PUT", path, `null`, 400, "malformed_request", ""},
			{"sku named locations", "PUT", "/api/v1/admin/inventory/locations", map[string]any{"on_hand": 5}, 422, "validation_failed", "sku"},
			{"unknown sku", "GET", "/api/v1/admin/inventory/NOPE", nil, 404, "not_found", ""},
			{"get sku too long", "GET", "/api/v1/admin/inventory/" + long, nil, 422, "validation_failed", "sku"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := e.op.Do(c.method, c.path, c.body)
				p := webtest.AssertProblem(t, r, c.status, c.code)
				if c.field != "" {
					webtest.AssertFieldError(t, p, c.field)
				}
			})
		}
		e.assertUnchanged(before)
		webtest.AssertProblem(t, e.cs.Do("PUT", path, map[string]any{"on_hand": 1}), 403, "forbidden")
		webtest.AssertProblem(t, e.cs.Do("GET", path, nil), 403, "forbidden")
		webtest.AssertProblem(t, e.anon.Do("GET", path, nil), 401, "unauthorized")
		e.assertUnchanged(before)

		// The ledger, newest first, in pages.
		r = e.op.Do("GET", path+"/ledger?limit=2", nil)
		r.WantStatus(t, http.StatusOK)
		var page struct {
			Items      []LedgerEntry `json:"items"`
			NextCursor string        `json:"next_cursor"`
		}
		r.Decode(t, &page)
		if len(page.Items) != 2 || page.NextCursor == "" {
			t.Fatalf("first page %s", r.Body)
		}
		all := page.Items
		r = e.op.Do("GET", path+"/ledger?limit=2&cursor="+page.NextCursor, nil)
		r.WantStatus(t, http.StatusOK)
		var page2 struct {
			Items      []LedgerEntry `json:"items"`
			NextCursor string        `json:"next_cursor"`
		}
		r.Decode(t, &page2)
		all = append(all, page2.Items...)
		if page2.NextCursor != "" {
			t.Fatalf("a third page: %s", r.Body)
		}
		var got []string
		for _, l := range all {
			got = append(got, l.Reason+" "+l.Reference+" "+itoa(l.OnHandDelta)+" "+itoa(l.ReservedDelta))
		}
		wantLedger := []string{"adjustment " + e.opID + " -3 0", "reservation o-1 0 4", "receipt " + e.opID + " 10 0"}
		if !slices.Equal(got, wantLedger) {
			t.Fatalf("ledger %v, want %v", got, wantLedger)
		}
		webtest.AssertProblem(t, e.op.Do("GET", path+"/ledger?cursor=bogus", nil), 422, "validation_failed")
		webtest.AssertProblem(t, e.op.Do("GET", path+"/ledger?limit=0", nil), 422, "validation_failed")
		if n := e.count("audit_log", "action = 'inventory.stock_set'"); n != 2 {
			t.Fatalf("%d audit entries for two changes of stock", n)
		}
	})
}

func itoa(n int64) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func equalLevel(a, b Level) bool {
	return a.SKU == b.SKU && a.OnHand == b.OnHand && a.Reserved == b.Reserved && a.Available == b.Available &&
		slices.Equal(a.Locations, b.Locations)
}

// TestLocationsHTTP: create and list locations; default always exists;
// stock at a new location.
func TestLocationsHTTP(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		const path = "/api/v1/admin/inventory/locations"
		r := e.op.Do("POST", path, map[string]any{"code": "berlin", "name": "Berlin warehouse"}, "Idempotency-Key: k1")
		r.WantStatus(t, http.StatusCreated)
		if r.Field("code") != "berlin" || r.Field("name") != "Berlin warehouse" {
			t.Fatalf("created %s", r.Body)
		}
		again := e.op.Do("POST", path, map[string]any{"code": "berlin", "name": "Berlin warehouse"}, "Idempotency-Key: k1")
		again.WantStatus(t, http.StatusCreated)
		if again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatal("the same key was not replayed")
		}
		before := e.snapshot()
		for _, c := range []struct {
			name   string
			body   any
			status int
			code   string
		}{
			{"taken", map[string]any{"code": "berlin", "name": "again"}, 409, "location_exists"},
			{"default taken", map[string]any{"code": "default", "name": "again"}, 409, "location_exists"},
			{"bad code", map[string]any{"code": "Berlin!", "name": "x"}, 422, "validation_failed"},
			{"code too long", map[string]any{"code": strings.Repeat("a", 33), "name": "x"}, 422, "validation_failed"},
			{"no name", map[string]any{"code": "paris"}, 422, "validation_failed"},
			{"name too long", map[string]any{"code": "paris", "name": strings.Repeat("n", 201)}, 422, "validation_failed"},
		} {
			t.Run(c.name, func(t *testing.T) {
				webtest.AssertProblem(t, e.op.Do("POST", path, c.body), c.status, c.code)
			})
		}
		// A recorded 409 is an idempotency record; nothing else changes.
		before["idempotency_records"] = e.count("idempotency_records", "")
		e.assertUnchanged(before)
		webtest.AssertProblem(t, e.cs.Do("POST", path, map[string]any{"code": "x", "name": "x"}), 403, "forbidden")

		r = e.op.Do("GET", path+"?limit=1", nil)
		r.WantStatus(t, http.StatusOK)
		if r.Field("items.0.code") != "berlin" || r.Field("next_cursor") == nil {
			t.Fatalf("first page %s", r.Body)
		}
		r = e.op.Do("GET", path+"?limit=1&cursor="+r.Field("next_cursor").(string), nil)
		if r.Field("items.0.code") != "default" || r.Field("next_cursor") != nil {
			t.Fatalf("second page %s", r.Body)
		}
		e.op.Do("PUT", "/api/v1/admin/inventory/SKU-2", map[string]any{"on_hand": 4, "location": "berlin"}).WantStatus(t, http.StatusOK)
		r = e.op.Do("PUT", "/api/v1/admin/inventory/SKU-2", map[string]any{"on_hand": 1})
		r.WantStatus(t, http.StatusOK)
		var lv Level
		r.Decode(t, &lv)
		if !equalLevel(lv, Level{SKU: "SKU-2", OnHand: 5, Available: 5, Locations: []LocationLevel{{"berlin", 4, 0}, {"default", 1, 0}}}) {
			t.Fatalf("two locations: %+v", lv)
		}
	})
}

// TestGuardHTTP: PUT and GET of a guard, its validation, and a low-stock
// threshold crossed by a PUT of stock (the event appended).
func TestGuardHTTP(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		const path = "/api/v1/admin/inventory/SKU-3/guard"
		r := e.op.Do("GET", path, nil)
		r.WantStatus(t, http.StatusOK)
		if string(r.Body) != `{"sku":"SKU-3"}` {
			t.Fatalf("no guard: %s", r.Body)
		}
		body := map[string]any{"per_customer_limit": 2, "sale_starts_at": "2030-01-02T10:00:00Z",
			"sale_ends_at": "2030-01-02T12:00:00Z", "low_stock_threshold": 5}
		r = e.op.Do("PUT", path, body)
		r.WantStatus(t, http.StatusOK)
		const want = `{"sku":"SKU-3","per_customer_limit":2,"sale_starts_at":"2030-01-02T10:00:00Z","sale_ends_at":"2030-01-02T12:00:00Z","low_stock_threshold":5}`
		if string(r.Body) != want {
			t.Fatalf("PUT answered %s", r.Body)
		}
		if r = e.op.Do("GET", path, nil); string(r.Body) != want {
			t.Fatalf("GET answered %s", r.Body)
		}
		before := e.snapshot()
		for _, c := range []struct {
			name  string
			body  any
			field string
		}{
			{"limit zero", map[string]any{"per_customer_limit": 0}, "per_customer_limit"},
			{"threshold negative", map[string]any{"low_stock_threshold": -1}, "low_stock_threshold"},
			{"window backwards", map[string]any{"sale_starts_at": "2030-01-02T12:00:00Z", "sale_ends_at": "2030-01-02T10:00:00Z"}, "sale_ends_at"},
			{"not a time", map[string]any{"sale_starts_at": "tomorrow"}, "sale_starts_at"},
		} {
			t.Run(c.name, func(t *testing.T) {
				webtest.AssertFieldError(t, webtest.AssertProblem(t, e.op.Do("PUT", path, c.body), 422, "validation_failed"), c.field)
			})
		}
		e.assertUnchanged(before)

		// Stock from 8 to 4 crosses the threshold of 5: one low_stock event.
		e.op.Do("PUT", "/api/v1/admin/inventory/SKU-3", map[string]any{"on_hand": 8}).WantStatus(t, http.StatusOK)
		e.op.Do("PUT", "/api/v1/admin/inventory/SKU-3", map[string]any{"on_hand": 4}).WantStatus(t, http.StatusOK)
		e.op.Do("PUT", "/api/v1/admin/inventory/SKU-3", map[string]any{"on_hand": 3}).WantStatus(t, http.StatusOK)
		if got := e.events(); !slices.Equal(got, []string{"inventory.restocked SKU-3", "inventory.low_stock SKU-3"}) {
			t.Fatalf("events %v", got)
		}
		// The sale window as a reservation sees it (clock: 03:04 UTC).
		_, err := e.svc.Reserve(context.Background(), "early", "c", []Line{{SKU: "SKU-3", Quantity: 1}}, 0)
		if p := problemOf(err); p.Status != 409 || p.Code != "sale_not_started" || !strings.Contains(p.Detail, "2030-01-02T10:00:00Z") {
			t.Fatalf("before the sale: %+v", p)
		}
		// Removing the guard: PUT {}.
		r = e.op.Do("PUT", path, map[string]any{})
		if r.WantStatus(t, http.StatusOK); string(r.Body) != `{"sku":"SKU-3"}` {
			t.Fatalf("cleared: %s", r.Body)
		}
		if _, err := e.svc.Reserve(context.Background(), "now", "c", []Line{{SKU: "SKU-3", Quantity: 1}}, 0); err != nil {
			t.Fatalf("without a guard: %v", err)
		}
	})
}

// TestOpenAPI: the module's routes are in a valid OpenAPI document and the
// answers match it.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t, sqldbtest.Open(t, sqldb.SQLite, sources()...), Config{})
	spec := webtest.CheckOpenAPI(t, e.router)
	for _, c := range []struct {
		method, path, pattern string
		body                  any
	}{
		{"PUT", "/api/v1/admin/inventory/SKU-4", "/api/v1/admin/inventory/{sku}", map[string]any{"on_hand": 1}},
		{"PUT", "/api/v1/admin/inventory/SKU-4", "/api/v1/admin/inventory/{sku}", map[string]any{"on_hand": -1}},
		{"GET", "/api/v1/admin/inventory/SKU-4", "/api/v1/admin/inventory/{sku}", nil},
		{"GET", "/api/v1/admin/inventory/SKU-4/ledger", "/api/v1/admin/inventory/{sku}/ledger", nil},
		{"PUT", "/api/v1/admin/inventory/SKU-4/guard", "/api/v1/admin/inventory/{sku}/guard", map[string]any{"per_customer_limit": 1}},
		{"GET", "/api/v1/admin/inventory/SKU-4/guard", "/api/v1/admin/inventory/{sku}/guard", nil},
		{"POST", "/api/v1/admin/inventory/locations", "/api/v1/admin/inventory/locations", map[string]any{"code": "x", "name": "X"}},
		{"GET", "/api/v1/admin/inventory/locations", "/api/v1/admin/inventory/locations", nil},
	} {
		spec.ValidateResponse(t, c.method, c.pattern, e.op.Do(c.method, c.path, c.body))
	}
}

func problemOf(err error) web.Problem { return web.ProblemOf(err) }
