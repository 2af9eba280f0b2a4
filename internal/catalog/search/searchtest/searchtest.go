package searchtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"mercato/internal/catalog/search"
)

// Open returns a fresh, empty index, closed when the test ends.
type Open func(t *testing.T) search.Index

// Run is the conformance suite: every implementation of search.Index
// passes it. Each subtest opens its own index.
func Run(t *testing.T, open Open) {
	t.Run("PutReplaceDelete", func(t *testing.T) { testPutReplaceDelete(t, open(t)) })
	t.Run("Filters", func(t *testing.T) { testFilters(t, loaded(t, open)) })
	t.Run("Sorts", func(t *testing.T) { testSorts(t, loaded(t, open)) })
	t.Run("Pages", func(t *testing.T) { testPages(t, loaded(t, open)) })
	t.Run("Facets", func(t *testing.T) { testFacets(t, loaded(t, open)) })
	t.Run("Languages", func(t *testing.T) { testLanguages(t, loaded(t, open)) })
	t.Run("Invalid", func(t *testing.T) { testInvalid(t, loaded(t, open)) })
	t.Run("Hostile", func(t *testing.T) { testHostile(t, loaded(t, open)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, loaded(t, open)) })
}

// loaded is a fresh index holding the fixture.
func loaded(t *testing.T, open Open) search.Index {
	t.Helper()
	idx := open(t)
	if err := idx.Put(context.Background(), Fixture()); err != nil {
		t.Fatalf("Put fixture: %v", err)
	}
	return idx
}

// All walks every page of q (limit per page) and returns the ids in order
// and the Total of each page.
func All(t testing.TB, idx search.Index, q search.Query, limit int) ([]string, []search.Hit) {
	t.Helper()
	q.Limit, q.Cursor = limit, ""
	var ids []string
	var hits []search.Hit
	total := -1
	for page := 0; ; page++ {
		res, err := idx.Search(context.Background(), q)
		if err != nil {
			t.Fatalf("Search(%+v) page %d: %v", q, page, err)
		}
		if total >= 0 && res.Total != total {
			t.Fatalf("Search(%+v): Total %d on page %d, %d before", q, res.Total, page, total)
		}
		total = res.Total
		if len(res.Hits) > limit {
			t.Fatalf("page %d has %d hits, limit %d", page, len(res.Hits), limit)
		}
		for _, h := range res.Hits {
			ids = append(ids, h.ID)
			hits = append(hits, h)
		}
		if res.NextCursor == "" {
			break
		}
		if len(res.Hits) != limit {
			t.Fatalf("page %d: %d hits and a next cursor", page, len(res.Hits))
		}
		if page > 1000 {
			t.Fatal("more than 1000 pages")
		}
		q.Cursor = res.NextCursor
	}
	if len(ids) != total {
		t.Fatalf("Search(%+v): %d hits over all pages, Total %d", q, len(ids), total)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("Search(%+v): %s on two pages", q, id)
		}
		seen[id] = true
	}
	return ids, hits
}

func search1(t *testing.T, idx search.Index, q search.Query) search.Result {
	t.Helper()
	res, err := idx.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search(%+v): %v", q, err)
	}
	return res
}

