package reviews

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/audit"
	"mercato/internal/platform/errs"
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

// sources are the migrations a reviews test database needs: reviews', and
// those of the accounts module that authenticates and erases.
func sources() []migrate.Source {
	return []migrate.Source{accounts.Migrations(), audit.Migrations(), outbox.Migrations(), web.Migrations(),
		idem.Migrations(), Migrations()}
}

// catalog is the Products double: product id → active.
type catalog struct {
	mu     sync.Mutex
	active map[string]bool
	calls  int // Reviewable calls
}

func newCatalog(active ...string) *catalog {
	c := &catalog{active: map[string]bool{}}
	for _, id := range active {
		c.active[id] = true
	}
	return c
}

func (c *catalog) Reviewable(_ context.Context, _ *sqldb.Tx, productID string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	return c.active[productID], nil
}

func (c *catalog) set(productID string, active bool) {
	c.mu.Lock()
	c.active[productID] = active
	c.mu.Unlock()
}

// orders is the Purchases double: the customer/product pairs with a paid order.
type orders struct {
	mu   sync.Mutex
	paid map[[2]string]bool
}

func (o *orders) HasPaidOrder(_ context.Context, tx *sqldb.Tx, customerID, productID string) (bool, error) {
	if tx == nil {
		panic("HasPaidOrder called outside the unit")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.paid[[2]string{customerID, productID}], nil
}

func (o *orders) pay(customerID, productID string) {
	o.mu.Lock()
	o.paid[[2]string{customerID, productID}] = true
	o.mu.Unlock()
}

type clock = sqldbtest.Clock

// env is the reviews module and the accounts module behind a real HTTP
// server, on the group-commit write path.
type env struct {
	t        testing.TB
	db       *sqldb.DB
	svc      *Service
	acc      *accounts.Service
	router   *web.Router
	c        *webtest.Client // anonymous
	clock    *clock
	products *catalog
	orders   *orders
}

const password = "violet-harbour-engine-42"

func newEnv(t testing.TB, db *sqldb.DB) *env {
	t.Helper()
	clk := sqldbtest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	db.SetClock(clk.Now)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	idm := web.NewIdempotency(db, web.IdempotencyConfig{Logger: logger})
	t.Cleanup(func() { idm.Close() })
	write := groupcommit.New(db, groupcommit.Config{Logger: logger})
	t.Cleanup(write.Close)
	p := module.Platform{DB: db, Write: write, Idem: idm, Logger: logger}
	acc := accounts.New(p, nil, accounts.Config{Hash: accounts.HashParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}})
	t.Cleanup(acc.Close)
	ctx, stop := context.WithCancel(context.Background())
	listening := make(chan struct{})
	go func() { defer close(listening); acc.RunInvalidations(ctx) }()
	t.Cleanup(func() { stop(); <-listening })
	products, purchases := newCatalog("p-1", "p-2"), &orders{paid: map[[2]string]bool{}}
	svc := New(p, Deps{Products: products, Purchases: purchases})
	mods := []module.Module{acc.Module(), svc.Module()}
	if err := module.Check(mods); err != nil {
		t.Fatal(err)
	}
	acc.UseModules(mods)
	router := web.NewRouter(web.Config{Logger: logger, Auth: acc})
	for _, m := range mods {
		for _, r := range m.Routes {
			router.Handle(r)
		}
	}
	return &env{t: t, db: db, svc: svc, acc: acc, router: router, c: webtest.Start(t, router), clock: clk,
		products: products, orders: purchases}
}

// forEachEngine runs fn with a fresh env on SQLite and PostgreSQL.
func forEachEngine(t *testing.T, fn func(t *testing.T, e *env)) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) { fn(t, newEnv(t, db)) }, sources()...)
}

// customer registers a customer over HTTP and returns its id and client.
func (e *env) customer(email string) (string, *webtest.Client) {
	e.t.Helper()
	r := e.c.Do("POST", "/api/v1/auth/register", map[string]string{"email": email, "password": password, "name": "Customer " + email})
	r.WantStatus(e.t, http.StatusCreated)
	return r.Field("user.id").(string), e.c.WithToken(r.Field("token").(string))
}

