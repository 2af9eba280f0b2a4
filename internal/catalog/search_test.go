package catalog

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web/webtest"
)

// deliver hands every outbox event after the first skip ones to the
// indexer's consumer handler, each in its own transaction as the inbox
// would, and returns how many there were.
func (e *env) deliver(skip int) int {
	e.t.Helper()
	rows, err := e.db.Reader().Query(`SELECT event_id, type, aggregate_type, aggregate_id, sequence, data FROM outbox ORDER BY id`)
	if err != nil {
		e.t.Fatal(err)
	}
	var evs []event.Envelope
	for rows.Next() {
		var ev event.Envelope
		var data string
		if err := rows.Scan(&ev.ID, &ev.Type, &ev.AggregateType, &ev.AggregateID, &ev.Sequence, &data); err != nil {
			e.t.Fatal(err)
		}
		ev.SchemaVersion, ev.Data = 1, []byte(data)
		evs = append(evs, ev)
	}
	rows.Close()
	c := e.svc.Indexer().Consumer()
	for _, ev := range evs[skip:] {
		if !strings.HasPrefix(ev.Type, "product.") && !strings.HasPrefix(ev.Type, "review.") {
			continue
		}
		if err := e.db.Do(context.Background(), func(tx *sqldb.Tx) error { return c.Handle(context.Background(), tx, ev) }); err != nil {
			e.t.Fatal(err)
		}
	}
	return len(evs)
}

func TestSearch(t *testing.T) {
	idx := map[string]*memIndex{}
	forEachEngine(t, func() Config {
		ix := newMemIndex()
		idx["current"] = ix
		return Config{Index: ix, Ratings: fixedRatings{}}
	}, func(t *testing.T, e *env) {
		ix := idx["current"]
		top := e.category("Kitchen", "")
		pans := e.category("Pans", top.ID)
		a := e.create(withField(product("Iron pan 铁锅", "PAN-1", "PAN-2"), "category_ids", []string{pans.ID}))
		b := e.create(product("Pan lid", "LID-1"))
		d := e.create(withField(product("Pan draft", "PD-1"), "status", "draft"))
		seen := e.deliver(0)
		if err := e.svc.Indexer().Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if ix.puts != 1 || len(ix.docs) != 2 {
			t.Fatalf("%d puts, %d documents; want one batch of 2", ix.puts, len(ix.docs))
		}
		doc := ix.docs[a.ID]
		if !slices.Equal(doc.CategoryIDs, sortedPair(top.ID, pans.ID)) || !slices.Equal(doc.SKUs, []string{"PAN-1", "PAN-2"}) ||
			doc.PriceMin != 1000 || doc.PriceMax != 1100 || doc.Currency != "EUR" || !doc.InStock ||
			!slices.Contains(doc.CategoryNames, "Kitchen") || !slices.Contains(doc.Attributes, "M") {
			t.Fatalf("document %+v", doc)
		}

		r := e.anon.Do("GET", "/api/v1/products?q=pan&category="+top.ID, nil)
		if got := ids(t, r); !slices.Equal(got, []string{"Iron pan 铁锅"}) {
			t.Fatalf("search hits %v", got)
		}
		if r.Field("facets.categories.0.count") != float64(1) || r.Field("facets.in_stock") == nil {
			t.Fatalf("facets: %s", r.Body)
		}
		// A hit that is not active any more is dropped when hydrated.
		ix.docs[d.ID] = ix.docs[b.ID]
		doc = ix.docs[d.ID]
		doc.ID = d.ID
		ix.docs[d.ID] = doc
		if got := ids(t, e.anon.Do("GET", "/api/v1/products?q=pan", nil)); !slices.Equal(got, []string{"Pan lid", "Iron pan 铁锅"}) {
			t.Fatalf("hydrated hits %v", got)
		}
		// Archiving takes it out of the index.
		e.operator.Do("PATCH", "/api/v1/admin/products/"+b.ID, map[string]any{"status": "archived"}).WantStatus(t, http.StatusOK)
		e.deliver(seen)
		if err := e.svc.Indexer().Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, ok := ix.docs[b.ID]; ok || ix.deletes == 0 {
			t.Fatal("the archived product is still indexed")
		}

		// What the index or the edge refuses is 422, never 500.
		for _, tc := range []struct{ name, query string }{
			{"NUL", "q=a%00b"},
			{"invalid UTF-8", "q=%ff%fe"},
			{"10,000 characters", "q=" + strings.Repeat("x", 10000)},
			{"over the search maximum", "q=" + strings.Repeat("y", 201)},
			{"a cursor the index did not make", "q=pan&cursor=abc"},
			{"an unknown sort", "q=pan&sort=cheapest"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.anon.Do("GET", "/api/v1/products?"+tc.query, nil)
				p := webtest.AssertProblem(t, r, http.StatusUnprocessableEntity, "validation_failed")
				if len(p.Errors) == 0 {
					t.Errorf("no field named: %s", r.Body)
				}
			})
		}
	})
}

func sortedPair(a, b string) []string {
	s := []string{a, b}
	slices.Sort(s)
	return s
}

// TestReviewEventRefreshesRating: a review event from another module drops
// the cached public document and re-indexes the product with its rating.
func TestReviewEventRefreshesRating(t *testing.T) {
	ratings := fixedRatings{}
	ix := newMemIndex()
	e := newEnv(t, openSQLite(t), Config{Index: ix, Ratings: ratings})
	p := e.create(product("Rated", "R-1"))
	seen := e.deliver(0)
	e.svc.Indexer().Flush(context.Background())
	r := e.anon.Do("GET", "/api/v1/products/"+p.ID, nil)
	if r.Field("rating.count") != float64(0) {
		t.Fatalf("rating before: %s", r.Body)
	}
	ratings[p.ID] = Rating{Average: 4.5, Count: 2}
	// Still the cached document: nothing said the rating changed.
	if r := e.anon.Do("GET", "/api/v1/products/"+p.ID, nil); r.Field("rating.count") != float64(0) {
		t.Fatalf("the cache was bypassed: %s", r.Body)
	}
	ev := event.Envelope{ID: event.NewID(), Type: "review.created", SchemaVersion: 1, AggregateType: "review", AggregateID: "rev-1",
		Sequence: 1, Data: []byte(`{"review_id":"rev-1","product_id":"` + p.ID + `","rating":5}`)}
	c := e.svc.Indexer().Consumer()
	if err := e.db.Do(context.Background(), func(tx *sqldb.Tx) error { return c.Handle(context.Background(), tx, ev) }); err != nil {
		t.Fatal(err)
	}
	_ = seen
	if r := e.anon.Do("GET", "/api/v1/products/"+p.ID, nil); r.Field("rating.count") != float64(2) || r.Field("rating.average") != 4.5 {
		t.Fatalf("rating after the review event: %s", r.Body)
	}
	e.svc.Indexer().Flush(context.Background())
	if d := ix.docs[p.ID]; d.Rating != 4.5 || d.RatingCount != 2 {
		t.Fatalf("indexed rating %+v", d)
	}
}
