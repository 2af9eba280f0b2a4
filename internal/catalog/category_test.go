package catalog

import (
	"net/http"
	"slices"
	"testing"

	"mercato/internal/platform/web/webtest"
)

func TestCategoryTree(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, e *env) {
		root := e.category("Home", "")
		kitchen := e.category("Kitchen", root.ID)
		knives := e.category("Knives", kitchen.ID)
		garden := e.category("Garden", "")
		if kitchen.ParentID == nil || *kitchen.ParentID != root.ID || root.ParentID != nil {
			t.Fatalf("parents: %+v %+v", root, kitchen)
		}
		p := e.create(withField(product("Chef knife", "KN-1"), "category_ids", []string{knives.ID, garden.ID}))
		d := e.create(withField(withField(product("Draft pan", "PAN-1"), "category_ids", []string{kitchen.ID}), "status", "draft"))

		for _, tc := range []struct {
			name string
			id   string
			body any
		}{
			{"under itself", root.ID, map[string]any{"parent_id": root.ID}},
			{"under its grandchild", root.ID, map[string]any{"parent_id": knives.ID}},
			{"under its child", kitchen.ID, map[string]any{"parent_id": knives.ID}},
			{"under nothing known", kitchen.ID, map[string]any{"parent_id": "nope"}},
			{"empty name", kitchen.ID, map[string]any{"name": " "}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pr := webtest.AssertProblem(t, e.operator.Do("PATCH", "/api/v1/admin/categories/"+tc.id, tc.body),
					http.StatusUnprocessableEntity, "validation_failed")
				if len(pr.Errors) != 1 {
					t.Errorf("errors %+v", pr.Errors)
				}
			})
		}
		webtest.AssertProblem(t, e.operator.Do("POST", "/api/v1/admin/categories", map[string]any{"name": "X", "parent_id": "nope"}),
			http.StatusUnprocessableEntity, "validation_failed")

		// Rename, move to the root (null), move back.
		r := e.operator.Do("PATCH", "/api/v1/admin/categories/"+kitchen.ID, map[string]any{"name": "Cooking"})
		r.WantStatus(t, http.StatusOK)
		if r.Field("name") != "Cooking" || r.Field("parent_id") != root.ID || r.Field("version") != float64(2) {
			t.Fatalf("rename: %s", r.Body)
		}
		r = e.operator.Do("PATCH", "/api/v1/admin/categories/"+kitchen.ID, []byte(`{"parent_id":null}`))
		r.WantStatus(t, http.StatusOK)
		if r.Field("parent_id") != nil {
			t.Fatalf("move to the root: %s", r.Body)
		}
		e.operator.Do("PATCH", "/api/v1/admin/categories/"+kitchen.ID, map[string]any{"parent_id": root.ID}).WantStatus(t, http.StatusOK)
		evs := e.events()
		if last := evs[len(evs)-1]; last.Type != "category.updated" || !slices.Equal(anyStrings(last.Data["changed"]), []string{"parent_id"}) {
			t.Fatalf("last event %+v", last)
		}

		// Counts cover the subtree; the public counts active products only.
		counts := func(c *clientT, path string) map[string]float64 {
			r := c.Do("GET", path, nil)
			r.WantStatus(t, http.StatusOK)
			out := map[string]float64{}
			for _, it := range r.Field("items").([]any) {
				m := it.(map[string]any)
				out[m["id"].(string)] = m["product_count"].(float64)
			}
			return out
		}
		pub := counts(e.anon, "/api/v1/categories")
		if pub[root.ID] != 1 || pub[kitchen.ID] != 1 || pub[knives.ID] != 1 || pub[garden.ID] != 1 {
			t.Fatalf("public counts %v", pub)
		}
		staff := counts(e.cs, "/api/v1/admin/categories")
		if staff[root.ID] != 2 || staff[kitchen.ID] != 2 || staff[knives.ID] != 1 {
			t.Fatalf("staff counts %v", staff)
		}
		r = e.anon.Do("GET", "/api/v1/categories", nil)
		if r.Header.Get("ETag") == "" || e.anon.Do("GET", "/api/v1/categories", nil, "If-None-Match: "+r.Header.Get("ETag")).Status != 304 {
			t.Fatal("the category list is not cacheable")
		}

		// Delete only when empty.
		webtest.AssertProblem(t, e.operator.Do("DELETE", "/api/v1/admin/categories/"+root.ID, nil), http.StatusConflict, "conflict")
		webtest.AssertProblem(t, e.operator.Do("DELETE", "/api/v1/admin/categories/"+knives.ID, nil), http.StatusConflict, "conflict")
		e.operator.Do("PATCH", "/api/v1/admin/products/"+p.ID, map[string]any{"category_ids": []string{garden.ID}}).WantStatus(t, http.StatusOK)
		if r := e.operator.Do("DELETE", "/api/v1/admin/categories/"+knives.ID, nil); r.Status != http.StatusNoContent {
			t.Fatalf("delete of an empty category: %d %s", r.Status, r.Body)
		}
		webtest.AssertProblem(t, e.operator.Do("DELETE", "/api/v1/admin/categories/"+knives.ID, nil), http.StatusNotFound, "not_found")
		_ = d
		if got := e.eventTypes(); got[len(got)-1] != "category.deleted" {
			t.Fatalf("events %v", got)
		}
	})
}