// staff creates a staff member with roles and returns its id and client.
func (e *env) staff(email string, roles ...string) (string, *webtest.Client) {
	e.t.Helper()
	u, err := e.acc.CreateUser(context.Background(), email, password, "Staff "+email, roles)
	if err != nil {
		e.t.Fatalf("CreateUser: %v", err)
	}
	r := e.c.Do("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password})
	r.WantStatus(e.t, http.StatusOK)
	return u.ID, e.c.WithToken(r.Field("token").(string))
}

// rating is productID's rating as the catalog reads it.
func (e *env) rating(productID string) Rating {
	e.t.Helper()
	m, err := e.svc.Ratings(context.Background(), []string{productID})
	if err != nil {
		e.t.Fatalf("Ratings: %v", err)
	}
	return m[productID]
}

// wantRating fails unless productID's rating is want, both as Ratings
// reads it and as the review rows say (count and sum of the visible ones).
func (e *env) wantRating(productID string, want Rating) {
	e.t.Helper()
	if got := e.rating(productID); got != want {
		e.t.Errorf("rating of %s = %+v, want %+v", productID, got, want)
	}
	var n, sum int64
	if err := e.db.Reader().QueryRow(`SELECT count(*), COALESCE(SUM(rating), 0) FROM reviews_reviews
		WHERE product_id = $1 AND status = 'visible'`, productID).Scan(&n, &sum); err != nil {
		e.t.Fatal(err)
	}
	if got := newRating(n, sum); got != want {
		e.t.Errorf("the visible reviews of %s make %+v, want %+v", productID, got, want)
	}
}

// reviewEvent is one review event from the outbox.
type reviewEvent struct {
	Type, AggregateType, AggregateID string
	Data                             ReviewEvent
}

// events returns the review events in the outbox, oldest first.
func (e *env) events() []reviewEvent {
	e.t.Helper()
	rows, err := e.db.Reader().Query(`SELECT type, aggregate_type, aggregate_id, data FROM outbox
		WHERE aggregate_type = 'review' ORDER BY id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []reviewEvent
	for rows.Next() {
		var ev reviewEvent
		var data string
		if err := rows.Scan(&ev.Type, &ev.AggregateType, &ev.AggregateID, &data); err != nil {
			e.t.Fatal(err)
		}
		dec := json.NewDecoder(stringsReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev.Data); err != nil {
			e.t.Fatalf("event %s data %s: %v", ev.Type, data, err)
		}
		out = append(out, ev)
	}
	return out
}

// auditEntry is one row of the audit log.
type auditEntry struct {
	Actor, Action, TargetType, TargetID, IP, Before, After string
}

// audits returns the audit log's entries about reviews, oldest first.
func (e *env) audits() []auditEntry {
	e.t.Helper()
	rows, err := e.db.Reader().Query(`SELECT actor_id, action, target_type, target_id, ip, COALESCE(before_json, ''),
		COALESCE(after_json, '') FROM audit_log WHERE target_type = 'review' ORDER BY created_at, id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []auditEntry
	for rows.Next() {
		var a auditEntry
		if err := rows.Scan(&a.Actor, &a.Action, &a.TargetType, &a.TargetID, &a.IP, &a.Before, &a.After); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// count returns the number of rows of table matching where (optional).
func (e *env) count(table, where string, args ...any) int {
	e.t.Helper()
	q := "SELECT count(*) FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	var n int
	if err := e.db.Reader().QueryRow(q, args...).Scan(&n); err != nil {
		e.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

// fieldsOf lists the fields an Invalid error names.
func fieldsOf(err error) []string {
	var e *errs.Error
	if !errors.As(err, &e) {
		return nil
	}
	var out []string
	for _, f := range e.Fields {
		out = append(out, f.Field)
	}
	return out
}

// openDB is a fresh database of engine e migrated with sources().
func openDB(t testing.TB, e sqldb.Engine) *sqldb.DB { return sqldbtest.Open(t, e, sources()...) }

// pageOf is a first page of limit items.
func pageOf(limit int) web.PageRequest { return web.PageRequest{Limit: limit} }
