package payments

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"mercato/internal/audit"
	"mercato/internal/money"
	"mercato/internal/orders"
	"mercato/internal/payments/provider"
	"mercato/internal/payments/sandboxpay"
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

func sources() []migrate.Source {
	return []migrate.Source{orders.Migrations(), Migrations(), audit.Migrations(), outbox.Migrations(), web.Migrations(), idem.Migrations()}
}

// catalog prices every SKU at 1000 USD cents; stock always reserves.
type catalog struct{}

func (catalog) VariantsTx(_ context.Context, _ *sqldb.Tx, skus []string) (map[string]orders.Variant, error) {
	out := map[string]orders.Variant{}
	for _, s := range skus {
		out[s] = orders.Variant{SKU: s, ProductID: "p-" + s, Title: s, Price: money.MustNew(1000, "USD"), Sellable: true}
	}
	return out, nil
}

type stock struct{}

func (stock) ReserveTx(context.Context, *sqldb.Tx, string, string, []orders.StockLine, time.Duration) error {
	return nil
}

// fakeAuth maps bearer tokens to principals; operator and customer_service
// hold the payments permissions and orders.read.
type fakeAuth struct{ m map[string]web.Principal }

func (a fakeAuth) Authenticate(r *http.Request) (web.Principal, bool, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return web.Principal{}, false, nil
	}
	p, ok := a.m[strings.TrimPrefix(h, "Bearer ")]
	if !ok {
		return web.Principal{}, false, errs.E("fakeAuth", errs.Unauthorized)
	}
	return p, true, nil
}

func (a fakeAuth) Allowed(p web.Principal, perm string) bool {
	for _, r := range p.Roles {
		if (r == "operator" || r == "customer_service") && (strings.HasPrefix(perm, "payments.") || perm == orders.PermRead || perm == "sync.read") {
			return true
		}
	}
	return false
}

type clock = sqldbtest.Clock

type env struct {
	t     testing.TB
	db    *sqldb.DB
	svc   *Service
	ord   *orders.Service
	sbx   *sandboxpay.Sandbox
	flaky *flaky
	clock *clock
	auth  fakeAuth
	c     *webtest.Client
}

var webhookSecret = []byte("whsec_test_0123456789abcdef")

func newEnv(t testing.TB, db *sqldb.DB) *env {
	t.Helper()
	clk := sqldbtest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	db.SetClock(clk.Now)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	id := web.NewIdempotency(db, web.IdempotencyConfig{Logger: logger})
	t.Cleanup(func() { id.Close() })
	write := groupcommit.New(db, groupcommit.Config{Logger: logger})
	t.Cleanup(write.Close)
	auth := fakeAuth{m: map[string]web.Principal{
		"alice": {UserID: "u-alice", Roles: []string{"customer"}},
		"bob":   {UserID: "u-bob", Roles: []string{"customer"}},
		"cs":    {UserID: "u-cs", Roles: []string{"customer_service"}},
		"op":    {UserID: "u-op", Roles: []string{"operator"}},
	}}
	p := module.Platform{DB: db, Write: write, Idem: id, Logger: logger}
	sbx := sandboxpay.New(webhookSecret, clk.Now)
	fl := &flaky{Sandbox: sbx}
	svc := New(p, []provider.Provider{fl}, Config{})
	ord := orders.New(p, orders.Deps{Catalog: catalog{}, Stock: stock{}, Perms: auth, Payment: svc}, orders.Config{})
	svc.UseOrders(ord)
	router := web.NewRouter(web.Config{Logger: logger, Auth: auth})
	for _, r := range append(ord.Module().Routes, svc.Module().Routes...) {
		router.Handle(r)
	}
	return &env{t: t, db: db, svc: svc, ord: ord, sbx: sbx, flaky: fl, clock: clk, auth: auth, c: webtest.Start(t, router)}
}

