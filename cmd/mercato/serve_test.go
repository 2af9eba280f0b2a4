package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"mercato/internal/platform/sqldb/sqldbtest"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string { return freeAddr(t) }

// TestServeStartupFailures starts serve with inputs that cannot work: each
// ends with an error (exit 1, not a panic), reported on one stderr line
// that names what failed.
func TestServeStartupFailures(t *testing.T) {
	busy := listenBusy(t)
	tests := []struct {
		name string
		args func(t *testing.T) []string
		want string // on the one "mercato:" line
	}{
		{"database url not a url", func(t *testing.T) []string { return []string{"--database-url", "not a url"} },
			"database: "},
		{"database url of another engine", func(t *testing.T) []string { return []string{"--database-url", "mysql://u@127.0.0.1/db"} },
			"database: "},
		{"database on a closed port", func(t *testing.T) []string {
			return []string{"--database-url", "postgres://postgres@" + closedAddr(t) + "/test?sslmode=disable"}
		}, "connection refused"},
		{"database role unknown", func(t *testing.T) []string {
			u, err := url.Parse(sqldbtest.PostgresURL(t))
			if err != nil {
				t.Fatal(err)
			}
			u.User = url.User("mercato_no_such_role")
			return []string{"--database-url", u.String()}
		}, `role "mercato_no_such_role" does not exist`},
		{"nats unreachable", func(t *testing.T) []string { return []string{"--nats-url", "nats://" + closedAddr(t)} },
			"bus (NATS nats://127.0.0.1:"},
		{"api address in use", func(t *testing.T) []string { return []string{"--addr", busy} }, "--addr: "},
		{"metrics address in use", func(t *testing.T) []string { return []string{"--metrics-addr", busy} },
			"--metrics-addr: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "error", "--data-dir", t.TempDir()}, tc.args(t)...)
			var out, errOut syncBuffer
			err := run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
			if err == nil {
				t.Fatal("serve started")
			}
			if exitCode(err) != 1 {
				t.Errorf("exit code %d, want 1", exitCode(err))
			}
			lines := mercatoLines(errOut.String())
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("stderr lines %q, want one containing %q", lines, tc.want)
			}
			if strings.Contains(out.String(), "listening") {
				t.Errorf("stdout announces a server: %s", out.String())
			}
		})
	}
}

// listenBusy returns an address a listener holds until the test ends.
func listenBusy(t *testing.T) string {
	t.Helper()
	srv := &http.Server{Handler: http.NotFoundHandler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// mercatoLines returns the lines of s that start with "mercato:".
func mercatoLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "mercato:") {
			out = append(out, l)
		}
	}
	return out
}

// TestUsageErrorsReportedOnce checks that a command-line mistake exits 2,
// prints its error on stderr once and first, then the command's usage when
// a flag was wrong, and nothing on stdout.
func TestUsageErrorsReportedOnce(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantErr   string
		wantUsage string // "" : no usage printed
	}{
		{"bad log level", []string{"serve", "--log-level", "loud"}, nil,
			`invalid value "loud" for flag -log-level`, "Usage: mercato serve"},
		{"bad log format", []string{"serve", "--log-format", "xml"}, nil,
			`invalid value "xml" for flag -log-format`, "Usage: mercato serve"},
		{"bad mfa mode", []string{"serve", "--staff-mfa", "sometimes"}, nil,
			`invalid value "sometimes" for flag -staff-mfa`, "Usage: mercato serve"},
		{"unknown flag", []string{"serve", "--no-such-flag"}, nil,
			"flag provided but not defined: -no-such-flag", "Usage: mercato serve"},
		{"bad duration", []string{"serve", "--shutdown-timeout", "soon"}, nil,
			`invalid value "soon" for flag -shutdown-timeout`, "Usage: mercato serve"},
		{"stray argument", []string{"migrate", "now"}, nil, `unexpected argument "now"`, "Usage: mercato migrate"},
		{"bad log level from env", []string{"serve"}, map[string]string{"MERCATO_LOG_LEVEL": "loud"},
			`MERCATO_LOG_LEVEL="loud"`, ""},
		{"unknown command", []string{"frobnicate"}, nil, `unknown command "frobnicate"`, "Usage:\n  mercato serve"},
		{"no command", nil, nil, "no command given", "Usage:\n  mercato serve"},
		{"unknown admin command", []string{"admin", "delete-everything"}, nil,
			`unknown admin command "delete-everything"`, "Usage: mercato admin"},
		{"create-user without email", []string{"admin", "create-user", "--password", "x"}, nil,
			"--email and --password are required", "Usage: mercato admin create-user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut syncBuffer
			err := run(context.Background(), tc.args, func(k string) string { return tc.env[k] }, &out, &errOut)
			if err == nil || exitCode(err) != 2 {
				t.Fatalf("err = %v (exit %d), want a usage error (exit 2)", err, exitCode(err))
			}
			got := errOut.String()
			first, rest, _ := strings.Cut(got, "\n")
			if !strings.HasPrefix(first, "mercato: ") || !strings.Contains(first, tc.wantErr) {
				t.Errorf("first stderr line %q, want the error %q", first, tc.wantErr)
			}
			if n := strings.Count(got, tc.wantErr); n != 1 {
				t.Errorf("the error appears %d times on stderr:\n%s", n, got)
			}
			if tc.wantUsage == "" && strings.TrimSpace(rest) != "" {
				t.Errorf("more than the error line:\n%s", got)
			}
			if tc.wantUsage != "" && !strings.Contains(rest, tc.wantUsage) {
				t.Errorf("no usage %q after the error:\n%s", tc.wantUsage, got)
			}
			if out.String() != "" {
				t.Errorf("stdout: %q", out.String())
			}
		})
	}
}

