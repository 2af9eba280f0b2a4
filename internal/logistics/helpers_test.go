package logistics

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/audit"
	"mercato/internal/inventory"
	"mercato/internal/logistics/carrier"
	"mercato/internal/logistics/sandboxcarrier"
	"mercato/internal/money"
	"mercato/internal/orders"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/idem"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

func sources() []migrate.Source {
	return []migrate.Source{Migrations(), orders.Migrations(), inventory.Migrations(), accounts.Migrations(), audit.Migrations(),
		outbox.Migrations(), web.Migrations(), idem.Migrations(), inbox.Migrations()}
}

// catalogDouble prices every SKU of the tests.
type catalogDouble struct{}

var prices = map[string]int64{"TEE": 1500, "MUG": 900, "CAP": 2000}

func (catalogDouble) VariantsTx(_ context.Context, _ *sqldb.Tx, skus []string) (map[string]orders.Variant, error) {
	out := map[string]orders.Variant{}
	for _, s := range skus {
		if p, ok := prices[s]; ok {
			out[s] = orders.Variant{SKU: s, ProductID: "p-" + s, Title: s, Price: money.MustNew(p, "USD"), Sellable: true}
		}
	}
	return out, nil
}

// stock is inventory as orders reserves (cmd/mercato has the same adapter).
type stock struct{ inv *inventory.Service }

func (a stock) ReserveTx(ctx context.Context, tx *sqldb.Tx, ref, customerID string, lines []orders.StockLine, ttl time.Duration) error {
	ls := make([]inventory.Line, len(lines))
	for i, l := range lines {
		ls[i] = inventory.Line{SKU: l.SKU, Quantity: int64(l.Quantity)}
	}
	_, err := a.inv.ReserveTx(ctx, tx, ref, customerID, ls, ttl)
	return err
}

// fakeAuth maps bearer tokens to principals and grants the permissions of
// the roles as the modules declare them.
type fakeAuth struct {
	m     map[string]web.Principal
	roles map[string][]string // permission → staff roles besides admin
}

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
		if r == accounts.RoleAdmin {
			return true
		}
		for _, x := range a.roles[perm] {
			if x == r {
				return true
			}
		}
	}
	return false
}

type clock = sqldbtest.Clock

const (
	step   = 5 * time.Second
	secret = "sandbox webhook secret"
)

// serverSecret is the test server secret warehouse secrets are sealed under.
var serverSecret = []byte("0123456789abcdef0123456789abcdef")

type env struct {
	t       testing.TB
	db      *sqldb.DB
	clock   *clock
	svc     *Service
	ord     *orders.Service
	inv     *inventory.Service
	sandbox *sandboxcarrier.Sandbox
	c       *webtest.Client
	alice   *webtest.Client // a customer
	bob     *webtest.Client // another customer
	op      *webtest.Client // an operator
	cs      *webtest.Client // customer service
}

func newEnv(t testing.TB, db *sqldb.DB) *env {
	t.Helper()
	clk := sqldbtest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	db.SetClock(clk.Now)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	id := web.NewIdempotency(db, web.IdempotencyConfig{Logger: logger})
	t.Cleanup(func() { id.Close() })
	write := groupcommit.New(db, groupcommit.Config{Logger: logger})
	t.Cleanup(write.Close)
	p := module.Platform{DB: db, Write: write, Idem: id, Logger: logger}
	auth := fakeAuth{m: map[string]web.Principal{
		"alice": {UserID: "u-alice", Roles: []string{accounts.RoleCustomer}},
		"bob":   {UserID: "u-bob", Roles: []string{accounts.RoleCustomer}},
		"op":    {UserID: "u-op", Roles: []string{accounts.RoleOperator}},
		"cs":    {UserID: "u-cs", Roles: []string{accounts.RoleCustomerService}},
	}, roles: map[string][]string{}}
	inv := inventory.New(p, inventory.Config{})
	ord := orders.New(p, orders.Deps{Catalog: catalogDouble{}, Stock: stock{inv}, Perms: auth}, orders.Config{})
	sb := sandboxcarrier.New(sandboxcarrier.Config{Step: step, Now: db.Now, Secret: []byte(secret)})
	svc := New(p, Deps{Orders: ord, Stock: inv, Carriers: []carrier.Carrier{sb}}, Config{TrackEvery: step, Secret: serverSecret})
	router := web.NewRouter(web.Config{Logger: logger, Auth: auth})
	for _, m := range []module.Module{inv.Module(), ord.Module(), svc.Module()} {
		for _, perm := range m.Permissions {
			auth.roles[perm.Name] = perm.Roles
		}
		for _, r := range m.Routes {
			router.Handle(r)
		}
	}
	c := webtest.Start(t, router)
	e := &env{t: t, db: db, clock: clk, svc: svc, ord: ord, inv: inv, sandbox: sb, c: c,
		alice: c.WithToken("alice"), bob: c.WithToken("bob"), op: c.WithToken("op"), cs: c.WithToken("cs")}
	for sku, n := range map[string]int64{"TEE": 50, "MUG": 50, "CAP": 50} {
		if _, err := inv.SetStock(context.Background(), sku, "default", n, "u-op"); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func forEachEngine(t *testing.T, fn func(t *testing.T, e *env)) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) { fn(t, newEnv(t, db)) }, sources()...)
}