func testPutReplaceDelete(t *testing.T, idx search.Index) {
	ctx := context.Background()
	fx := Fixture()
	if err := idx.Put(ctx, nil); err != nil {
		t.Fatalf("Put(nil): %v", err)
	}
	if err := idx.Put(ctx, fx); err != nil {
		t.Fatal(err)
	}
	if n, err := idx.Count(ctx); err != nil || n != len(fx) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(fx))
	}
	// Put again replaces: the count stays.
	if err := idx.Put(ctx, fx[:10]); err != nil {
		t.Fatal(err)
	}
	if n, _ := idx.Count(ctx); n != len(fx) {
		t.Fatalf("Count after re-Put = %d, want %d", n, len(fx))
	}
	// A replaced title is found by its new words only.
	d := fx[0]
	d.Title, d.Description = "Zeppelin Hovercraft", "airship"
	d.PriceMin = 123
	if err := idx.Put(ctx, []search.Document{d}); err != nil {
		t.Fatal(err)
	}
	if got := ids(search1(t, idx, search.Query{Text: "zeppelin"}).Hits); !reflect.DeepEqual(got, []string{d.ID}) {
		t.Errorf("after replace, zeppelin = %v, want [%s]", got, d.ID)
	}
	res := search1(t, idx, search.Query{Text: fx[0].Title, Limit: 100})
	if slices.Contains(ids(res.Hits), d.ID) {
		t.Errorf("after replace, the old title still finds %s", d.ID)
	}
	if got := ids(search1(t, idx, search.Query{MaxPrice: ptr(int64(123))}).Hits); !reflect.DeepEqual(got, []string{d.ID}) {
		t.Errorf("after replace, price <= 123 = %v, want [%s]", got, d.ID)
	}
	// Two documents of one id in one Put: the last wins.
	a, b := d, d
	a.Title, b.Title = "Quasar Alpha", "Quasar Beta"
	if err := idx.Put(ctx, []search.Document{a, b}); err != nil {
		t.Fatal(err)
	}
	if got := search1(t, idx, search.Query{Text: "alpha"}).Total; got != 0 {
		t.Errorf("the first of two documents of one id is found (%d hits)", got)
	}
	if got := search1(t, idx, search.Query{Text: "beta"}).Total; got != 1 {
		t.Errorf("the last of two documents of one id: %d hits, want 1", got)
	}
	// Delete, with unknown and repeated ids.
	gone := []string{fx[1].ID, fx[2].ID, "no-such-id", fx[1].ID, ""}
	if err := idx.Delete(ctx, gone); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := idx.Delete(ctx, nil); err != nil {
		t.Fatalf("Delete(nil): %v", err)
	}
	if n, _ := idx.Count(ctx); n != len(fx)-2 {
		t.Fatalf("Count after Delete = %d, want %d", n, len(fx)-2)
	}
	all, _ := All(t, idx, search.Query{}, 100)
	if slices.Contains(all, fx[1].ID) || slices.Contains(all, fx[2].ID) || len(all) != len(fx)-2 {
		t.Errorf("after Delete, %d listed (deleted ones among them: %v)", len(all), slices.Contains(all, fx[1].ID))
	}
	// A document of hostile strings is stored and found.
	h := fx[3]
	h.ID = "hostile"
	h.Title = "Gizmo \x00 \xff\xfe title:foo ( ) \" 🎉"
	h.Attributes = []string{"\xc3\x28", "x\x00y"}
	if err := idx.Put(ctx, []search.Document{h}); err != nil {
		t.Fatalf("Put of hostile strings: %v", err)
	}
	if got := ids(search1(t, idx, search.Query{Text: "gizmo"}).Hits); !reflect.DeepEqual(got, []string{"hostile"}) {
		t.Errorf("gizmo = %v, want [hostile]", got)
	}
	// A broken document is refused, and nothing of its batch is written.
	bad := fx[4]
	bad.ID = ""
	ok := fx[5]
	ok.ID = "fine"
	if err := idx.Put(ctx, []search.Document{ok, bad}); err == nil {
		t.Error("Put of a document without id: no error")
	}
	if got := search1(t, idx, search.Query{Text: "fine"}).Total; got != 0 {
		// "fine" is no fixture word
		t.Errorf("a refused batch wrote %d documents", got)
	}
}

// filterQueries are filter-only queries, each compared with Filter over the
// fixture.
func filterQueries() []search.Query {
	return []search.Query{
		{},
		{CategoryID: "c-electronics"},
		{CategoryID: "c-audio"},
		{CategoryID: "c-nothing"},
		{Channel: "app"},
		{MinPrice: ptr(int64(1000)), MaxPrice: ptr(int64(5000))},
		{MinPrice: ptr(int64(2900))},
		{MaxPrice: ptr(int64(2900))},
		{InStock: ptr(true)},
		{InStock: ptr(false)},
		{MinRating: 4},
		{MinRating: 4.5, InStock: ptr(true), CategoryID: "c-food"},
		{CategoryID: "c-clothing", MaxPrice: ptr(int64(3000)), Channel: "web"},
	}
}

