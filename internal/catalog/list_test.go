package catalog

import (
	"net/http"
	"strings"
	"testing"

	"mercato/internal/platform/web/webtest"
)

func ids(t *testing.T, r *webtest.Response) []string {
	t.Helper()
	r.WantStatus(t, http.StatusOK)
	var out []string
	for _, it := range r.Field("items").([]any) {
		out = append(out, it.(map[string]any)["title"].(string))
	}
	return out
}

func TestPublicList(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, e *env) {
		top := e.category("Electronics", "")
		phones := e.category("Phones", top.ID)
		e.create(withField(product("Cheap phone", "PH-1"), "category_ids", []string{phones.ID}))          // 1000
		e.create(withField(withField(product("Dear phone", "PH-2"), "category_ids", []string{phones.ID}), // 1000
			"variants", []any{map[string]any{"sku": "PH-2", "price": map[string]any{"amount": 90000, "currency": "EUR"}}}))
		e.create(withField(product("Radio", "RA-1"), "channels", []string{"pos"}))
		e.create(withField(product("Draft thing", "DR-1"), "status", "draft"))
		arch := e.create(product("Old thing", "OLD-1"))
		e.operator.Do("PATCH", "/api/v1/admin/products/"+arch.ID, map[string]any{"status": "archived"}).WantStatus(t, 200)

		tests := []struct {
			query string
			want  string
		}{
			{"", "Radio,Dear phone,Cheap phone"},
			{"?category=" + top.ID, "Dear phone,Cheap phone"},
			{"?category=unknown", ""},
			{"?min_price=5000", "Dear phone"},
			{"?max_price=5000", "Radio,Cheap phone"},
			{"?min_price=0&max_price=1000", "Radio,Cheap phone"},
			{"?in_stock=true", "Radio,Dear phone,Cheap phone"},
			{"?in_stock=false", ""},
			{"?channel=pos", "Radio"},
			{"?channel=web", "Dear phone,Cheap phone"},
			{"?q=phone", "Dear phone,Cheap phone"}, // no index: a LIKE on title and SKU
			{"?q=ra-1", "Radio"},
		}
		for _, tc := range tests {
			t.Run(tc.query, func(t *testing.T) {
				if got := strings.Join(ids(t, e.anon.Do("GET", "/api/v1/products"+tc.query, nil)), ","); got != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
			})
		}
		// Pages by key.
		r := e.anon.Do("GET", "/api/v1/products?limit=2", nil)
		first := ids(t, r)
		next, _ := r.Field("next_cursor").(string)
		r2 := e.anon.Do("GET", "/api/v1/products?limit=2&cursor="+next, nil)
		if strings.Join(first, ",") != "Radio,Dear phone" || strings.Join(ids(t, r2), ",") != "Cheap phone" || r2.Field("next_cursor") != nil {
			t.Fatalf("pages %v then %s", first, r2.Body)
		}
		// The staff list sees every status and filters by it.
		if got := strings.Join(ids(t, e.cs.Do("GET", "/api/v1/admin/products?status=draft", nil)), ","); got != "Draft thing" {
			t.Fatalf("staff draft list %q", got)
		}
		if got := strings.Join(ids(t, e.cs.Do("GET", "/api/v1/admin/products?q=THING", nil)), ","); got != "Old thing,Draft thing" {
			t.Fatalf("staff q list %q", got)
		}
		for _, tc := range []struct{ path, field string }{
			{"/api/v1/products?min_price=abc", "min_price"},
			{"/api/v1/products?max_price=-5", "max_price"},
			{"/api/v1/products?min_price=9&max_price=1", "max_price"},
			{"/api/v1/products?in_stock=maybe", "in_stock"},
			{"/api/v1/products?limit=0", "limit"},
			{"/api/v1/products?cursor=bogus", "cursor"},
			{"/api/v1/products?channel=Big%20Shop", "channel"},
			{"/api/v1/admin/products?status=gone", "status"},
		} {
			t.Run(tc.path, func(t *testing.T) {
				c := e.anon
				if strings.Contains(tc.path, "admin") {
					c = e.cs
				}
				webtest.AssertFieldError(t, webtest.AssertProblem(t, c.Do("GET", tc.path, nil), 422, "validation_failed"), tc.field)
			})
		}
	})
}

// TestOpenAPI: the catalog's routes are in the OpenAPI document and its
// answers match the schemas the document gives.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t, openSQLite(t), Config{Index: newMemIndex()})
	spec := webtest.CheckOpenAPI(t, e.router)
	c := e.category("Root", "")
	body := withField(product("Documented", "DOC-1"), "category_ids", []string{c.ID})
	r := e.operator.Do("POST", "/api/v1/admin/products", body)
	r.WantStatus(t, http.StatusCreated)
	spec.ValidateResponse(t, "POST", "/api/v1/admin/products", r)
	id := r.Field("id").(string)
	for _, tc := range []struct {
		client        *clientT
		path, openapi string
	}{
		{e.anon, "/api/v1/products/" + id, "/api/v1/products/{id}"},
		{e.anon, "/api/v1/products", "/api/v1/products"},
		{e.anon, "/api/v1/products?q=doc", "/api/v1/products"},
		{e.anon, "/api/v1/categories", "/api/v1/categories"},
		{e.cs, "/api/v1/admin/products", "/api/v1/admin/products"},
		{e.cs, "/api/v1/admin/products/" + id, "/api/v1/admin/products/{id}"},
	} {
		r := tc.client.Do("GET", tc.path, nil)
		r.WantStatus(t, http.StatusOK)
		spec.ValidateResponse(t, "GET", tc.openapi, r)
	}
	r = e.operator.Do("POST", "/api/v1/admin/products/import", csvHeader+"h,T,,active,,,,,IMP-1,,100,EUR,,,\n", "Content-Type: text/csv")
	r.WantStatus(t, http.StatusOK)
	spec.ValidateResponse(t, "POST", "/api/v1/admin/products/import", r)
}
