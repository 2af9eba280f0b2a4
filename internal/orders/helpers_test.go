package orders

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"mercato/internal/money"
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

//go:embed testdata/migrations
var testMigrations embed.FS

func sources() []migrate.Source {
	td, err := fs.Sub(testMigrations, "testdata")
	if err != nil {
		panic(err)
	}
	sub := migrate.Embedded("orderstest", td)
	return []migrate.Source{Migrations(), sub, outbox.Migrations(), web.Migrations(), idem.Migrations()}
}

// catalogDouble is a map-backed Catalog.
type catalogDouble struct {
	mu sync.Mutex
	m  map[string]Variant
}

func (c *catalogDouble) VariantsTx(_ context.Context, _ *sqldb.Tx, skus []string) (map[string]Variant, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]Variant{}
	for _, s := range skus {
		if v, ok := c.m[s]; ok {
			out[s] = v
		}
	}
	return out, nil
}

func (c *catalogDouble) set(v Variant) {
	c.mu.Lock()
	c.m[v.SKU] = v
	c.mu.Unlock()
}

// stockDouble reserves with one conditional UPDATE per line on
// orderstest_stock and one reservation row, all or nothing: a shortage is
// out_of_stock naming the short SKUs (the unit then rolls back).
type stockDouble struct{}

func (stockDouble) ReserveTx(ctx context.Context, tx *sqldb.Tx, ref, customerID string, lines []StockLine, ttl time.Duration) error {
	sorted := append([]StockLine(nil), lines...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].SKU < sorted[j].SKU })
	var short []string
	for _, l := range sorted {
		res, err := tx.ExecContext(ctx, `UPDATE orderstest_stock SET available = available - $1 WHERE sku = $2 AND available >= $1`, l.Quantity, l.SKU)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			short = append(short, l.SKU)
		}
	}
	if len(short) > 0 {
		return errs.E("inventory.Reserve", errs.Conflict, errs.CodeOutOfStock, "out of stock: "+strings.Join(short, ", "))
	}
	b, _ := json.Marshal(lines)
	_, err := tx.ExecContext(ctx, `INSERT INTO orderstest_reservations (ref, customer_id, lines, expires_at) VALUES ($1, $2, $3, $4)`,
		ref, nullable(customerID), string(b), sqldb.Micros(tx.Now.Add(ttl)))
	return err
}

// fakeAuth maps bearer tokens to principals; admin and operator hold every
// orders permission, customer_service orders.read.
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
		switch {
		case r == "admin", r == "operator" && strings.HasPrefix(perm, "orders."), r == "customer_service" && perm == PermRead:
			return true
		}
	}
	return false
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     testing.TB
	db    *sqldb.DB
	svc   *Service
	cat   *catalogDouble
	clock *clock
	c     *webtest.Client
	rt    *web.Router
}

func usd(n int64) money.Money { return money.MustNew(n, "USD") }

func newEnv(t testing.TB, db *sqldb.DB) *env {
	t.Helper()
	clk := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	db.SetClock(clk.Now)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	id := web.NewIdempotency(db, web.IdempotencyConfig{Logger: logger})
	t.Cleanup(func() { id.Close() })
	write := groupcommit.New(db, groupcommit.Config{Logger: logger})
	t.Cleanup(write.Close)
	cat := &catalogDouble{m: map[string]Variant{}}
	cat.set(Variant{SKU: "TEE-M", ProductID: "p-tee", Title: "Tee, M", Price: usd(1500), Sellable: true})
	cat.set(Variant{SKU: "MUG", ProductID: "p-mug", Title: "Mug", Price: usd(900), Sellable: true})
	cat.set(Variant{SKU: "OLD", ProductID: "p-old", Title: "Retired", Price: usd(100), Sellable: false})
	cat.set(Variant{SKU: "EUR-1", ProductID: "p-eur", Title: "Euro thing", Price: money.MustNew(100, "EUR"), Sellable: true})
	auth := fakeAuth{m: map[string]web.Principal{
		"alice": {UserID: "u-alice", Roles: []string{"customer"}},
		"bob":   {UserID: "u-bob", Roles: []string{"customer"}},
		"cs":    {UserID: "u-cs", Roles: []string{"customer_service"}},
		"op":    {UserID: "u-op", Roles: []string{"operator"}},
	}}
	svc := New(module.Platform{DB: db, Write: write, Idem: id, Logger: logger}, Deps{Catalog: cat, Stock: stockDouble{}, Perms: auth}, Config{})
	router := web.NewRouter(web.Config{Logger: logger, Auth: auth})
	for _, r := range svc.Module().Routes {
		router.Handle(r)
	}
	e := &env{t: t, db: db, svc: svc, cat: cat, clock: clk, c: webtest.Start(t, router), rt: router}
	e.setStock("TEE-M", 10)
	e.setStock("MUG", 3)
	e.setStock("EUR-1", 5)
	return e
}

func forEachEngine(t *testing.T, fn func(t *testing.T, e *env)) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) { fn(t, newEnv(t, db)) }, sources()...)
}

func (e *env) setStock(sku string, n int) {
	e.t.Helper()
	ctx := context.Background()
	if err := e.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM orderstest_stock WHERE sku = $1`, sku); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO orderstest_stock (sku, available) VALUES ($1, $2)`, sku, n)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) stock(sku string) int {
	e.t.Helper()
	var n int
	if err := e.db.Reader().QueryRow(`SELECT available FROM orderstest_stock WHERE sku = $1`, sku).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
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

// outboxTypes lists the types of the outbox events of order id, in order.
func (e *env) outboxTypes(id string) []string {
	e.t.Helper()
	rows, err := e.db.Reader().Query(`SELECT type FROM outbox WHERE aggregate_type = 'order' AND aggregate_id = $1 ORDER BY sequence`, id)
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

// outboxData returns the payload of order id's event of type typ.
func (e *env) outboxData(id, typ string) map[string]any {
	e.t.Helper()
	var s string
	if err := e.db.Reader().QueryRow(`SELECT data FROM outbox WHERE aggregate_id = $1 AND type = $2`, id, typ).Scan(&s); err != nil {
		e.t.Fatalf("%s of %s: %v", typ, id, err)
	}
	var m map[string]any
	json.Unmarshal([]byte(s), &m)
	return m
}

func (e *env) as(token string) *webtest.Client { return e.c.WithToken(token) }

var goodAddress = map[string]any{"name": "Alice A", "line1": "1 Main St", "city": "Springfield", "region": "IL",
	"postal_code": "62701", "country": "US"}

// cartWith creates a cart for client c with lines (sku, qty, …) and returns its id.
func (e *env) cartWith(c *webtest.Client, lines ...any) string {
	e.t.Helper()
	r := c.Do("POST", "/api/v1/carts", nil)
	r.WantStatus(e.t, http.StatusCreated)
	id := r.Field("id").(string)
	for i := 0; i < len(lines); i += 2 {
		c.Do("POST", "/api/v1/carts/"+id+"/items", map[string]any{"sku": lines[i], "quantity": lines[i+1]}).WantStatus(e.t, http.StatusOK)
	}
	return id
}

// placed checks out cart id for c and returns the order id.
func (e *env) placed(c *webtest.Client, cart string) string {
	e.t.Helper()
	r := c.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": goodAddress})
	r.WantStatus(e.t, http.StatusCreated)
	return r.Field("id").(string)
}

func amount(r *webtest.Response, path string) int64 {
	v, _ := r.Field(path + ".amount").(float64)
	return int64(v)
}

func fieldStr(r *webtest.Response, path string) string { return fmt.Sprint(r.Field(path)) }