func testFilters(t *testing.T, idx search.Index) {
	fx := Fixture()
	for _, q := range filterQueries() {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			got, _ := All(t, idx, q, 50)
			var want []string
			for _, d := range fx {
				if Filter(d, q) {
					want = append(want, d.ID)
				}
			}
			sort.Strings(got)
			if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("got %d ids, want %d\n got %v\nwant %v", len(got), len(want), got, want)
			}
		})
	}
	// Text and filters: every hit passes the filters.
	byID := ByID(fx)
	q := search.Query{Text: "headphones", InStock: ptr(true), MaxPrice: ptr(int64(20000))}
	got, _ := All(t, idx, q, 10)
	if len(got) == 0 {
		t.Fatal("headphones in stock under 200: nothing")
	}
	for _, id := range got {
		if !Filter(byID[id], q) {
			t.Errorf("%s does not pass the filters of %+v", id, q)
		}
	}
}

// sortKey orders two documents as sort s does (before the id tie-break):
// negative when a comes first.
func sortKey(s search.Sort, a, b search.Document) int {
	cmp := func(x, y float64) int {
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	switch s {
	case search.SortPriceAsc:
		return cmp(float64(a.PriceMin), float64(b.PriceMin))
	case search.SortPriceDesc:
		return cmp(float64(b.PriceMin), float64(a.PriceMin))
	case search.SortRating:
		if c := cmp(b.Rating, a.Rating); c != 0 {
			return c
		}
		return cmp(float64(b.RatingCount), float64(a.RatingCount))
	default:
		return cmp(float64(b.CreatedAt.UnixMicro()), float64(a.CreatedAt.UnixMicro()))
	}
}

func testSorts(t *testing.T, idx search.Index) {
	fx := Fixture()
	byID := ByID(fx)
	for _, s := range []search.Sort{"", search.SortRelevance, search.SortNewest, search.SortPriceAsc, search.SortPriceDesc, search.SortRating} {
		for _, text := range []string{"", "coffee"} {
			t.Run(fmt.Sprintf("%s/%q", s, text), func(t *testing.T) {
				got, hits := All(t, idx, search.Query{Text: text, Sort: s}, 13)
				if text == "" && len(got) != len(fx) {
					t.Fatalf("%d listed, want %d", len(got), len(fx))
				}
				if text != "" && len(got) == 0 {
					t.Fatal("no hits")
				}
				for i := 1; i < len(got); i++ {
					a, b := byID[got[i-1]], byID[got[i]]
					var c int
					if (s == "" || s == search.SortRelevance) && text != "" {
						switch {
						case hits[i-1].Score > hits[i].Score:
							c = -1
						case hits[i-1].Score < hits[i].Score:
							c = 1
						}
					} else {
						c = sortKey(s, a, b)
					}
					if c > 0 || c == 0 && a.ID > b.ID {
						t.Fatalf("hit %d (%s) before hit %d (%s) out of order", i-1, a.ID, i, b.ID)
					}
				}
			})
		}
	}
}

func testPages(t *testing.T, idx search.Index) {
	ctx := context.Background()
	for _, limit := range []int{1, 7, 100} {
		for _, q := range []search.Query{{}, {Text: "tea"}, {Text: "cotton shirt", Sort: search.SortPriceAsc}, {CategoryID: "c-home", Sort: search.SortRating}} {
			one, _ := All(t, idx, q, limit)
			big, _ := All(t, idx, q, 100)
			if !reflect.DeepEqual(one, big) {
				t.Errorf("%+v: pages of %d list %v, pages of 100 %v", q, limit, one, big)
			}
		}
	}
	// A write between pages: the walk goes on without a repeat.
	res := search1(t, idx, search.Query{Limit: 5, Sort: search.SortPriceAsc})
	if err := idx.Delete(ctx, []string{res.Hits[0].ID}); err != nil {
		t.Fatal(err)
	}
	next := search1(t, idx, search.Query{Limit: 5, Sort: search.SortPriceAsc, Cursor: res.NextCursor})
	for _, h := range next.Hits {
		if slices.Contains(ids(res.Hits), h.ID) {
			t.Errorf("%s on both pages", h.ID)
		}
	}
	// The default limit.
	if n := len(search1(t, idx, search.Query{}).Hits); n != search.DefaultLimit {
		t.Errorf("zero limit: %d hits, want %d", n, search.DefaultLimit)
	}
}

func testFacets(t *testing.T, idx search.Index) {
	byID := ByID(Fixture())
	qs := append(filterQueries(), search.Query{Text: "headphones"}, search.Query{Text: "蓝牙"},
		search.Query{Text: "coffee", MaxPrice: ptr(int64(2000))}, search.Query{Text: "cotton", InStock: ptr(true)},
		search.Query{Text: "no-such-word-anywhere"})
	for _, q := range qs {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			all, _ := All(t, idx, q, 100)
			q.Facets, q.Limit = true, 3
			res := search1(t, idx, q)
			if res.Facets == nil {
				t.Fatal("no facets")
			}
			if want := BruteFacets(byID, all); !reflect.DeepEqual(*res.Facets, want) {
				t.Errorf("facets over %d matches\n got %s\nwant %s", len(all), show(*res.Facets), show(want))
			}
			if q.Facets = false; search1(t, idx, q).Facets != nil {
				t.Error("facets not asked for, given")
			}
		})
	}
}

