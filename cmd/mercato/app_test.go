package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web/webtest"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var listenRE = regexp.MustCompile(`listening on (http://[^ ]+)`)

// startInProcess runs `mercato serve` through run() with args and env, and
// returns a client for it; the server stops (and must exit cleanly) when the
// test ends.
func startInProcess(t testing.TB, env map[string]string, args ...string) (*webtest.Client, *syncBuffer) {
	t.Helper()
	c, out, _ := startWithLogs(t, env, args...)
	return c, out
}

// startWithLogs is startInProcess that also returns the server's standard
// error (its log; --log-level error unless args say otherwise).
func startWithLogs(t testing.TB, env map[string]string, args ...string) (*webtest.Client, *syncBuffer, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, logs := &syncBuffer{}, &syncBuffer{}
	getenv := func(k string) string { return env[k] }
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "error"}, args...), getenv, out, logs)
	}()
	var base string
	deadline := time.Now().Add(30 * time.Second)
	for base == "" {
		if m := listenRE.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v\n%s%s", err, out.String(), logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve did not stop cleanly: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	return webtest.NewClient(t, base), out, logs
}

// engines returns the serve arguments for each storage engine under test.
func engines(t *testing.T) map[string]func(t *testing.T) []string {
	return map[string]func(t *testing.T) []string{
		"sqlite": func(t *testing.T) []string { return []string{"--data-dir", t.TempDir()} },
		"postgres": func(t *testing.T) []string {
			return []string{"--data-dir", t.TempDir(), "--database-url", sqldbtest.PostgresURL(t)}
		},
	}
}

func TestCommandLine(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		wantOut string
	}{
		{"version", []string{"version"}, false, "mercato "},
		{"help", []string{"--help"}, false, "Usage:"},
		{"serve help", []string{"serve", "--help"}, false, "MERCATO_<FLAG>"},
		{"migrate help", []string{"migrate", "--help"}, false, "-database-url"},
		{"admin help", []string{"admin", "--help"}, false, "create-user"},
		{"create-user help", []string{"admin", "create-user", "--help"}, false, "-role"},
		{"search help", []string{"search", "--help"}, false, "reindex"},
		{"reindex help", []string{"search", "reindex", "--help"}, false, "-search"},
		{"search without a command", []string{"search"}, true, ""},
		{"postgres search on SQLite", []string{"search", "reindex", "--search", "postgres"}, true, ""},
		{"no command", nil, true, ""},
		{"unknown command", []string{"frobnicate"}, true, ""},
		{"unknown flag", []string{"serve", "--no-such-flag"}, true, ""},
		{"bad mfa mode", []string{"serve", "--staff-mfa", "sometimes"}, true, ""},
		{"bad smtp tls mode", []string{"serve", "--smtp-tls", "maybe"}, true, ""},
		{"smtp url without from", []string{"serve", "--smtp-url", "smtp://127.0.0.1:25"}, true, ""},
		{"create-user without email", []string{"admin", "create-user", "--password", "x"}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut syncBuffer
			err := run(ctx, tc.args, func(string) string { return "" }, &out, &errOut)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr && exitCode(err) != 2 {
				t.Errorf("exit code %d, want 2 for a usage error", exitCode(err))
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output %q does not contain %q", out.String(), tc.wantOut)
			}
		})
	}
}

func TestMigrateAndCreateUserFromEnvironment(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := map[string]string{"MERCATO_DATA_DIR": dir}
	getenv := func(k string) string { return env[k] }
	var out syncBuffer
	if err := run(ctx, []string{"migrate"}, getenv, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "migrated accounts") {
		t.Fatalf("migrate output: %s", out.String())
	}
	out = syncBuffer{}
	if err := run(ctx, []string{"migrate"}, getenv, &out, &out); err != nil || strings.Contains(out.String(), "migrated ") {
		t.Fatalf("second migrate: %v %s", err, out.String())
	}
	// create-user works while a server runs on the same SQLite data.
	c, _ := startInProcess(t, env)
	err := run(ctx, []string{"admin", "create-user", "--email", "Boss@Example.com", "--password", "Zebra-Quartz-Lamp-91", "--role", "admin"}, getenv, &out, &out)
	if err != nil {
		t.Fatal(err)
	}
	login := c.Do("POST", "/api/v1/auth/login", map[string]string{"email": "boss@example.com", "password": "Zebra-Quartz-Lamp-91"})
	login.WantStatus(t, http.StatusOK)
	if roles := login.Field("user.roles.0"); roles != "admin" {
		t.Fatalf("roles = %v", login.Field("user.roles"))
	}
	// A weak password is refused with a clear error and nothing created.
	err = run(ctx, []string{"admin", "create-user", "--email", "weak@example.com", "--password", "short"}, getenv, &out, &out)
	if err == nil {
		t.Fatal("weak password accepted")
	}
	c.Do("POST", "/api/v1/auth/login", map[string]string{"email": "weak@example.com", "password": "short"}).WantStatus(t, http.StatusUnauthorized)
}

// TestStaffRoutesNeedStaff walks every registered /api/v1/admin/ route: each
// declares a permission, anonymous callers get 401, customers 403.
func TestStaffRoutesNeedStaff(t *testing.T) {
	for name, args := range engines(t) {
		t.Run(name, func(t *testing.T) {
			c, admin := startShop(t, nil, args(t)...)
			customer, _ := registerCustomer(t, c, "cust@example.com", "C")

			doc := c.Do("GET", "/api/v1/openapi.json", nil)
			doc.WantStatus(t, http.StatusOK)
			paths, _ := doc.Field("paths").(map[string]any)
			n := 0
			for path, item := range paths {
				if !strings.HasPrefix(path, "/api/v1/admin/") {
					continue
				}
				for method, op := range item.(map[string]any) {
					if method == "parameters" {
						continue
					}
					perm, _ := op.(map[string]any)["x-permission"].(string)
					if perm == "" {
						t.Errorf("%s %s declares no permission", method, path)
					}
					concrete := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "x")
					m := strings.ToUpper(method)
					webtest.AssertProblem(t, c.Do(m, concrete, nil), http.StatusUnauthorized, "unauthorized")
					webtest.AssertProblem(t, customer.Do(m, concrete, nil), http.StatusForbidden, "forbidden")
					n++
				}
			}
			if n < 5 {
				t.Fatalf("only %d admin operations found", n)
			}
			sync := admin.Do("GET", "/api/v1/admin/sync", nil)
			sync.WantStatus(t, http.StatusOK)
			if _, ok := sync.Field("consumers").([]any); !ok {
				t.Errorf("sync consumers is not a list: %s", sync.Body)
			}
			if sync.Field("outbox_pending") == nil || sync.Field("dead_letters") == nil {
				t.Errorf("sync figures missing: %s", sync.Body)
			}
		})
	}
}

func TestOpenAPIListsEveryRoute(t *testing.T) {
	dir := t.TempDir()
	a, err := newApp(context.Background(), serveConfig{storeFlags: storeFlags{dataDir: dir}, staffMFA: "optional"},
		newLogger(&syncBuffer{}, "error", "json"), &syncBuffer{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	webtest.CheckOpenAPI(t, a.router)
}

func TestServeStopsCleanly(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir}, func(string) string { return "" }, out, &syncBuffer{})
	}()
	waitFor(t, 30*time.Second, "listening", func() bool { return listenRE.MatchString(out.String()) })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	// The stores are closed and the database is consistent: it reopens.
	db, err := sqldb.Open(context.Background(), sqldb.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}
