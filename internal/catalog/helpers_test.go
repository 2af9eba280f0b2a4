package catalog

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mercato/internal/catalog/search"
	"mercato/internal/money"
	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/idem"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

// sources are the migrations a catalog test database needs.
func sources() []migrate.Source {
	return []migrate.Source{Migrations(), outbox.Migrations(), web.Migrations(), idem.Migrations()}
}

// testAuth is a test double of the accounts module's Authenticator: the
// bearer token names the role ("admin", "operator", "customer_service",
// "customer"); the roles hold the catalog's permissions as Module() says.
type testAuth struct{ perms []module.Permission }

func (a testAuth) Authenticate(r *http.Request) (web.Principal, bool, error) {
	tok, ok := bearer(r)
	if !ok {
		return web.Principal{}, false, nil
	}
	return web.Principal{UserID: "user-" + tok, Roles: []string{tok}}, true, nil
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 8 || h[:7] != "Bearer " {
		return "", false
	}
	return h[7:], true
}

func (a testAuth) Allowed(p web.Principal, perm string) bool {
	if p.HasRole("admin") {
		return true
	}
	for _, d := range a.perms {
		if d.Name != perm {
			continue
		}
		for _, r := range d.Roles {
			if p.HasRole(r) {
				return true
			}
		}
	}
	return false
}

// fixedRatings is a RatingSource test double.
type fixedRatings map[string]Rating

func (f fixedRatings) Ratings(_ context.Context, ids []string) (map[string]Rating, error) {
	out := map[string]Rating{}
	for _, id := range ids {
		if r, ok := f[id]; ok {
			out[id] = r
		}
	}
	return out, nil
}

// env is one catalog behind a real HTTP server.
type env struct {
	t        testing.TB
	db       *sqldb.DB
	svc      *Service
	anon     *webtest.Client
	admin    *webtest.Client
	operator *webtest.Client
	cs       *webtest.Client
	customer *webtest.Client
	router   *web.Router
}

// newEnv serves a catalog over db with cfg.
func newEnv(t testing.TB, db *sqldb.DB, cfg Config) *env {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	idm := web.NewIdempotency(db, web.IdempotencyConfig{Logger: logger})
	t.Cleanup(func() { idm.Close() })
	write := groupcommit.New(db, groupcommit.Config{Logger: logger})
	t.Cleanup(write.Close)
	svc := New(module.Platform{DB: db, Write: write, Idem: idm, Logger: logger}, cfg)
	listen(t, svc)
	m := svc.Module()
	router := web.NewRouter(web.Config{Logger: logger, Auth: testAuth{perms: m.Permissions}})
	for _, r := range m.Routes {
		router.Handle(r)
	}
	router.HandleOps(nil)
	c := webtest.Start(t, router)
	return &env{t: t, db: db, svc: svc, anon: c, admin: c.WithToken("admin"), operator: c.WithToken("operator"),
		cs: c.WithToken("customer_service"), customer: c.WithToken("customer"), router: router}
}

func forEachEngine(t *testing.T, cfg func() Config, fn func(t *testing.T, e *env)) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		c := Config{}
		if cfg != nil {
			c = cfg()
		}
		fn(t, newEnv(t, db, c))
	}, sources()...)
}

func eur(amount int64) money.Money { return money.MustNew(amount, "EUR") }

// product is a valid create body.
func product(title string, skus ...string) map[string]any {
	var vs []any
	for i, s := range skus {
		vs = append(vs, map[string]any{"sku": s, "title": "V" + s, "price": map[string]any{"amount": 1000 + i*100, "currency": "EUR"},
			"attributes": map[string]string{"size": "M"}})
	}
	return map[string]any{"title": title, "description": "A " + title, "status": "active", "variants": vs}
}

// create posts body as the operator and returns the product.
func (e *env) create(body map[string]any) Product {
	e.t.Helper()
	r := e.operator.Do("POST", "/api/v1/admin/products", body)
	r.WantStatus(e.t, http.StatusCreated)
	var p Product
	r.Decode(e.t, &p)
	return p
}

func (e *env) category(name string, parent string) Category {
	e.t.Helper()
	body := map[string]any{"name": name}
	if parent != "" {
		body["parent_id"] = parent
	}
	r := e.operator.Do("POST", "/api/v1/admin/categories", body)
	r.WantStatus(e.t, http.StatusCreated)
	var c Category
	r.Decode(e.t, &c)
	return c
}

