// Package accountstest is test support for the modules' scenario tests: the
// accounts module (for tokens, roles and permissions) and the modules a
// test builds over one module.Platform, behind a real HTTP server on the
// group-commit write path, with a settable clock. Imported by tests only
// (the import rules allow a module's <name>test package there).
package accountstest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

// Password is every test user's password.
const Password = "violet-harbour-engine-42"

// T0 is the clock's start.
var T0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Shop is accounts plus a test's modules behind a real HTTP server.
type Shop struct {
	t        testing.TB
	DB       *sqldb.DB
	Platform module.Platform
	Accounts *accounts.Service
	Router   *web.Router
	Client   *webtest.Client // anonymous
	Clock    *sqldbtest.Clock
}

// New serves accounts and the modules that build returns over db (migrated
// with accounts' migrations and the modules' own), with cheap hashing; the
// write path, idempotency and the token cache stop when t ends.
func New(t testing.TB, db *sqldb.DB, build func(p module.Platform) []module.Module) *Shop {
	t.Helper()
	clk := sqldbtest.NewClock(T0)
	db.SetClock(clk.Now)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	idm := web.NewIdempotency(db, web.IdempotencyConfig{Logger: logger})
	t.Cleanup(func() { idm.Close() })
	write := groupcommit.New(db, groupcommit.Config{Logger: logger})
	t.Cleanup(write.Close)
	p := module.Platform{DB: db, Write: write, Idem: idm, Logger: logger}
	acc := accounts.New(p, nil, accounts.Config{Hash: accounts.HashParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}})
	t.Cleanup(acc.Close) // before write.Close: queued work still commits
	ctx, stop := context.WithCancel(context.Background())
	listening := make(chan struct{})
	go func() { defer close(listening); acc.RunInvalidations(ctx) }()
	t.Cleanup(func() { stop(); <-listening })
	mods := append([]module.Module{acc.Module()}, build(p)...)
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
	return &Shop{t: t, DB: db, Platform: p, Accounts: acc, Router: router, Client: webtest.Start(t, router), Clock: clk}
}

// Customer registers a customer over HTTP and returns its id and client.
func (s *Shop) Customer(email string) (string, *webtest.Client) {
	s.t.Helper()
	r := s.Client.Do("POST", "/api/v1/auth/register", map[string]string{"email": email, "password": Password, "name": "Customer " + email})
	r.WantStatus(s.t, http.StatusCreated)
	return r.Field("user.id").(string), s.Client.WithToken(r.Field("token").(string))
}

// Staff creates a staff member with roles and returns its id and client.
func (s *Shop) Staff(email string, roles ...string) (string, *webtest.Client) {
	s.t.Helper()
	u, err := s.Accounts.CreateUser(context.Background(), email, Password, "Staff "+email, roles)
	if err != nil {
		s.t.Fatalf("CreateUser: %v", err)
	}
	r := s.Client.Do("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": Password})
	r.WantStatus(s.t, http.StatusOK)
	return u.ID, s.Client.WithToken(r.Field("token").(string))
}
