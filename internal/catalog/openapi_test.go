package catalog

import (
	"net/http"
	"testing"

	"mercato/internal/platform/web/webtest"
)

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