// TestHelpSaysWhatIsTrue checks the help texts name what exists and only that.
func TestHelpSaysWhatIsTrue(t *testing.T) {
	tests := []struct {
		args    []string
		want    []string
		notWant []string
	}{
		{[]string{"--help"}, []string{"mercato serve", "outbox relay"}, []string{"web UI"}},
		{[]string{"serve", "--help"}, []string{"MERCATO_BOOTSTRAP_ADMIN_EMAIL", "MERCATO_BOOTSTRAP_ADMIN_PASSWORD",
			"-metrics-addr", "-log-format", "shared by replicas", "webhook URLs resolve to loopback", "-search"},
			[]string{"web UI"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out syncBuffer
			if err := run(context.Background(), tc.args, func(string) string { return "" }, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("help lacks %q", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("help still says %q", w)
				}
			}
		})
	}
}

// TestDataDirLock checks that one serve at a time runs on a data directory,
// that the lock is taken before anything else touches the directory, and
// that no lock is needed when nothing lives there.
func TestDataDirLock(t *testing.T) {
	ctx := context.Background()
	noEnv := func(string) string { return "" }
	serveOn := func(dir string, extra ...string) (error, string) {
		var out, errOut syncBuffer
		args := append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "error", "--data-dir", dir}, extra...)
		err := run(ctx, args, noEnv, &out, &errOut)
		return err, errOut.String()
	}
	wantRefused := func(t *testing.T, err error, stderr, dir string) {
		t.Helper()
		if !errors.Is(err, errDataDirInUse) || exitCode(err) != 1 {
			t.Fatalf("err = %v, want the data directory refused (exit 1)", err)
		}
		if lines := mercatoLines(stderr); len(lines) != 1 || !strings.Contains(lines[0], dir) {
			t.Errorf("stderr lines %q, want one naming %s", lines, dir)
		}
	}
	// holdLock takes the lock the way a running server does.
	holdLock := func(t *testing.T, dir string) {
		t.Helper()
		l, err := lockDataDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Release)
	}

	t.Run("second server refused, migrate and admin work beside the first", func(t *testing.T) {
		dir := t.TempDir()
		env := map[string]string{"MERCATO_DATA_DIR": dir}
		startInProcess(t, env)
		err, stderr := serveOn(dir)
		wantRefused(t, err, stderr, dir)
		if !regexp.MustCompile(`process \d+`).MatchString(stderr) {
			t.Errorf("the message does not name the holder: %s", stderr)
		}
		var out syncBuffer
		getenv := func(k string) string { return env[k] }
		if err := run(ctx, []string{"migrate"}, getenv, &out, &out); err != nil {
			t.Fatalf("migrate beside the server: %v\n%s", err, out.String())
		}
		if err := run(ctx, []string{"admin", "create-user", "--email", "ops@example.com", "--password", "a long enough password"},
			getenv, &out, &out); err != nil {
			t.Fatalf("admin beside the server: %v\n%s", err, out.String())
		}
	})
	t.Run("lock taken before the directory is touched", func(t *testing.T) {
		dir := t.TempDir()
		holdLock(t, dir)
		err, stderr := serveOn(dir)
		wantRefused(t, err, stderr, dir)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != lockFileName {
			t.Errorf("the refused server left %v in the data directory", entries)
		}
	})
	t.Run("postgres with embedded NATS locks too", func(t *testing.T) {
		dir := t.TempDir()
		holdLock(t, dir)
		err, stderr := serveOn(dir, "--database-url", sqldbtest.PostgresURL(t))
		wantRefused(t, err, stderr, dir)
		if _, err := os.Stat(filepath.Join(dir, "nats")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the refused server created its JetStream store: %v", err)
		}
	})
	t.Run("both external need no lock", func(t *testing.T) {
		natsURL := os.Getenv("MERCATO_TEST_NATS_URL")
		if natsURL == "" {
			t.Skip("external NATS case skipped: MERCATO_TEST_NATS_URL is not set")
		}
		dir := t.TempDir()
		holdLock(t, dir)
		startInProcess(t, nil, "--data-dir", dir, "--database-url", sqldbtest.PostgresURL(t), "--nats-url", natsURL, "--search", "postgres")
	})
	t.Run("a stopped server frees the directory", func(t *testing.T) {
		dir := t.TempDir()
		l, err := lockDataDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lockDataDir(dir); !errors.Is(err, errDataDirInUse) {
			t.Fatalf("second lock: %v", err)
		}
		l.Release()
		l.Release() // idempotent
		startInProcess(t, nil, "--data-dir", dir)
	})
}
