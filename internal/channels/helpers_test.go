package channels

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/audit"
	"mercato/internal/inventory"
	"mercato/internal/money"
	"mercato/internal/orders"
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

// sources are the migrations a channels test database needs: the real
// accounts (tokens), orders and inventory beside the module's own.
func sources() []migrate.Source {
	return []migrate.Source{Migrations(), accounts.Migrations(), audit.Migrations(), orders.Migrations(), inventory.Migrations(),
		outbox.Migrations(), web.Migrations(), idem.Migrations()}
}

// catalogDouble is a fixed catalog: the orders module's Catalog port.
type catalogDouble map[string]orders.Variant

func (c catalogDouble) VariantsTx(_ context.Context, _ *sqldb.Tx, skus []string) (map[string]orders.Variant, error) {
	out := map[string]orders.Variant{}
	for _, s := range skus {
		if v, ok := c[s]; ok {
			out[s] = v
		}
	}
	return out, nil
}

// stockAdapter is the inventory as orders reserves (as cmd/mercato wires it).
type stockAdapter struct{ inv *inventory.Service }

func (a stockAdapter) ReserveTx(ctx context.Context, tx *sqldb.Tx, ref, customerID string, lines []orders.StockLine, ttl time.Duration) error {
	ls := make([]inventory.Line, len(lines))
	for i, l := range lines {
		ls[i] = inventory.Line{SKU: l.SKU, Quantity: int64(l.Quantity)}
	}
	_, err := a.inv.ReserveTx(ctx, tx, ref, customerID, ls, ttl)
	return err
}

// env is the channels module with real accounts, orders and inventory
// behind a real HTTP server.
type env struct {
	t     testing.TB
	db    *sqldb.DB
	svc   *Service
	inv   *inventory.Service
	c     *webtest.Client
	rt    *web.Router
	clk   *sqldbtest.Clock
	op    string // an operator's token (holds channels.manage)
	admin string // an admin's token
}

const password = "violet-harbour-engine-42"

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
	acc := accounts.New(p, accounts.LogMailer{Logger: logger}, accounts.Config{Hash: accounts.HashParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}})
	t.Cleanup(acc.Close)
	inv := inventory.New(p, inventory.Config{})
	usd := func(n int64) money.Money { return money.MustNew(n, "USD") }
	cat := catalogDouble{
		"TEE-M": {SKU: "TEE-M", ProductID: "p-tee", Title: "Tee, M", Price: usd(1500), Sellable: true},
		"MUG":   {SKU: "MUG", ProductID: "p-mug", Title: "Mug", Price: usd(900), Sellable: true},
	}
	ord := orders.New(p, orders.Deps{Catalog: cat, Stock: stockAdapter{inv}, Perms: acc}, orders.Config{})
	svc := New(p, Deps{Orders: ord, Tokens: acc}, Config{})
	mods := []module.Module{acc.Module(), inv.Module(), ord.Module(), svc.Module()}
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
	e := &env{t: t, db: db, svc: svc, inv: inv, c: webtest.Start(t, router), rt: router, clk: clk}
	e.op = e.staff(acc, "op@example.com", accounts.RoleOperator)
	e.admin = e.staff(acc, "admin@example.com", accounts.RoleAdmin)
	for sku, n := range map[string]int64{"TEE-M": 10, "MUG": 3} {
		if _, err := inv.SetStock(context.Background(), sku, "", n, "test"); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func forEachEngine(t *testing.T, fn func(t *testing.T, e *env)) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) { fn(t, newEnv(t, db)) }, sources()...)
}

// staff creates a staff member with role and returns their token.
func (e *env) staff(acc *accounts.Service, email, role string) string {
	e.t.Helper()
	if _, err := acc.CreateUser(context.Background(), email, password, "Staff", []string{role}); err != nil {
		e.t.Fatalf("CreateUser: %v", err)
	}
	r := e.c.Do("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password})
	r.WantStatus(e.t, http.StatusOK)
	return r.Field("token").(string)
}

// channel registers a channel over HTTP and returns a token for it.
func (e *env) channel(code, kind string) string {
	e.t.Helper()
	e.c.WithToken(e.op).Do("POST", "/api/v1/admin/channels", map[string]string{"code": code, "name": "Channel " + code, "kind": kind}).
		WantStatus(e.t, http.StatusCreated)
	r := e.c.WithToken(e.op).Do("POST", "/api/v1/admin/channels/"+code+"/tokens", nil)
	r.WantStatus(e.t, http.StatusCreated)
	return r.Field("token").(string)
}

// level is sku's stock.
func (e *env) level(sku string) inventory.Level {
	e.t.Helper()
	lv, err := e.inv.Stock(context.Background(), sku)
	if err != nil {
		e.t.Fatal(err)
	}
	return lv
}

// count is the number of rows of table matching where.
func (e *env) count(table, where string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.Reader().QueryRow("SELECT count(*) FROM "+table+" WHERE "+where, args...).Scan(&n); err != nil {
		e.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// outboxEvent is one appended event.
type outboxEvent struct {
	Type, AggregateID string
	Data              map[string]any
}

// events are the outbox's events of type typ, in order.
func (e *env) events(typ string) []outboxEvent {
	e.t.Helper()
	rows, err := e.db.Reader().Query(`SELECT type, aggregate_id, data FROM outbox WHERE type = $1 ORDER BY id`, typ)
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
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// importBody is an import request of external id ext with lines.
func importBody(ext string, lines ...map[string]any) map[string]any {
	return map[string]any{
		"external_id": ext,
		"lines":       lines,
		"customer":    map[string]any{"email": "buyer@example.com", "name": "Bea Buyer"},
		"shipping_address": map[string]any{"name": "Bea Buyer", "line1": "1 Quay St", "city": "Leith", "region": "Edinburgh",
			"postal_code": "EH6 6AA", "country": "GB"},
	}
}

func line(sku string, qty int, amount any) map[string]any {
	return map[string]any{"sku": sku, "quantity": qty, "unit_price": map[string]any{"amount": amount, "currency": "USD"}}
}