// placed checks out a cart of c with lines (sku, quantity, …) and returns
// the order id, unpaid.
func (e *env) placed(c *webtest.Client, lines ...any) string {
	e.t.Helper()
	r := c.Do("POST", "/api/v1/carts", nil)
	r.WantStatus(e.t, http.StatusCreated)
	cart := r.Field("id").(string)
	for i := 0; i < len(lines); i += 2 {
		c.Do("POST", "/api/v1/carts/"+cart+"/items", map[string]any{"sku": lines[i], "quantity": lines[i+1]}).WantStatus(e.t, http.StatusOK)
	}
	r = c.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": map[string]any{"name": "Alice A",
		"line1": "1 Main St", "city": "Springfield", "region": "IL", "postal_code": "62701", "country": "US"}})
	r.WantStatus(e.t, http.StatusCreated)
	return r.Field("id").(string)
}

// paid places and pays an order of c and delivers order.paid to the
// inventory and logistics consumers, as the inbox would.
func (e *env) paid(c *webtest.Client, lines ...any) string {
	e.t.Helper()
	id := e.placed(c, lines...)
	c.Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"}).WantStatus(e.t, http.StatusOK)
	ev := event.Envelope{Type: orders.OrderPaid.Type(), AggregateType: "order", AggregateID: id}
	ctx := context.Background()
	if err := e.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if err := e.inv.HandleOrderEvent(ctx, tx, ev); err != nil {
			return err
		}
		return e.svc.HandleOrderEvent(ctx, tx, ev)
	}); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) order(id string) *webtest.Response {
	e.t.Helper()
	r := e.op.Do("GET", "/api/v1/admin/orders/"+id, nil)
	r.WantStatus(e.t, http.StatusOK)
	return r
}

// types lists the outbox event types about aggregate id, in order.
func (e *env) types(aggregateType, id string) []string {
	e.t.Helper()
	rows, err := e.db.Reader().Query(`SELECT type FROM outbox WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence`, aggregateType, id)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// data returns the payload of aggregate id's last event of type typ.
func (e *env) data(id, typ string) map[string]any {
	e.t.Helper()
	var s string
	if err := e.db.Reader().QueryRow(`SELECT data FROM outbox WHERE aggregate_id = $1 AND type = $2 ORDER BY sequence DESC LIMIT 1`, id, typ).Scan(&s); err != nil {
		e.t.Fatalf("%s of %s: %v", typ, id, err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.Reader().QueryRow(q, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// track advances the clock by d and runs the logistics.track job once.
func (e *env) track(d time.Duration) {
	e.t.Helper()
	e.clock.Advance(d)
	if _, err := e.svc.Track(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// deliver runs the sandbox until every shipment of the shop is delivered.
func (e *env) deliverAll() {
	e.t.Helper()
	for range 12 {
		e.track(step)
	}
	if n := e.count(`SELECT count(*) FROM logistics_shipments WHERE status <> 'delivered'`); n != 0 {
		e.t.Fatalf("%d shipments not delivered after 12 steps", n)
	}
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
