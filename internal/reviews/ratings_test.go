package reviews

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web/webtest"
)

func TestNewRating(t *testing.T) {
	tests := []struct {
		count, sum int64
		want       Rating
	}{
		{0, 0, Rating{}},
		{1, 5, Rating{5, 1}},
		{2, 9, Rating{4.5, 2}},
		{3, 13, Rating{4.3, 3}}, // 4.333…
		{3, 5, Rating{1.7, 3}},  // 1.666…
		{8, 17, Rating{2.1, 8}}, // 2.125
		{4, 9, Rating{2.3, 4}},  // 2.25: half away from zero
		{7, 35, Rating{5, 7}},
	}
	for _, tc := range tests {
		if got := newRating(tc.count, tc.sum); got != tc.want {
			t.Errorf("newRating(%d, %d) = %+v, want %+v", tc.count, tc.sum, got, tc.want)
		}
	}
}

// Ratings answers every id asked for (zero for products without visible
// reviews), once per distinct id, past the 500 ids one statement binds.
func TestRatings(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for i, r := range []int{5, 4, 4} {
			if _, err := e.svc.Create(ctx, fmt.Sprint("c-", i), "p-1", CreateRequest{Rating: r, Title: "t"}); err != nil {
				t.Fatal(err)
			}
		}
		rv, err := e.svc.Create(ctx, "c-0", "p-2", CreateRequest{Rating: 2, Title: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Hide(ctx, Actor{ID: "staff"}, rv.ID, "rude"); err != nil {
			t.Fatal(err)
		}
		ids := []string{"p-1", "p-2", "p-1", "p-none"}
		for i := range 1200 {
			ids = append(ids, fmt.Sprintf("x-%04d", i))
		}
		ids = append(ids, "p-1") // past the first chunk too
		got, err := e.svc.Ratings(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1203 {
			t.Errorf("%d ratings, want 1203 (one per distinct id)", len(got))
		}
		want := map[string]Rating{"p-1": {4.3, 3}, "p-2": {}, "p-none": {}, "x-0999": {}}
		for id, w := range want {
			if r, ok := got[id]; !ok || r != w {
				t.Errorf("Ratings[%s] = %+v (present %v), want %+v", id, r, ok, w)
			}
		}
		if got, err := e.svc.Ratings(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("Ratings(nil) = %v, %v", got, err)
		}
	})
}

// Without the catalog wired no product is reviewable (404); without orders
// no review is a verified purchase.
func TestNilDependencies(t *testing.T) {
	e := newEnv(t, sqliteDB(t))
	ctx := context.Background()
	bare := New(module.Platform{DB: e.db}, Deps{})
	if _, err := bare.Create(ctx, "c-1", "p-1", CreateRequest{Rating: 4, Title: "t"}); errs.KindOf(err) != errs.NotFound {
		t.Errorf("Create without Products = %v, want not found", err)
	}
	if _, err := bare.ProductReviews(ctx, "p-1", pageOf(10)); errs.KindOf(err) != errs.NotFound {
		t.Errorf("ProductReviews without Products = %v, want not found", err)
	}
	noOrders := New(module.Platform{DB: e.db}, Deps{Products: e.products})
	rv, err := noOrders.Create(ctx, "c-1", "p-1", CreateRequest{Rating: 4, Title: "t"})
	if err != nil || rv.VerifiedPurchase {
		t.Errorf("Create without Purchases = %+v, %v; want unverified", rv, err)
	}
}

// Erasure deletes every review of the customer, visible and hidden, takes
// the visible ones out of their products' ratings and emits review.erased
// for each; other customers' reviews stay. A second erasure changes nothing.
func TestErase(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		mk := func(customer, product string, rating int) Review {
			rv, err := e.svc.Create(ctx, customer, product, CreateRequest{Rating: rating, Title: "t"})
			if err != nil {
				t.Fatal(err)
			}
			return rv
		}
		a1, a2 := mk("ann", "p-1", 5), mk("ann", "p-2", 1)
		mk("bob", "p-1", 3)
		mk("bob", "p-2", 4)
		if _, err := e.svc.Hide(ctx, Actor{ID: "staff"}, a2.ID, "rude"); err != nil {
			t.Fatal(err)
		}
		exp, err := e.svc.Export(ctx, "ann")
		if err != nil {
			t.Fatal(err)
		}
		if got := exp.([]ExportedReview); len(got) != 2 || got[0].ID != a1.ID || got[1].Status != StatusHidden {
			t.Errorf("export %+v", got)
		}
		before := len(e.events())
		if err := e.svc.Erase(ctx, "ann"); err != nil {
			t.Fatal(err)
		}
		e.wantRating("p-1", Rating{3, 1})
		e.wantRating("p-2", Rating{4, 1})
		if n := e.count("reviews_reviews", "customer_id = 'ann'"); n != 0 {
			t.Errorf("%d of ann's reviews left", n)
		}
		if n := e.count("reviews_reviews", "customer_id = 'bob'"); n != 2 {
			t.Errorf("%d of bob's reviews left, want 2", n)
		}
		evs := e.events()[before:]
		want := []reviewEvent{
			{"review.erased", "review", a1.ID, ReviewEvent{a1.ID, "p-1", Rating{3, 1}}},
			{"review.erased", "review", a2.ID, ReviewEvent{a2.ID, "p-2", Rating{4, 1}}},
		}
		if len(evs) != 2 || evs[0] != want[0] || evs[1] != want[1] {
			t.Errorf("erasure events %+v, want %+v", evs, want)
		}
		if err := e.svc.Erase(ctx, "ann"); err != nil {
			t.Fatal(err)
		}
		if n := len(e.events()); n != before+2 {
			t.Errorf("a second erasure emitted %d events", n-before-2)
		}
		if exp, _ := e.svc.Export(ctx, "ann"); len(exp.([]ExportedReview)) != 0 {
			t.Errorf("export after erasure %+v", exp)
		}
	})
}

// The module declares what the process needs, and module.Check accepts it.
func TestModule(t *testing.T) {
	e := newEnv(t, sqliteDB(t))
	m := e.svc.Module()
	if m.Name != "reviews" || m.Privacy == nil || m.Privacy.Section != "reviews" || len(m.Events) != 4 || len(m.Routes) != 5 {
		t.Errorf("module %+v", m)
	}
	for _, r := range m.Routes {
		if r.Handler == nil {
			t.Errorf("route %s has no handler", r.Pattern())
		}
	}
	if err := module.Check([]module.Module{m}); err != nil {
		t.Error(err)
	}
	// Routes need no database to be listed (cmd/mercato lists names with a zero Platform).
	if n := len(New(module.Platform{}, Deps{}).Module().Routes); n != 5 {
		t.Errorf("%d routes from a zero platform", n)
	}
	webtest.AssertProblem(t, e.c.Do("GET", "/api/v1/admin/reviews", nil), http.StatusUnauthorized, "unauthorized")
}

func sqliteDB(t *testing.T) *sqldb.DB { return openDB(t, sqldb.SQLite) }
