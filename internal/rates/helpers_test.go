package rates

import (
	"encoding/json"
	"testing"

	"mercato/internal/accounts"
	"mercato/internal/accounts/accountstest"
	"mercato/internal/audit"
	"mercato/internal/platform/idem"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

// sources are the migrations a rates test database needs.
func sources() []migrate.Source {
	return []migrate.Source{accounts.Migrations(), audit.Migrations(), outbox.Migrations(), web.Migrations(),
		idem.Migrations(), Migrations()}
}

type clock = sqldbtest.Clock

// env is the rates module and the accounts module behind a real HTTP
// server, on the group-commit write path.
type env struct {
	t      testing.TB
	db     *sqldb.DB
	svc    *Service
	acc    *accounts.Service
	router *web.Router
	c      *webtest.Client // anonymous
	clock  *clock
	shop   *accountstest.Shop
}

var t0 = accountstest.T0

func newEnv(t testing.TB, db *sqldb.DB) *env {
	t.Helper()
	var svc *Service
	shop := accountstest.New(t, db, func(p module.Platform) []module.Module {
		svc = New(p, Config{})
		return []module.Module{svc.Module()}
	})
	return &env{t: t, db: db, svc: svc, acc: shop.Accounts, router: shop.Router, c: shop.Client, clock: shop.Clock, shop: shop}
}

// forEachEngine runs fn with a fresh env on SQLite and PostgreSQL.
func forEachEngine(t *testing.T, fn func(t *testing.T, e *env)) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) { fn(t, newEnv(t, db)) }, sources()...)
}

// customer registers a customer over HTTP and returns its id and client.
func (e *env) customer(email string) (string, *webtest.Client) { return e.shop.Customer(email) }

// staff creates a staff member with roles and returns its id and client.
func (e *env) staff(email string, roles ...string) (string, *webtest.Client) {
	return e.shop.Staff(email, roles...)
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

// loads is how many table documents the cache has decoded.
func (e *env) loads() int {
	e.svc.cache.mu.Lock()
	defer e.svc.cache.mu.Unlock()
	return e.svc.cache.loads
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// decodeInto round-trips v through JSON into dst.
func decodeInto(t testing.TB, v any, dst any) {
	t.Helper()
	if err := json.Unmarshal(mustJSON(v), dst); err != nil {
		t.Fatal(err)
	}
}