func show(f search.Facets) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cat %v price", f.Categories)
	for _, p := range f.Price {
		fmt.Fprintf(&b, " %d+:%d", p.Min, p.Count)
	}
	fmt.Fprintf(&b, " rating %v stock %v", f.Rating, f.InStock)
	return b.String()
}

func testLanguages(t *testing.T, idx search.Index) {
	tests := []struct {
		text string
		want []string // each among the first len(want)+2 hits
	}{
		{"headphones", []string{"p001"}},
		{"Headphone", []string{"p001"}},          // stemming
		{"bluetoth headphnes", []string{"p001"}}, // two typos
		{"wireles earbud", []string{"p004"}},
		{"蓝牙耳机", []string{"p002"}},
		{"耳机", []string{"p002"}},
		{"纯棉T恤", []string{"p027"}},
		{"蓝牙 speaker", []string{"p003"}}, // mixed
		{"AUD-001-0", []string{"p001"}},  // a SKU
		{"三体", []string{"p056"}},
		{"espresso machine", []string{"p043"}},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			res := search1(t, idx, search.Query{Text: tc.text, Limit: len(tc.want) + 2})
			for _, w := range tc.want {
				if !slices.Contains(ids(res.Hits), w) {
					t.Errorf("%q: %s not among %v", tc.text, w, ids(res.Hits))
				}
			}
		})
	}
	// A word near no fixture word. (Not "xylophone": PostgreSQL's trigrams
	// find it half like "microphone".)
	if n := search1(t, idx, search.Query{Text: "quokka"}).Total; n != 0 {
		t.Errorf("quokka: %d hits, want none", n)
	}
}

func testInvalid(t *testing.T, idx search.Index) {
	ctx := context.Background()
	first := search1(t, idx, search.Query{Text: "tea", Limit: 2})
	if first.NextCursor == "" {
		t.Fatal("tea has one page of 2")
	}
	long := strings.Repeat("a", search.MaxTextLen+1)
	tests := []struct {
		name string
		q    search.Query
	}{
		{"limit -1", search.Query{Limit: -1}},
		{"limit over max", search.Query{Limit: search.MaxLimit + 1}},
		{"unknown sort", search.Query{Sort: "cheapest"}},
		{"text too long", search.Query{Text: long}},
		{"invalid UTF-8", search.Query{Text: "tea\xff"}},
		{"NUL", search.Query{Text: "tea\x00"}},
		{"garbage cursor", search.Query{Cursor: "!!!"}},
		{"base64 garbage cursor", search.Query{Cursor: "Z2FyYmFnZQ"}},
		{"cursor of another text", search.Query{Text: "coffee", Limit: 2, Cursor: first.NextCursor}},
		{"cursor of another sort", search.Query{Text: "tea", Sort: search.SortPriceAsc, Cursor: first.NextCursor}},
		{"cursor of another filter", search.Query{Text: "tea", InStock: ptr(true), Cursor: first.NextCursor}},
		{"min price above max", search.Query{MinPrice: ptr(int64(5)), MaxPrice: ptr(int64(4))}},
		{"rating above 5", search.Query{MinRating: 6}},
		{"bad category", search.Query{CategoryID: "\xff"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := idx.Search(ctx, tc.q)
			if !errors.Is(err, search.ErrInvalidQuery) {
				t.Errorf("err = %v, want ErrInvalidQuery", err)
			}
		})
	}
	// The same cursor with another limit continues.
	res := search1(t, idx, search.Query{Text: "tea", Limit: 3, Cursor: first.NextCursor})
	if len(res.Hits) == 0 || slices.Contains(ids(first.Hits), res.Hits[0].ID) {
		t.Errorf("cursor with another limit: %v after %v", ids(res.Hits), ids(first.Hits))
	}
	// At most MaxTextLen runes is fine, also in Chinese.
	search1(t, idx, search.Query{Text: strings.Repeat("茶", search.MaxTextLen)})
	// A cancelled context is an error, not a result.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := idx.Search(cctx, search.Query{Text: "tea"}); err == nil || errors.Is(err, search.ErrInvalidQuery) {
		t.Errorf("cancelled: err = %v, want the context's", err)
	}
}

