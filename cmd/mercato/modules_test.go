package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

// serve --modules runs the named modules' API only, on the same database.
func TestServeModulesSubset(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"MERCATO_DATA_DIR": dir}
	all, _ := startInProcess(t, env, "--data-dir", t.TempDir()) // every module
	sub, _ := startInProcess(t, nil, "--data-dir", dir, "--modules", "audit,syncmon")
	register := map[string]string{"email": "mod@example.com", "password": "a long enough password", "name": "M"}

	all.Do("POST", "/api/v1/auth/register", register).WantStatus(t, http.StatusCreated)
	webtest.AssertProblem(t, sub.Do("POST", "/api/v1/auth/register", register), http.StatusNotFound, "not_found")
	// The subset's own routes are there (and still guarded by the accounts
	// module's tokens, which authenticate in every process).
	webtest.AssertProblem(t, sub.Do("GET", "/api/v1/admin/sync", nil), http.StatusUnauthorized, "unauthorized")
	webtest.AssertProblem(t, sub.Do("GET", "/api/v1/admin/audit", nil), http.StatusUnauthorized, "unauthorized")
	paths, _ := sub.Do("GET", "/api/v1/openapi.json", nil).Field("paths").(map[string]any)
	var api []string
	for p := range paths {
		if strings.HasPrefix(p, "/api/v1/") && p != "/api/v1/openapi.json" {
			api = append(api, p)
		}
	}
	slices.Sort(api)
	if want := []string{"/api/v1/admin/audit", "/api/v1/admin/orders/{id}/sync", "/api/v1/admin/sync", "/api/v1/admin/sync/consumers/{name}/replay",
		"/api/v1/admin/sync/issues", "/api/v1/admin/sync/replays", "/api/v1/admin/sync/replays/{id}"}; !slices.Equal(api, want) {
		t.Errorf("the audit,syncmon subset serves %v, want %v", api, want)
	}
}

func TestServeModulesRefusesUnknown(t *testing.T) {
	var out, errOut syncBuffer
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--modules", "accounts,orderz"},
		func(string) string { return "" }, &out, &errOut)
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "unknown module orderz") {
		t.Fatalf("err = %v (exit %d), want a usage error naming orderz", err, exitCode(err))
	}
}

// The shop's module list is wired consistently: every route's permission is
// defined, names are unique, and the accounts role table holds every
// module's permissions.
func TestShopWiring(t *testing.T) {
	s, err := newShop(module.Platform{}, nil, shopConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := module.Check(s.modules); err != nil {
		t.Fatal(err)
	}
	for _, p := range module.Permissions(s.modules) {
		if !s.accounts.Allowed(web.Principal{UserID: "u", Roles: []string{"admin"}}, p.Name) {
			t.Errorf("admin does not hold %s", p.Name)
		}
	}
}

// The periodic work of the platform and the modules runs on the job
// runner: every job has its lease row once the server has run it.
func TestServeRunsPeriodicJobs(t *testing.T) {
	dir := t.TempDir()
	startInProcess(t, nil, "--data-dir", dir)
	db, err := sqldb.Open(context.Background(), sqldb.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := []string{"accounts.prune", "channels.retention", "inbox.prune",
		"inbox.replay.catalog_search", "inbox.replay.logistics_orders", "inbox.replay.webhooks", "logistics.complete", "logistics.track", "notifications.dead_letters", "notifications.send", "orders.expire", "orders.retention", "outbox.prune", "payments.reconcile", "web.idempotency-prune", "webhooks.dispatch", "webhooks.filedrop", "webhooks.prune"}
	var got []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got = got[:0]
		rows, err := db.Reader().Query(`SELECT name FROM jobs_leases WHERE runs > 0 ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n string
			rows.Scan(&n)
			got = append(got, n)
		}
		rows.Close()
		if slices.Equal(got, want) {
			return
		}
	}
	t.Fatalf("jobs run: %v, want %v", got, want)
}
