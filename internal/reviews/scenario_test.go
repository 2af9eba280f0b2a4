package reviews

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/platform/web/webtest"
)

// The life of a review through the HTTP API: create (verified or not),
// duplicates, the public list, moderation (audited, evented, the rating
// following), and erasure.
func TestReviewScenario(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		spec := webtest.CheckOpenAPI(t, e.router)
		ann, annC := e.customer("ann@example.com")
		bob, bobC := e.customer("bob@example.com")
		csUser, csC := e.staff("cs@example.com", accounts.RoleCustomerService)
		e.orders.pay(ann, "p-1")
		const path = "/api/v1/products/p-1/reviews"
		good := map[string]any{"rating": 5, "title": "Sturdy kettle", "body": "Boils fast.\nQuiet, too."}

		// Anonymous callers, unknown and inactive products.
		webtest.AssertProblem(t, e.c.Do("POST", path, good), http.StatusUnauthorized, "unauthorized")
		webtest.AssertProblem(t, annC.Do("POST", "/api/v1/products/nope/reviews", good), http.StatusNotFound, "not_found")
		webtest.AssertProblem(t, e.c.Do("GET", "/api/v1/products/nope/reviews", nil), http.StatusNotFound, "not_found")
		e.products.set("p-off", false)
		webtest.AssertProblem(t, annC.Do("POST", "/api/v1/products/p-off/reviews", good), http.StatusNotFound, "not_found")
		webtest.AssertProblem(t, e.c.Do("GET", "/api/v1/products/p-off/reviews", nil), http.StatusNotFound, "not_found")
		// Staff do not review.
		webtest.AssertProblem(t, csC.Do("POST", path, good), http.StatusForbidden, "forbidden")

		// Ann has a paid order: verified.
		r := annC.Do("POST", path, good)
		r.WantStatus(t, http.StatusCreated)
		spec.ValidateResponse(t, "POST", "/api/v1/products/{id}/reviews", r)
		var annRev Review
		r.Decode(t, &annRev)
		want := Review{ID: annRev.ID, ProductID: "p-1", Rating: 5, Title: "Sturdy kettle", Body: "Boils fast.\nQuiet, too.",
			VerifiedPurchase: true, CreatedAt: e.clock.Now()}
		if annRev != want || annRev.ID == "" {
			t.Errorf("created %+v, want %+v", annRev, want)
		}
		if keys := sortedKeys(r.JSON.(map[string]any)); !slices.Equal(keys,
			[]string{"body", "created_at", "id", "product_id", "rating", "title", "verified_purchase"}) {
			t.Errorf("review body has fields %v", keys)
		}
		// A second review by Ann: 409, nothing written.
		webtest.AssertProblem(t, annC.Do("POST", path, map[string]any{"rating": 1, "title": "Changed my mind", "body": ""}),
			http.StatusConflict, "already_reviewed")

		// Bob has no paid order: not verified.
		e.clock.Advance(time.Minute)
		r = bobC.Do("POST", path, map[string]any{"rating": 2, "title": "Too loud", "body": ""})
		r.WantStatus(t, http.StatusCreated)
		var bobRev Review
		r.Decode(t, &bobRev)
		if bobRev.VerifiedPurchase || bobRev.Rating != 2 || bobRev.Body != "" {
			t.Errorf("bob's review %+v", bobRev)
		}
		e.wantRating("p-1", Rating{Average: 3.5, Count: 2})
		if n := e.count("reviews_reviews", ""); n != 2 {
			t.Errorf("%d reviews stored, want 2", n)
		}

		// The public list: newest first, anonymous callers welcome, no author.
		r = e.c.Do("GET", path, nil)
		r.WantStatus(t, http.StatusOK)
		spec.ValidateResponse(t, "GET", "/api/v1/products/{id}/reviews", r)
		if ids := listIDs(r); !slices.Equal(ids, []string{bobRev.ID, annRev.ID}) {
			t.Errorf("public list %v, want bob's then ann's", ids)
		}
		if strings.Contains(string(r.Body), ann) || strings.Contains(string(r.Body), bob) {
			t.Errorf("the public list names an author: %s", r.Body)
		}

		// Moderation: customers and anonymous callers may not.
		hide := "/api/v1/admin/reviews/" + annRev.ID + "/hide"
		webtest.AssertProblem(t, bobC.Do("POST", hide, map[string]string{"reason": "spite"}), http.StatusForbidden, "forbidden")
		webtest.AssertProblem(t, e.c.Do("POST", hide, map[string]string{"reason": "spite"}), http.StatusUnauthorized, "unauthorized")
		p := webtest.AssertProblem(t, csC.Do("POST", hide, map[string]string{"reason": "  "}), http.StatusUnprocessableEntity, "validation_failed")
		webtest.AssertFieldError(t, p, "reason")
		webtest.AssertProblem(t, csC.Do("POST", "/api/v1/admin/reviews/nope/hide", map[string]string{"reason": "spam"}),
			http.StatusNotFound, "not_found")

		e.clock.Advance(time.Minute)
		r = csC.Do("POST", hide, map[string]string{"reason": "Contains a phone number"})
		r.WantStatus(t, http.StatusOK)
		spec.ValidateResponse(t, "POST", "/api/v1/admin/reviews/{id}/hide", r)
		if r.Field("status") != "hidden" || r.Field("hidden_reason") != "Contains a phone number" || r.Field("customer_id") != ann {
			t.Errorf("hidden review: %s", r.Body)
		}
		webtest.AssertProblem(t, csC.Do("POST", hide, map[string]string{"reason": "again"}), http.StatusConflict, "invalid_transition")
		e.wantRating("p-1", Rating{Average: 2, Count: 1})
		if ids := listIDs(e.c.Do("GET", path, nil)); !slices.Equal(ids, []string{bobRev.ID}) {
			t.Errorf("public list after hiding %v, want only bob's", ids)
		}

		// The staff list, by status and product.
		r = csC.Do("GET", "/api/v1/admin/reviews?status=hidden", nil)
		r.WantStatus(t, http.StatusOK)
		spec.ValidateResponse(t, "GET", "/api/v1/admin/reviews", r)
		if ids := listIDs(r); !slices.Equal(ids, []string{annRev.ID}) {
			t.Errorf("hidden reviews %v", ids)
		}
		if ids := listIDs(csC.Do("GET", "/api/v1/admin/reviews?product_id=p-1", nil)); !slices.Equal(ids, []string{bobRev.ID, annRev.ID}) {
			t.Errorf("reviews of p-1 %v", ids)
		}
		if ids := listIDs(csC.Do("GET", "/api/v1/admin/reviews?product_id=p-2&status=visible", nil)); len(ids) != 0 {
			t.Errorf("reviews of p-2 %v", ids)
		}
		p = webtest.AssertProblem(t, csC.Do("GET", "/api/v1/admin/reviews?status=deleted", nil), http.StatusUnprocessableEntity, "validation_failed")
		webtest.AssertFieldError(t, p, "status")
		webtest.AssertProblem(t, bobC.Do("GET", "/api/v1/admin/reviews", nil), http.StatusForbidden, "forbidden")

		// Restore brings it back, to the list and the rating.
		e.clock.Advance(time.Minute)
		restore := "/api/v1/admin/reviews/" + annRev.ID + "/restore"
		r = csC.Do("POST", restore, nil)
		r.WantStatus(t, http.StatusOK)
		if r.Field("status") != "visible" || r.Field("hidden_reason") != nil {
			t.Errorf("restored review: %s", r.Body)
		}
		webtest.AssertProblem(t, csC.Do("POST", restore, nil), http.StatusConflict, "invalid_transition")
		e.wantRating("p-1", Rating{Average: 3.5, Count: 2})
		if ids := listIDs(e.c.Do("GET", path, nil)); !slices.Equal(ids, []string{bobRev.ID, annRev.ID}) {
			t.Errorf("public list after restoring %v", ids)
		}

		// Each moderation is audited, in its unit.
		wantAudit := []auditEntry{
			{Actor: csUser, Action: "review.hidden", TargetType: "review", TargetID: annRev.ID, IP: "127.0.0.1",
				Before: `{"status":"visible"}`, After: `{"reason":"Contains a phone number","status":"hidden"}`},
			{Actor: csUser, Action: "review.restored", TargetType: "review", TargetID: annRev.ID, IP: "127.0.0.1",
				Before: `{"status":"hidden"}`, After: `{"status":"visible"}`},
		}
		if got := e.audits(); !slices.Equal(got, wantAudit) {
			t.Errorf("audit log %+v, want %+v", got, wantAudit)
		}

		// The events: type, aggregate, payload with the rating after each change.
		wantEvents := []reviewEvent{
			{"review.created", "review", annRev.ID, ReviewEvent{annRev.ID, "p-1", Rating{5, 1}}},
			{"review.created", "review", bobRev.ID, ReviewEvent{bobRev.ID, "p-1", Rating{3.5, 2}}},
			{"review.hidden", "review", annRev.ID, ReviewEvent{annRev.ID, "p-1", Rating{2, 1}}},
			{"review.restored", "review", annRev.ID, ReviewEvent{annRev.ID, "p-1", Rating{3.5, 2}}},
		}
		if got := e.events(); !slices.Equal(got, wantEvents) {
			t.Errorf("events %+v,\nwant %+v", got, wantEvents)
		}

		// Privacy: Ann's export holds her review; her erasure deletes it and
		// fixes the rating in the same unit.
		r = annC.Do("GET", "/api/v1/me/export", nil)
		r.WantStatus(t, http.StatusOK)
		if r.Field("reviews.0.id") != annRev.ID || r.Field("reviews.0.body") != annRev.Body || r.Field("reviews.1") != nil {
			t.Errorf("export reviews: %v", r.Field("reviews"))
		}
		annC.Do("POST", "/api/v1/me/erase", map[string]string{"password": password}).WantStatus(t, http.StatusOK)
		if n := e.count("reviews_reviews", "customer_id = $1", ann); n != 0 {
			t.Errorf("%d of ann's reviews left after erasure", n)
		}
		e.wantRating("p-1", Rating{Average: 2, Count: 1})
		evs := e.events()
		if last := evs[len(evs)-1]; last != (reviewEvent{"review.erased", "review", annRev.ID, ReviewEvent{annRev.ID, "p-1", Rating{2, 1}}}) {
			t.Errorf("last event %+v, want review.erased of ann's review", last)
		}
		if ids := listIDs(e.c.Do("GET", path, nil)); !slices.Equal(ids, []string{bobRev.ID}) {
			t.Errorf("public list after erasure %v", ids)
		}
	})
}

// sortedKeys lists m's keys in order.
func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// listIDs returns the ids of a page's items, failing on a non-200 answer.
func listIDs(r *webtest.Response) []string {
	if r.Status != http.StatusOK {
		return []string{"status " + r.Header.Get("Content-Type") + " " + string(r.Body)}
	}
	items, _ := r.Field("items").([]any)
	ids := []string{}
	for _, it := range items {
		ids = append(ids, it.(map[string]any)["id"].(string))
	}
	return ids
}
