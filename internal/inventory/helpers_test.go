package inventory

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/audit"
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

// sources are the migrations an inventory test database needs.
func sources() []migrate.Source {
	return []migrate.Source{Migrations(), accounts.Migrations(), audit.Migrations(), outbox.Migrations(), web.Migrations(), idem.Migrations(), inbox.Migrations()}
}

// clock is a settable test clock for the database.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// flushLog keeps what Config.OnFlush is told.
type flushLog struct {
	mu sync.Mutex
	fs []Flush
}

func (l *flushLog) add(f Flush) { l.mu.Lock(); l.fs = append(l.fs, f); l.mu.Unlock() }

func (l *flushLog) of(sku string) []Flush {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Flush
	for _, f := range l.fs {
		if f.SKU == sku {
			out = append(out, f)
		}
	}
	return out
}

// env is an inventory service on a group-commit batcher behind a real HTTP
// server, with the accounts module authenticating.
type env struct {
	t       testing.TB
	db      *sqldb.DB
	svc     *Service
	write   *groupcommit.Batcher
	router  *web.Router
	clock   *clock
	flushes *flushLog
	anon    *webtest.Client
	op      *webtest.Client // an operator
	cs      *webtest.Client // customer service: no inventory permission
	opID    string
}

var testHash = accounts.HashParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}

const password = "violet-harbour-engine-42"

func newEnv(t testing.TB, db *sqldb.DB, cfg Config) *env {
	t.Helper()
	clk := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	db.SetClock(clk.Now)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	idm := web.NewIdempotency(db, web.IdempotencyConfig{Logger: logger})
	t.Cleanup(func() { idm.Close() })
	write := groupcommit.New(db, groupcommit.Config{Logger: logger})
	t.Cleanup(write.Close)
	p := module.Platform{DB: db, Write: write, Idem: idm, Logger: logger}
	fl := &flushLog{}
	if cfg.OnFlush == nil {
		cfg.OnFlush = fl.add
	}
	svc := New(p, cfg)
	acc := accounts.New(p, nil, accounts.Config{Hash: testHash})
	t.Cleanup(acc.Close)
	acc.UseModules([]module.Module{acc.Module(), svc.Module()})
	router := web.NewRouter(web.Config{Logger: logger, Auth: acc})
	for _, r := range append(svc.Routes(), acc.Routes()...) {
		router.Handle(r)
	}
	e := &env{t: t, db: db, svc: svc, write: write, router: router, clock: clk, flushes: fl, anon: webtest.Start(t, router)}
	e.opID, e.op = e.staff(acc, "op@example.com", accounts.RoleOperator)
	_, e.cs = e.staff(acc, "cs@example.com", accounts.RoleCustomerService)
	return e
}

func (e *env) staff(acc *accounts.Service, email, role string) (string, *webtest.Client) {
	e.t.Helper()
	ctx := context.Background()
	u, err := acc.CreateUser(ctx, email, password, "Staff", []string{role})
	if err != nil {
		e.t.Fatalf("CreateUser: %v", err)
	}
	res, err := acc.Login(ctx, accounts.LoginRequest{Email: email, Password: password}, "127.0.0.1")
	if err != nil {
		e.t.Fatalf("Login: %v", err)
	}
	return u.ID, e.anon.WithToken(res.Token)
}

// forEachEngine runs fn with a fresh env on SQLite and PostgreSQL.
func forEachEngine(t *testing.T, cfg Config, fn func(t *testing.T, e *env)) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) { fn(t, newEnv(t, db, cfg)) }, sources()...)
}

// setStock sets sku's on_hand at location through the Go API.
func (e *env) setStock(sku, location string, onHand int64) {
	e.t.Helper()
	if _, err := e.svc.SetStock(context.Background(), sku, location, onHand, e.opID); err != nil {
		e.t.Fatalf("SetStock(%s, %s, %d): %v", sku, location, onHand, err)
	}
}

// level reads sku's stock, failing the test on an error.
func (e *env) level(sku string) Level {
	e.t.Helper()
	lv, err := e.svc.Stock(context.Background(), sku)
	if err != nil {
		e.t.Fatalf("Stock(%s): %v", sku, err)
	}
	return lv
}

// checkInvariant fails unless every stock row holds 0 <= reserved <=
// on_hand and reserved equals the units of live reservations there.
func (e *env) checkInvariant() {
	e.t.Helper()
	rows, err := e.db.Reader().Query(`SELECT s.sku, s.location, s.on_hand, s.reserved,
		COALESCE((SELECT SUM(l.quantity) FROM inventory_reservation_lines l JOIN inventory_reservations r ON r.ref = l.ref
			WHERE l.sku = s.sku AND l.location = s.location AND r.status = 'reserved'), 0)
		FROM inventory_stock s`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var sku, loc string
		var onHand, reserved, live int64
		if err := rows.Scan(&sku, &loc, &onHand, &reserved, &live); err != nil {
			e.t.Fatal(err)
		}
		if reserved < 0 || onHand < reserved || reserved != live {
			e.t.Errorf("%s at %s: on_hand %d, reserved %d, live reservations %d", sku, loc, onHand, reserved, live)
		}
	}
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

// events lists the outbox's "type aggregate_id" pairs, oldest first.
func (e *env) events() []string {
	e.t.Helper()
	rows, err := e.db.Reader().Query(`SELECT type, aggregate_id FROM outbox ORDER BY id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var typ, id string
		rows.Scan(&typ, &id)
		out = append(out, typ+" "+id)
	}
	return out
}

// tables are every table a request of this module may write.
var tables = []string{"inventory_locations", "inventory_stock", "inventory_guards", "inventory_ledger",
	"inventory_reservations", "inventory_reservation_lines", "inventory_customer_units", "outbox", "audit_log", "idempotency_records"}

func (e *env) snapshot() map[string]int {
	m := map[string]int{}
	for _, t := range tables {
		m[t] = e.count(t, "")
	}
	return m
}

func (e *env) assertUnchanged(before map[string]int) {
	e.t.Helper()
	for table, n := range e.snapshot() {
		if n != before[table] {
			e.t.Errorf("%s has %d rows after a refused request, %d before", table, n, before[table])
		}
	}
}
