package rates

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
}

const password = "violet-harbour-engine-42"

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newEnv(t testing.TB, db *sqldb.DB) *env {
	t.Helper()
	clk := sqldbtest.NewClock(t0)
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
	svc := New(p, Config{})
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
	return &env{t: t, db: db, svc: svc, acc: acc, router: router, c: webtest.Start(t, router), clock: clk}
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