// Hostile are texts a shopper may type that mean something to some query
// language; an index answers each with results or ErrInvalidQuery.
var Hostile = []string{
	`+-&&||!(){}[]^"~*?:\/`, `title:foo`, `title:headphones`, `AND OR NOT`, `headphones AND`, `NOT tea`,
	`"unclosed`, `tea~`, `tea^10`, `te*`, `?`, `*`, `/regex.*/`, `a:b:c`, `(tea OR coffee)`, `-tea`,
	`'; DROP TABLE search_documents; --`, `%_\%`, `<%`, `&`, `|`, `!`, `:*`, `tea:*`, `a & b | !c`,
	"\x00", "tea\x00", "\xff\xfe", "\xc3\x28", strings.Repeat("x", 10000), strings.Repeat("茶", 10000),
	"🎉🎉", "🎧 headphones", "   ", "\t\n", "", "ｈｅａｄｐｈｏｎｅｓ", "İstanbul", "ǅ", "\u200b", "\ufeff",
	strings.Repeat("a ", 100), strings.Repeat("ab", 100), "é", "e\u0301", `\`, `\\`, `$1`, `%s`,
}

func testHostile(t *testing.T, idx search.Index) {
	for i, text := range Hostile {
		for _, s := range []search.Sort{"", search.SortPriceAsc} {
			t.Run(fmt.Sprint(i, s), func(t *testing.T) {
				res, err := idx.Search(context.Background(), search.Query{Text: text, Sort: s, Facets: true, Limit: 5})
				if err != nil {
					if !errors.Is(err, search.ErrInvalidQuery) {
						t.Fatalf("%q: %v", text, err)
					}
					return
				}
				if res.Facets == nil || len(res.Hits) > 5 || res.Total < len(res.Hits) {
					t.Fatalf("%q: %d hits of %d, facets %v", text, len(res.Hits), res.Total, res.Facets)
				}
				if res.NextCursor != "" {
					if _, err := idx.Search(context.Background(), search.Query{Text: text, Sort: s, Limit: 5, Cursor: res.NextCursor}); err != nil {
						t.Fatalf("%q, page 2: %v", text, err)
					}
				}
			})
		}
	}
}

// testConcurrent: writers and readers at once; each writer reads its own
// writes.
func testConcurrent(t *testing.T, idx search.Index) {
	ctx := context.Background()
	fx := Fixture()
	const writers, each = 4, 15
	var wg sync.WaitGroup
	fail := make(chan string, writers*each)
	for g := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			word := []string{"zanzibar", "quixotic", "marmalade", "obsidian"}[g] // far apart
			for i := range each {
				d := fx[g*each+i]
				d.Title = word
				if err := idx.Put(ctx, []search.Document{d}); err != nil {
					fail <- err.Error()
					return
				}
				res, err := idx.Search(ctx, search.Query{Text: word, Limit: 100})
				if err != nil || res.Total != i+1 || !slices.Contains(ids(res.Hits), d.ID) {
					fail <- fmt.Sprintf("%s after %d puts: %d hits, %v", word, i+1, res.Total, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range each {
				if _, err := idx.Search(ctx, search.Query{Text: "tea", Facets: true}); err != nil {
					fail <- err.Error()
					return
				}
			}
		}()
	}
	wg.Wait()
	close(fail)
	for f := range fail {
		t.Error(f)
	}
	if n, _ := idx.Count(ctx); n != len(fx) {
		t.Errorf("Count = %d, want %d", n, len(fx))
	}
}

func ids(hits []search.Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}

func ptr[T any](v T) *T { return &v }
