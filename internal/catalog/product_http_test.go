package catalog

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"mercato/internal/platform/web/webtest"
)

func TestProductLifecycle(t *testing.T) {
	forEachEngine(t, func() Config { return Config{Ratings: fixedRatings{}} }, func(t *testing.T, e *env) {
		root := e.category("Clothing", "")
		shirts := e.category("Shirts", root.ID)
		body := product("Linen shirt", "LS-1", "LS-2")
		body["status"] = "draft"
		body["category_ids"] = []string{shirts.ID}
		body["media"] = []map[string]string{{"url": "https://cdn.example.com/ls.jpg", "alt": "front"}}
		body["variants"].([]any)[0].(map[string]any)["compare_at_price"] = map[string]any{"amount": 1500, "currency": "EUR"}
		body["variants"].([]any)[0].(map[string]any)["weight_grams"] = 250
		r := e.operator.Do("POST", "/api/v1/admin/products", body)
		r.WantStatus(t, http.StatusCreated)
		var p Product
		r.Decode(t, &p)
		if p.ID == "" || p.Status != "draft" || p.TaxClass != "standard" || !slices.Equal(p.Channels, []string{"web"}) ||
			!slices.Equal(p.CategoryIDs, []string{shirts.ID}) || len(p.Variants) != 2 || p.Version != 1 {
			t.Fatalf("created product: %+v", p)
		}
		v := p.Variants[0]
		if v.ID == "" || v.SKU != "LS-1" || v.Price != eur(1000) || v.CompareAtPrice == nil || *v.CompareAtPrice != eur(1500) ||
			v.WeightGrams != 250 || v.Attributes["size"] != "M" {
			t.Fatalf("variant: %+v", v)
		}
		if got := e.eventTypes(); !slices.Equal(got, []string{"category.created", "category.created", "product.created"}) {
			t.Fatalf("events %v", got)
		}
		if ev := e.events()[2]; ev.AggregateID != p.ID || ev.Data["status"] != "draft" || len(ev.Data["variants"].([]any)) != 2 {
			t.Fatalf("product.created payload: %+v", ev)
		}

		// A draft is the staff's alone.
		webtest.AssertProblem(t, e.anon.Do("GET", "/api/v1/products/"+p.ID, nil), http.StatusNotFound, "not_found")
		r = e.cs.Do("GET", "/api/v1/admin/products/"+p.ID, nil)
		r.WantStatus(t, http.StatusOK)
		if r.Header.Get("ETag") != `"v1"` || r.Header.Get("Cache-Control") != "private, no-store" {
			t.Fatalf("staff read headers: %v", r.Header)
		}
		if r := e.cs.Do("GET", "/api/v1/admin/products/"+p.ID, nil, `If-None-Match: "v1"`); r.Status != http.StatusNotModified {
			t.Fatalf("staff conditional read: %d", r.Status)
		}

		// Listing it.
		r = e.operator.Do("PATCH", "/api/v1/admin/products/"+p.ID, map[string]any{"status": "active"})
		r.WantStatus(t, http.StatusOK)
		if r.Field("status") != "active" || r.Field("version") != float64(2) || r.Field("title") != "Linen shirt" {
			t.Fatalf("patched: %s", r.Body)
		}
		evs := e.events()
		last := evs[len(evs)-1]
		if last.Type != "product.updated" || !slices.Equal(anyStrings(last.Data["changed"]), []string{"status"}) {
			t.Fatalf("product.updated: %+v", last)
		}
		pub := e.anon.Do("GET", "/api/v1/products/"+p.ID, nil)
		pub.WantStatus(t, http.StatusOK)
		etag := pub.Header.Get("ETag")
		if etag == "" || !strings.HasPrefix(etag, `"2-`) || pub.Header.Get("Cache-Control") != "public, max-age=60" ||
			pub.Field("rating.count") != float64(0) || pub.Field("variants.1.sku") != "LS-2" {
			t.Fatalf("public read: %v %s", pub.Header, pub.Body)
		}
		if v, ok, _ := e.svc.cache.Get(t.Context(), productKey(p.ID)); !ok || !strings.HasPrefix(string(v), etag+"\n") {
			t.Fatalf("the public document is not cached: %q", v)
		}
		if r := e.anon.Do("GET", "/api/v1/products/"+p.ID, nil, "If-None-Match: "+etag); r.Status != http.StatusNotModified || len(r.Body) != 0 {
			t.Fatalf("conditional public read: %d %s", r.Status, r.Body)
		}
		// A change is seen at once (the cached document goes at commit).
		e.operator.Do("PATCH", "/api/v1/admin/products/"+p.ID, map[string]any{"title": "Linen shirt II",
			"variants": []any{map[string]any{"sku": "LS-2", "price": map[string]any{"amount": 900, "currency": "EUR"}}}}).WantStatus(t, http.StatusOK)
		pub2 := e.anon.Do("GET", "/api/v1/products/"+p.ID, nil, "If-None-Match: "+etag)
		pub2.WantStatus(t, http.StatusOK)
		if pub2.Field("title") != "Linen shirt II" || pub2.Header.Get("ETag") == etag || len(pub2.Field("variants").([]any)) != 1 ||
			pub2.Field("variants.0.id") != p.Variants[1].ID {
			t.Fatalf("after the change: %s", pub2.Body)
		}
		if n := e.count("catalog_variants"); n != 1 {
			t.Fatalf("%d variant rows, want 1", n)
		}
		// A patch that changes nothing emits nothing.
		before := len(e.events())
		e.operator.Do("PATCH", "/api/v1/admin/products/"+p.ID, map[string]any{"title": "Linen shirt II"}).WantStatus(t, http.StatusOK)
		if len(e.events()) != before {
			t.Fatal("a patch without change emitted an event")
		}

		// Delisting.
		e.operator.Do("PATCH", "/api/v1/admin/products/"+p.ID, map[string]any{"status": "archived"}).WantStatus(t, http.StatusOK)
		webtest.AssertProblem(t, e.anon.Do("GET", "/api/v1/products/"+p.ID, nil), http.StatusNotFound, "not_found")
		webtest.AssertProblem(t, e.operator.Do("PATCH", "/api/v1/admin/products/"+p.ID, map[string]any{"status": "draft"}),
			http.StatusConflict, "invalid_transition")
		webtest.AssertProblem(t, e.operator.Do("PATCH", "/api/v1/admin/products/nope", map[string]any{"title": "x"}),
			http.StatusNotFound, "not_found")
		webtest.AssertProblem(t, e.anon.Do("GET", "/api/v1/products/nope", nil), http.StatusNotFound, "not_found")
	})
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestProductBadInput(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, e *env) {
		e.create(product("Taken", "TAKEN-1"))
		price := func(amount string, currency string) []byte {
			return []byte(`{"title":"T","variants":[{"sku":"NEW-1","price":{"amount":` + amount + `,"currency":"` + currency + `"}}]}`)
		}
		tests := []struct {
			name   string
			body   any
			status int
			code   string
			field  string
		}{
			{"duplicate SKU", product("Other", "TAKEN-1"), 409, "sku_taken", "variants.0.sku"},
			{"SKU twice in one product", product("Twice", "TW-1", "TW-1"), 422, "validation_failed", "variants.1.sku"},
			{"negative price", price("-1", "EUR"), 422, "validation_failed", "variants.0.price.amount"},
			{"fractional price", price("10.5", "EUR"), 422, "validation_failed", "variants.0.price.amount"},
			{"overflowing price", price("99999999999999999999", "EUR"), 422, "validation_failed", "variants.0.price.amount"},
			{"unknown currency", price("100", "XYZ"), 422, "validation_failed", "variants.0.price.currency"},
			{"two currencies", []byte(`{"title":"T","variants":[{"sku":"A-1","price":{"amount":1,"currency":"EUR"}},` +
				`{"sku":"A-2","price":{"amount":1,"currency":"USD"}}]}`), 422, "validation_failed", "variants.1.price.currency"},
			{"no price", []byte(`{"title":"T","variants":[{"sku":"A-1"}]}`), 422, "validation_failed", "variants.0.price"},
			{"no variants", []byte(`{"title":"T","variants":[]}`), 422, "validation_failed", "variants"},
			{"no title", []byte(`{"title":" ","variants":[{"sku":"A-1","price":{"amount":1,"currency":"EUR"}}]}`), 422, "validation_failed", "title"},
			{"unknown category", withField(product("Cat", "C-1"), "category_ids", []string{"no-such-category"}), 422, "validation_failed", "category_ids.0"},
			{"bad status", withField(product("S", "S-1"), "status", "live"), 422, "validation_failed", "status"},
			{"media not http", withField(product("M", "M-1"), "media", []map[string]string{{"url": "javascript:alert(1)"}}), 422, "validation_failed", "media.0.url"},
			{"too much media", withField(product("M", "M-1"), "media", manyMedia(21)), 422, "validation_failed", "media"},
			{"bad channel", withField(product("Ch", "CH-1"), "channels", []string{"Web Shop"}), 422, "validation_failed", "channels.0"},
			{"title too long", withField(product(strings.Repeat("x", 201), "L-1"), "status", "draft"), 422, "validation_failed", "title"},
			{"unknown field", withField(product("U", "U-1"), "price", 1), 400, "malformed_request", "price"},
			{"bad SKU", product("B", "has space"), 422, "validation_failed", "variants.0.sku"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				products, events := e.count("catalog_products"), e.count("outbox")
				r := e.operator.Do("POST", "/api/v1/admin/products", tc.body)
				p := webtest.AssertProblem(t, r, tc.status, tc.code)
				webtest.AssertFieldError(t, p, tc.field)
				if e.count("catalog_products") != products || e.count("outbox") != events {
					t.Error("a refused create wrote rows")
				}
			})
		}
		// The same rules on a patch.
		p := e.create(product("Patched", "P-1"))
		webtest.AssertProblem(t, e.operator.Do("PATCH", "/api/v1/admin/products/"+p.ID,
			map[string]any{"variants": []any{map[string]any{"sku": "TAKEN-1", "price": map[string]any{"amount": 1, "currency": "EUR"}}}}),
			http.StatusConflict, "sku_taken")
		webtest.AssertProblem(t, e.operator.Do("PATCH", "/api/v1/admin/products/"+p.ID, map[string]any{"category_ids": []string{"x"}}),
			http.StatusUnprocessableEntity, "validation_failed")
		webtest.AssertProblem(t, e.operator.Do("PATCH", "/api/v1/admin/products/"+p.ID, map[string]any{"status": ""}),
			http.StatusUnprocessableEntity, "validation_failed")
	})
}

