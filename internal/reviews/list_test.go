package reviews

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"testing"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/platform/web/webtest"
)

// The public list pages by key, newest first (ties in created_at broken
// by id): pages of limit items, the last without next_cursor, nothing
// repeated or skipped even when a review is added while paging; hidden
// reviews and other products' are not in it.
func TestProductListPages(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		type made struct {
			id string
			at time.Time
		}
		var all []made
		for i := range 23 {
			if i%3 == 0 {
				e.clock.Advance(time.Second) // three reviews share each timestamp
			}
			rv, err := e.svc.Create(ctx, fmt.Sprintf("c-%02d", i), "p-1", CreateRequest{Rating: i%5 + 1, Title: "t"})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, made{rv.ID, rv.CreatedAt})
		}
		if _, err := e.svc.Create(ctx, "c-00", "p-2", CreateRequest{Rating: 1, Title: "other product"}); err != nil {
			t.Fatal(err)
		}
		hidden := all[5].id
		if _, err := e.svc.Hide(ctx, Actor{ID: "staff"}, hidden, "spam"); err != nil {
			t.Fatal(err)
		}
		sort.Slice(all, func(i, j int) bool {
			if !all[i].at.Equal(all[j].at) {
				return all[i].at.After(all[j].at)
			}
			return all[i].id > all[j].id
		})
		var want []string
		for _, m := range all {
			if m.id != hidden {
				want = append(want, m.id)
			}
		}

		var got []string
		path := "/api/v1/products/p-1/reviews?limit=10"
		for page := 0; ; page++ {
			r := e.c.Do("GET", path, nil)
			r.WantStatus(t, http.StatusOK)
			ids := listIDs(r)
			got = append(got, ids...)
			next, _ := r.Field("next_cursor").(string)
			if page == 0 {
				// A review added while paging is newer than the cursor: it
				// does not shift the pages still to come.
				e.clock.Advance(time.Second)
				if _, err := e.svc.Create(ctx, "c-late", "p-1", CreateRequest{Rating: 5, Title: "late"}); err != nil {
					t.Fatal(err)
				}
			}
			if next == "" {
				if len(ids) != 2 {
					t.Errorf("last page has %d items, want 2", len(ids))
				}
				break
			}
			if len(ids) != 10 {
				t.Errorf("page %d has %d items, want 10", page, len(ids))
			}
			path = "/api/v1/products/p-1/reviews?limit=10&cursor=" + next
		}
		if !slices.Equal(got, want) {
			t.Errorf("paged ids\n%v\nwant\n%v", got, want)
		}

		p := webtest.AssertProblem(t, e.c.Do("GET", "/api/v1/products/p-1/reviews?cursor=bogus", nil), 422, "validation_failed")
		webtest.AssertFieldError(t, p, "cursor")
		p = webtest.AssertProblem(t, e.c.Do("GET", "/api/v1/products/p-1/reviews?limit=0", nil), 422, "validation_failed")
		webtest.AssertFieldError(t, p, "limit")
		r := e.c.Do("GET", "/api/v1/products/p-2/reviews", nil)
		r.WantStatus(t, http.StatusOK)
		if ids := listIDs(r); len(ids) != 1 || r.Field("next_cursor") != nil {
			t.Errorf("p-2 list: %s", r.Body)
		}
	})
}

// The staff list filters by status and product and pages the same way.
func TestStaffListPages(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) { staffListPages(t, e) })
}

func staffListPages(t *testing.T, e *env) {
	ctx := context.Background()
	for i := range 7 {
		e.clock.Advance(time.Second)
		rv, err := e.svc.Create(ctx, fmt.Sprint("c-", i), []string{"p-1", "p-2"}[i%2], CreateRequest{Rating: 3, Title: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if i < 3 {
			if _, err := e.svc.Hide(ctx, Actor{ID: "staff"}, rv.ID, "spam"); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, c := e.staff("ops@example.com", accounts.RoleOperator)
	tests := []struct {
		query string
		n     int
	}{
		{"", 7}, {"status=hidden", 3}, {"status=visible", 4}, {"product_id=p-1", 4},
		{"product_id=p-1&status=hidden", 2}, {"product_id=p-9", 0},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			var got []string
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			q.Set("limit", "2")
			for {
				r := c.Do("GET", "/api/v1/admin/reviews?"+q.Encode(), nil)
				r.WantStatus(t, http.StatusOK)
				for _, it := range r.Field("items").([]any) {
					m := it.(map[string]any)
					got = append(got, m["id"].(string))
					if q.Get("status") != "" && m["status"] != q.Get("status") {
						t.Errorf("item %v, want status %s", m, q.Get("status"))
					}
					if q.Get("product_id") != "" && m["product_id"] != q.Get("product_id") {
						t.Errorf("item %v, want product %s", m, q.Get("product_id"))
					}
				}
				next, _ := r.Field("next_cursor").(string)
				if next == "" {
					break
				}
				q.Set("cursor", next)
			}
			if len(got) != tc.n || len(slices.Compact(slices.Clone(got))) != tc.n {
				t.Errorf("%d items (%v), want %d distinct", len(got), got, tc.n)
			}
		})
	}
}

// An idempotent POST answers the same review again without a second row or
// event; the same key with another body is 422.
func TestCreateIdempotent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		_, c := e.customer("idem@example.com")
		body := map[string]any{"rating": 4, "title": "Once"}
		first := c.Do("POST", "/api/v1/products/p-1/reviews", body, "Idempotency-Key: k-1")
		first.WantStatus(t, http.StatusCreated)
		again := c.Do("POST", "/api/v1/products/p-1/reviews", body, "Idempotency-Key: k-1")
		again.WantStatus(t, http.StatusCreated)
		if string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay %s (replayed %q), want %s", again.Body, again.Header.Get("Idempotent-Replayed"), first.Body)
		}
		webtest.AssertProblem(t, c.Do("POST", "/api/v1/products/p-1/reviews", map[string]any{"rating": 1, "title": "Twice"},
			"Idempotency-Key: k-1"), http.StatusUnprocessableEntity, "idempotency_key_reused")
		if n := e.count("reviews_reviews", ""); n != 1 {
			t.Errorf("%d reviews, want 1", n)
		}
		if n := e.count("outbox", "type = 'review.created'"); n != 1 {
			t.Errorf("%d review.created events, want 1", n)
		}
		e.wantRating("p-1", Rating{Average: 4, Count: 1})
	})
}
