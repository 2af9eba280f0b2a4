package accounts

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

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

// testHash is cheap argon2id for tests that are not about hashing.
var testHash = HashParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}

// sources are the migrations an accounts test database needs.
func sources() []migrate.Source {
	return []migrate.Source{Migrations(), audit.Migrations(), outbox.Migrations(), web.Migrations(), idem.Migrations()}
}

type clock = sqldbtest.Clock

// mailbox is a Mailer that keeps what it is given.
type mailbox struct{ ch chan Message }

func (m mailbox) Send(_ context.Context, msg Message) error {
	m.ch <- msg
	return nil
}

// env is one accounts service behind a real HTTP server.
type env struct {
	t      testing.TB
	db     *sqldb.DB
	svc    *Service
	router *web.Router
	c      *webtest.Client // anonymous client
	clock  *clock
	mail   mailbox
}

// newEnv serves a Service over db (migrated with sources()) with cfg
// (cheap hashing unless cfg.Hash is set).
func newEnv(t testing.TB, db *sqldb.DB, cfg Config) *env {
	t.Helper()
	if cfg.Hash.MemoryKiB == 0 {
		cfg.Hash = testHash
	}
	clk := sqldbtest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	db.SetClock(clk.Now)
	mail := mailbox{ch: make(chan Message, 16)}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	idem := web.NewIdempotency(db, web.IdempotencyConfig{Logger: logger})
	t.Cleanup(func() { idem.Close() })
	write := groupcommit.New(db, groupcommit.Config{Logger: logger})
	t.Cleanup(write.Close)
	svc := New(module.Platform{DB: db, Write: write, Idem: idem, Logger: logger}, mail, cfg)
	t.Cleanup(svc.Close) // before write.Close: queued resets still commit
	ctx, stop := context.WithCancel(context.Background())
	listening := make(chan struct{})
	go func() { defer close(listening); svc.RunInvalidations(ctx) }()
	t.Cleanup(func() { stop(); <-listening })
	router := web.NewRouter(web.Config{Logger: logger, Auth: svc})
	for _, r := range svc.Routes() {
		router.Handle(r)
	}
	return &env{t: t, db: db, svc: svc, router: router, c: webtest.Start(t, router), clock: clk, mail: mail}
}

// forEachEngine runs fn with a fresh env on SQLite and PostgreSQL.
func forEachEngine(t *testing.T, cfg Config, fn func(t *testing.T, e *env)) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) { fn(t, newEnv(t, db, cfg)) }, sources()...)
}

// sqliteEnv is an env on SQLite only, for scenarios whose SQL is shared
// text already proven on both engines elsewhere.
func sqliteEnv(t *testing.T, cfg Config) *env {
	return newEnv(t, sqldbtest.Open(t, sqldb.SQLite, sources()...), cfg)
}

const goodPassword = "violet-harbour-engine-42"

// register creates a customer over HTTP and returns its id and token.
func (e *env) register(email string) (id, token string) {
	e.t.Helper()
	r := e.c.Do("POST", "/api/v1/auth/register", map[string]string{"email": email, "password": goodPassword, "name": "Test " + email})
	r.WantStatus(e.t, http.StatusCreated)
	return r.Field("user.id").(string), r.Field("token").(string)
}

// staff creates a staff member with roles through the Go API and logs in.
func (e *env) staff(email string, roles ...string) (id, token string) {
	e.t.Helper()
	u, err := e.svc.CreateUser(context.Background(), email, goodPassword, "Staff "+email, roles)
	if err != nil {
		e.t.Fatalf("CreateUser: %v", err)
	}
	return u.ID, e.login(email, goodPassword)
}

// login logs in and returns the token.
func (e *env) login(email, password string) string {
	e.t.Helper()
	r := e.c.Do("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password})
	r.WantStatus(e.t, http.StatusOK)
	return r.Field("token").(string)
}

// as returns a client sending token.
func (e *env) as(token string) *webtest.Client { return e.c.WithToken(token) }

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

// failures is the count of failures in a row of email from the test
// client's address (its pair counter; 0 when there is none).
func (e *env) failures(email string) int {
	e.t.Helper()
	var n int
	if err := e.db.Reader().QueryRow(`SELECT COALESCE(SUM(failures), 0) FROM accounts_login_throttle
		WHERE email = $1 AND client <> '*'`, email).Scan(&n); err != nil {
		e.t.Fatalf("failures: %v", err)
	}
	return n
}

// allTables are every table a request of this module may write.
var allTables = []string{"accounts_users", "accounts_tokens", "accounts_addresses", "accounts_recovery_codes",
	"accounts_password_resets", "accounts_login_throttle", "audit_log", "outbox", "idempotency_records"}

// snapshot counts the rows of allTables.
func (e *env) snapshot() map[string]int {
	m := map[string]int{}
	for _, t := range allTables {
		m[t] = e.count(t, "")
	}
	return m
}

// assertUnchanged fails unless the row counts equal before.
func (e *env) assertUnchanged(before map[string]int) {
	e.t.Helper()
	for table, n := range e.snapshot() {
		if n != before[table] {
			e.t.Errorf("%s has %d rows after a failed request, %d before", table, n, before[table])
		}
	}
}

// auditActions lists the audit log's actions, oldest first.
func (e *env) auditActions() []string {
	e.t.Helper()
	rows, err := e.db.Reader().Query(`SELECT action FROM audit_log ORDER BY created_at, id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var a string
		rows.Scan(&a)
		out = append(out, a)
	}
	return out
}