func withField(m map[string]any, k string, v any) map[string]any { m[k] = v; return m }

func manyMedia(n int) []map[string]string {
	var out []map[string]string
	for range n {
		out = append(out, map[string]string{"url": "https://cdn.example.com/x.jpg"})
	}
	return out
}

func TestProductAccess(t *testing.T) {
	e := newEnv(t, openSQLite(t), Config{})
	p := e.create(product("Guarded", "G-1"))
	tests := []struct {
		name   string
		c      func() *clientT
		method string
		path   string
		body   any
		status int
	}{
		{"anonymous create", func() *clientT { return e.anon }, "POST", "/api/v1/admin/products", product("X", "X-1"), 401},
		{"customer create", func() *clientT { return e.customer }, "POST", "/api/v1/admin/products", product("X", "X-1"), 403},
		{"customer service create", func() *clientT { return e.cs }, "POST", "/api/v1/admin/products", product("X", "X-1"), 403},
		{"anonymous patch", func() *clientT { return e.anon }, "PATCH", "/api/v1/admin/products/" + p.ID, map[string]any{"title": "Y"}, 401},
		{"customer patch", func() *clientT { return e.customer }, "PATCH", "/api/v1/admin/products/" + p.ID, map[string]any{"title": "Y"}, 403},
		{"customer staff read", func() *clientT { return e.customer }, "GET", "/api/v1/admin/products/" + p.ID, nil, 403},
		{"customer category", func() *clientT { return e.customer }, "POST", "/api/v1/admin/categories", map[string]any{"name": "Z"}, 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.c().Do(tc.method, tc.path, tc.body)
			code := map[int]string{401: "unauthorized", 403: "forbidden"}[tc.status]
			webtest.AssertProblem(t, r, tc.status, code)
		})
	}
	if got := e.count("catalog_products"); got != 1 {
		t.Fatalf("%d products, want 1", got)
	}
	if r := e.cs.Do("GET", "/api/v1/admin/products/"+p.ID, nil); r.Status != 200 {
		t.Fatalf("customer service read: %d", r.Status)
	}
	if r := e.admin.Do("PATCH", "/api/v1/admin/products/"+p.ID, map[string]any{"title": "By admin"}); r.Status != 200 {
		t.Fatalf("admin patch: %d", r.Status)
	}
}