// outboxEvent is one appended event.
type outboxEvent struct {
	Type, AggregateID string
	Data              map[string]any
}

// events lists the outbox's events, oldest first.
func (e *env) events() []outboxEvent {
	e.t.Helper()
	rows, err := e.db.Reader().Query(`SELECT type, aggregate_id, data FROM outbox ORDER BY id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxEvent
	for rows.Next() {
		var ev outboxEvent
		var data string
		if err := rows.Scan(&ev.Type, &ev.AggregateID, &data); err != nil {
			e.t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(data), &ev.Data); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func (e *env) eventTypes() []string {
	var out []string
	for _, ev := range e.events() {
		out = append(out, ev.Type)
	}
	return out
}

func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.db.Reader().QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// memIndex is a test double of search.Index: an in-memory index whose
// Search matches Text as a case-insensitive substring of the title or a
// SKU, filters by category and channel, and refuses what the contract says
// an index refuses. It counts its writes.
type memIndex struct {
	mu            sync.Mutex
	docs          map[string]search.Document
	puts, deletes int
}

func newMemIndex() *memIndex { return &memIndex{docs: map[string]search.Document{}} }

func (m *memIndex) Put(_ context.Context, docs []search.Document) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	for _, d := range docs {
		m.docs[d.ID] = d
	}
	return nil
}

func (m *memIndex) Delete(_ context.Context, ids []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deletes++
	for _, id := range ids {
		delete(m.docs, id)
	}
	return nil
}

func (m *memIndex) Search(_ context.Context, q search.Query) (search.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len([]rune(q.Text)) > search.MaxTextLen || q.Cursor != "" || q.Sort != "" && q.Sort != search.SortRelevance {
		return search.Result{}, search.ErrInvalidQuery
	}
	var ids []string
	for id, d := range m.docs {
		hit := containsFold(d.Title, q.Text) || slices.ContainsFunc(d.SKUs, func(s string) bool { return containsFold(s, q.Text) })
		if hit && (q.CategoryID == "" || slices.Contains(d.CategoryIDs, q.CategoryID)) &&
			(q.Channel == "" || slices.Contains(d.Channels, q.Channel)) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	slices.Reverse(ids)
	res := search.Result{Total: len(ids), Hits: []search.Hit{}}
	cats := map[string]int{}
	for _, id := range ids {
		res.Hits = append(res.Hits, search.Hit{ID: id, Score: 1})
		for _, c := range m.docs[id].CategoryIDs {
			cats[c]++
		}
	}
	if q.Facets {
		f := &search.Facets{Categories: []search.Count{}, Price: []search.PriceCount{}, Rating: []search.Count{},
			InStock: []search.Count{{Value: "true", Count: len(ids)}, {Value: "false", Count: 0}}}
		for _, c := range slices.Sorted(mapKeys(cats)) {
			f.Categories = append(f.Categories, search.Count{Value: c, Count: cats[c]})
		}
		res.Facets = f
	}
	return res, nil
}

func mapKeys(m map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (m *memIndex) Count(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.docs), nil
}
func (m *memIndex) Close() error { return nil }

func containsFold(s, sub string) bool {
	return sub != "" && strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

type clientT = webtest.Client

func openSQLite(t testing.TB) *sqldb.DB { return sqldbtest.Open(t, sqldb.SQLite, sources()...) }

func platformOf(db *sqldb.DB) module.Platform { return module.Platform{DB: db, Write: db} }

func pageOf(limit int) web.PageRequest { return web.PageRequest{Limit: limit} }

// IDs lists the documents' ids (search.IDLister, which Rebuild uses).
func (m *memIndex) IDs(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.docs)), nil
}

// listen runs svc's invalidations (its own notify hub) until the test ends
// and waits until the in-process cache is trusted (PostgreSQL: the hub
// listens; a round trip, which the deadline only bounds for a broken test).
func listen(tb testing.TB, svc *Service) {
	tb.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.RunInvalidations(ctx) }()
	tb.Cleanup(func() { stop(); <-done })
	for deadline := time.Now().Add(30 * time.Second); !svc.cacheTrusted(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatal("the catalog's invalidations never listened")
		}
	}
}