// inlineSandbox serves the reference of the pay figures on e's database
// and committer: an orders module without the payments module, paying
// with its inline Sandbox (one unit, no payment rows).
func (e *env) inlineSandbox() *webtest.Client {
	inline := orders.New(module.Platform{DB: e.db, Write: e.svc.write, Idem: e.svc.idem, Logger: e.svc.logger},
		orders.Deps{Catalog: catalog{}, Stock: stock{}, Perms: e.auth}, orders.Config{})
	rt := web.NewRouter(web.Config{Logger: e.svc.logger, Auth: e.auth})
	for _, r := range inline.Module().Routes {
		rt.Handle(r)
	}
	return webtest.Start(e.t, rt)
}

func forEachEngine(t *testing.T, fn func(t *testing.T, e *env)) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) { fn(t, newEnv(t, db)) }, sources()...)
}

func (e *env) as(token string) *webtest.Client { return e.c.WithToken(token) }

var goodAddress = map[string]any{"name": "Alice A", "line1": "1 Main St", "city": "Springfield", "region": "IL",
	"postal_code": "62701", "country": "US"}

// order places an order of qty TEE (10.00 each, plus shipping) for c and
// returns its id.
func (e *env) order(c *webtest.Client, qty int) string {
	e.t.Helper()
	r := c.Do("POST", "/api/v1/carts", nil)
	r.WantStatus(e.t, http.StatusCreated)
	cart := r.Field("id").(string)
	c.Do("POST", "/api/v1/carts/"+cart+"/items", map[string]any{"sku": "TEE", "quantity": qty}).WantStatus(e.t, http.StatusOK)
	r = c.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": goodAddress})
	r.WantStatus(e.t, http.StatusCreated)
	return r.Field("id").(string)
}

// paid places and pays an order for alice; it returns its id and total.
func (e *env) paid(qty int) (string, int64) {
	e.t.Helper()
	id := e.order(e.as("alice"), qty)
	r := e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"})
	r.WantStatus(e.t, http.StatusOK)
	return id, int64(r.Field("total.amount").(float64))
}

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

// events lists the types of the outbox events about order id (the
// order's own and its payment's), in the order appended.
func (e *env) events(orderID string) []string {
	e.t.Helper()
	rows, err := e.db.Reader().Query(`SELECT o.type FROM outbox o WHERE (o.aggregate_type = 'order' AND o.aggregate_id = $1)
		OR (o.aggregate_type = 'payment' AND o.aggregate_id IN (SELECT id FROM payments_intents WHERE order_id = $1)) ORDER BY o.id`, orderID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

// eventData returns the payload of the event of type typ about order id.
func (e *env) eventData(orderID, typ string) map[string]any {
	e.t.Helper()
	var s string
	if err := e.db.Reader().QueryRow(`SELECT data FROM outbox WHERE type = $1 AND data LIKE $2`, typ, "%"+orderID+"%").Scan(&s); err != nil {
		e.t.Fatalf("%s of %s: %v", typ, orderID, err)
	}
	var m map[string]any
	json.Unmarshal([]byte(s), &m)
	return m
}

func (e *env) orderStatus(id string) (status, payment string) {
	e.t.Helper()
	if err := e.db.Reader().QueryRow(`SELECT status, payment_status FROM orders_orders WHERE id = $1`, id).Scan(&status, &payment); err != nil {
		e.t.Fatal(err)
	}
	return status, payment
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type sqldbTx = sqldb.Tx

func refundOf(ref string, amount int64) provider.RefundRequest {
	return provider.RefundRequest{Key: "test-" + ref, Ref: ref, Amount: money.MustNew(amount, "USD")}
}

// flaky is the sandbox whose next lostRefunds refunds are made but their
// answers lost (ErrAmbiguous), like a timeout after the PSP acted.
type flaky struct {
	*sandboxpay.Sandbox
	mu          sync.Mutex
	lostRefunds int
	refunds     int // refunds the sandbox was asked for
}

func (f *flaky) Refund(ctx context.Context, r provider.RefundRequest) (provider.Refund, error) {
	rf, err := f.Sandbox.Refund(ctx, r)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refunds++
	if err == nil && f.lostRefunds > 0 {
		f.lostRefunds--
		return provider.Refund{}, provider.ErrAmbiguous
	}
	return rf, err
}

func (f *flaky) loseRefunds(n int) { f.mu.Lock(); f.lostRefunds = n; f.mu.Unlock() }
