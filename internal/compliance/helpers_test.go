package compliance

import (
	"context"
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

func sources() []migrate.Source {
	return []migrate.Source{accounts.Migrations(), audit.Migrations(), outbox.Migrations(), web.Migrations(),
		idem.Migrations(), Migrations()}
}

type clock = sqldbtest.Clock

// products is a Products double: the ids it knows.
type products map[string]bool

func (p products) ProductExistsTx(_ context.Context, _ *sqldb.Tx, id string) (bool, error) {
	return p[id], nil
}

// env is the compliance and accounts modules behind a real HTTP server on
// the group-commit write path.
type env struct {
	t     testing.TB
	db    *sqldb.DB
	svc   *Service
	acc   *accounts.Service
	c     *webtest.Client
	clock *clock
}

const password = "violet-harbour-engine-42"

func newEnv(t testing.TB, db *sqldb.DB) *env {
	t.Helper()
	clk := sqldbtest.NewClock(time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC))
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
	svc := New(p, products{"p-wine": true, "p-tea": true})
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
	return &env{t: t, db: db, svc: svc, acc: acc, c: webtest.Start(t, router), clock: clk}
}

func forEachEngine(t *testing.T, fn func(t *testing.T, e *env)) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) { fn(t, newEnv(t, db)) }, sources()...)
}

func (e *env) staff(email string, roles ...string) *webtest.Client {
	e.t.Helper()
	if _, err := e.acc.CreateUser(context.Background(), email, password, "Staff "+email, roles); err != nil {
		e.t.Fatalf("CreateUser: %v", err)
	}
	r := e.c.Do("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password})
	r.WantStatus(e.t, http.StatusOK)
	return e.c.WithToken(r.Field("token").(string))
}

func (e *env) customer(email string) *webtest.Client {
	e.t.Helper()
	r := e.c.Do("POST", "/api/v1/auth/register", map[string]string{"email": email, "password": password, "name": "C"})
	r.WantStatus(e.t, http.StatusCreated)
	return e.c.WithToken(r.Field("token").(string))
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