// TestSKURace: racing creates of one SKU, on both engines — the unique
// index decides: one product, the others 409 sku_taken.
func TestSKURace(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, e *env) {
		const n = 16
		statuses := make([]int, n)
		codes := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r := e.operator.Do("POST", "/api/v1/admin/products", product("Racer", "RACE-1", "RACE-"+string(rune('A'+i))))
				statuses[i] = r.Status
				if r.Problem != nil {
					codes[i] = r.Problem.Code
				}
			})
		}
		wg.Wait()
		won := 0
		for i, s := range statuses {
			switch {
			case s == http.StatusCreated:
				won++
			case s == http.StatusConflict && codes[i] == "sku_taken":
			default:
				t.Errorf("request %d: %d %s", i, s, codes[i])
			}
		}
		if won != 1 || e.count("catalog_products") != 1 || e.count("catalog_variants") != 2 {
			t.Fatalf("%d won, %d products, %d variants; want 1, 1, 2", won, e.count("catalog_products"), e.count("catalog_variants"))
		}
		if got := e.eventTypes(); len(got) != 1 {
			t.Fatalf("events %v, want one product.created", got)
		}
	})
}

// TestCreateIsIdempotent: a create sent again with its Idempotency-Key
// answers the first answer and creates nothing more.
func TestCreateIsIdempotent(t *testing.T) {
	e := newEnv(t, openSQLite(t), Config{})
	first := e.operator.Do("POST", "/api/v1/admin/products", product("Once", "ONCE-1"), "Idempotency-Key: k-1")
	first.WantStatus(t, http.StatusCreated)
	again := e.operator.Do("POST", "/api/v1/admin/products", product("Once", "ONCE-1"), "Idempotency-Key: k-1")
	again.WantStatus(t, http.StatusCreated)
	if again.Header.Get("Idempotent-Replayed") != "true" || again.Field("id") != first.Field("id") {
		t.Fatalf("replay: %v %s", again.Header, again.Body)
	}
	if e.count("catalog_products") != 1 || len(e.events()) != 1 {
		t.Fatalf("%d products, %d events after a replay", e.count("catalog_products"), len(e.events()))
	}
	webtest.AssertProblem(t, e.operator.Do("POST", "/api/v1/admin/products", product("Other", "ONCE-2"), "Idempotency-Key: k-1"),
		http.StatusUnprocessableEntity, "idempotency_key_reused")
}
