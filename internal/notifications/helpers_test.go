package notifications

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/money"
	"mercato/internal/orders"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

// clock is a settable test clock for the database.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// fakeShop is the accounts, orders and logistics the module reads.
type fakeShop struct {
	users  map[string]accounts.User
	orders map[string]orders.Order
}

func (f *fakeShop) User(_ context.Context, id string) (accounts.User, error) {
	u, ok := f.users[id]
	if !ok {
		return accounts.User{}, errs.E("fake.User", errs.NotFound, "no user")
	}
	return u, nil
}

func (f *fakeShop) OrderTx(_ context.Context, _ *sqldb.Tx, id string) (orders.Order, error) {
	o, ok := f.orders[id]
	if !ok {
		return orders.Order{}, errs.E("fake.OrderTx", errs.NotFound, "no order")
	}
	return o, nil
}

func (f *fakeShop) TrackingLink(_ context.Context, orderID, shipmentID string) (string, error) {
	return "https://track.example/" + orderID + "/" + shipmentID + "?a=1&b=2", nil
}

// addOrder adds customer (when not "") and an order of theirs.
func (f *fakeShop) addOrder(id, number, customerID, name string, total int64) {
	if customerID != "" {
		f.users[customerID] = accounts.User{ID: customerID, Email: customerID + "@example.com", Name: name}
	}
	var cust *string
	if customerID != "" {
		cust = &customerID
	}
	f.orders[id] = orders.Order{ID: id, Number: number, CustomerID: cust, Currency: "EUR", Total: money.MustNew(total, "EUR")}
}

// env is a notifications Service over a test database, its fakes and clock.
type env struct {
	t    *testing.T
	db   *sqldb.DB
	svc  *Service
	shop *fakeShop
	clk  *clock
}

func newEnv(t *testing.T, db *sqldb.DB, cfg Config) *env {
	clk := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	db.SetClock(clk.Now)
	shop := &fakeShop{users: map[string]accounts.User{}, orders: map[string]orders.Order{}}
	svc := New(moduleFor(db), Deps{Customers: shop, Orders: shop, Tracking: shop}, cfg)
	return &env{t: t, db: db, svc: svc, shop: shop, clk: clk}
}

// moduleFor is a Platform over db, whose write path is db itself.
func moduleFor(db *sqldb.DB) module.Platform {
	return module.Platform{DB: db, Write: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func forEachEngine(t *testing.T, cfg func() Config, fn func(t *testing.T, e *env)) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) { fn(t, newEnv(t, db, cfg())) }, Migrations())
}

// deliver runs the consumer on ev in a unit of its own, as the inbox does.
func (e *env) deliver(ev event.Envelope, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.Do(context.Background(), func(tx *sqldb.Tx) error { return e.svc.HandleEvent(context.Background(), tx, ev) }); err != nil {
		e.t.Fatalf("HandleEvent %s: %v", ev.Type, err)
	}
}

// send runs the sender once and returns how many it sent.
func (e *env) send() int64 {
	e.t.Helper()
	n, err := e.svc.SendDue(context.Background())
	if err != nil {
		e.t.Fatalf("SendDue: %v", err)
	}
	return n
}

// messages is the log of customer (all when ""), oldest first.
func (e *env) messages(customer string) []Message {
	e.t.Helper()
	p, err := e.svc.List(context.Background(), customer, "", web.PageRequest{Limit: 100})
	if err != nil {
		e.t.Fatalf("List: %v", err)
	}
	slices.Reverse(p.Items)
	return p.Items
}

func (e *env) setLocale(customer, locale string) {
	e.t.Helper()
	f := false
	if _, err := e.svc.SetPreferences(context.Background(), customer, PreferencesRequest{Locale: locale, Marketing: &f}); err != nil {
		e.t.Fatalf("SetPreferences: %v", err)
	}
}

// fakeAuth takes "Bearer <user id>:<role,role>".
type fakeAuth struct{}

func (fakeAuth) Authenticate(r *http.Request) (web.Principal, bool, error) {
	h := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if h == "" {
		return web.Principal{}, false, nil
	}
	id, roles, _ := strings.Cut(h, ":")
	return web.Principal{UserID: id, Roles: strings.Split(roles, ",")}, true, nil
}

func (fakeAuth) Allowed(p web.Principal, perm string) bool {
	return p.HasRole(accounts.RoleAdmin) || (perm == PermRead && (p.HasRole(accounts.RoleCustomerService) || p.HasRole(accounts.RoleOperator)))
}

// serve starts the module's routes behind a real HTTP server.
func (e *env) serve() *webtest.Client {
	rt := web.NewRouter(web.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Auth: fakeAuth{}})
	for _, r := range e.svc.Module().Routes {
		rt.Handle(r)
	}
	return webtest.Start(e.t, rt)
}
