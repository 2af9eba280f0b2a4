package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/audit"
	"mercato/internal/platform/event"
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

func sources() []migrate.Source {
	return []migrate.Source{Migrations(), accounts.Migrations(), audit.Migrations(), outbox.Migrations(),
		web.Migrations(), idem.Migrations(), inbox.Migrations()}
}

type clock = sqldbtest.Clock

// fakeResolver answers from a table; unknown names do not resolve.
type fakeResolver map[string][]string

func (f fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	var out []net.IPAddr
	for _, s := range f[host] {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

var testTypes = []string{"order.placed", "order.paid", "order.cancelled", "product.created"}

type env struct {
	t      testing.TB
	db     *sqldb.DB
	svc    *Service
	clock  *clock
	op     *webtest.Client // an operator: webhooks.manage
	cs     *webtest.Client // customer service: no webhooks permission
	opID   string
	seq    map[string]int64 // next sequence per aggregate
	acc    *accounts.Service
	anon   *webtest.Client
	router *web.Router
}

// relogin signs the operator in again (sessions expire as the fake clock
// moves on).
func (e *env) relogin() {
	e.t.Helper()
	res, err := e.acc.Login(context.Background(), accounts.LoginRequest{Email: "op@example.com", Password: password}, "127.0.0.1")
	if err != nil {
		e.t.Fatalf("Login: %v", err)
	}
	e.op = e.anon.WithToken(res.Token)
}

var testHash = accounts.HashParams{MemoryKiB: 64, Iterations: 1, Parallelism: 1}

const password = "violet-harbour-engine-42"

// testSecret is the server secret of test environments.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

func newEnv(t testing.TB, db *sqldb.DB, cfg Config) *env {
	t.Helper()
	clk := sqldbtest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	db.SetClock(clk.Now)
	logger := slog.New(slog.NewTextHandler(testLog(), nil))
	idm := web.NewIdempotency(db, web.IdempotencyConfig{Logger: logger})
	t.Cleanup(func() { idm.Close() })
	write := groupcommit.New(db, groupcommit.Config{Logger: logger})
	t.Cleanup(write.Close)
	p := module.Platform{DB: db, Write: write, Idem: idm, Logger: logger}
	if cfg.Secret == nil {
		cfg.Secret = testSecret
	}
	if cfg.Types == nil {
		cfg.Types = func() []string { return testTypes }
	}
	svc := New(p, cfg)
	acc := accounts.New(p, nil, accounts.Config{Hash: testHash})
	t.Cleanup(acc.Close)
	acc.UseModules([]module.Module{acc.Module(), svc.Module()})
	router := web.NewRouter(web.Config{Logger: logger, Auth: acc})
	for _, r := range append(svc.Routes(), acc.Routes()...) {
		router.Handle(r)
	}
	anon := webtest.Start(t, router)
	e := &env{t: t, db: db, svc: svc, clock: clk, seq: map[string]int64{}, acc: acc, anon: anon, router: router}
	e.opID, e.op = staff(t, acc, anon, "op@example.com", accounts.RoleOperator)
	_, e.cs = staff(t, acc, anon, "cs@example.com", accounts.RoleCustomerService)
	return e
}

func staff(t testing.TB, acc *accounts.Service, anon *webtest.Client, email, role string) (string, *webtest.Client) {
	t.Helper()
	ctx := context.Background()
	u, err := acc.CreateUser(ctx, email, password, "Staff", []string{role})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	res, err := acc.Login(ctx, accounts.LoginRequest{Email: email, Password: password}, "127.0.0.1")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return u.ID, anon.WithToken(res.Token)
}

// forEachEngine runs fn with a fresh env (private addresses allowed: the
// receivers are on loopback) on SQLite and PostgreSQL.
func forEachEngine(t *testing.T, cfg Config, fn func(t *testing.T, e *env)) {
	cfg.AllowPrivate = true
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) { fn(t, newEnv(t, db, cfg)) }, sources()...)
}

// register creates an endpoint through the API and returns it with its secret.
func (e *env) register(url string, events []string, fifo bool) Created {
	e.t.Helper()
	body := map[string]any{"url": url, "events": events}
	if fifo {
		body["fifo"] = true
	}
	r := e.op.Do("POST", "/api/v1/admin/webhooks", body)
	r.WantStatus(e.t, http.StatusCreated)
	var c Created
	r.Decode(e.t, &c)
	return c
}

// emit applies events of typ to the aggregates through the consumer, one
// inbox-like transaction, and returns their envelopes.
func (e *env) emit(typ string, aggregateIDs ...string) []event.Envelope {
	e.t.Helper()
	var out []event.Envelope
	err := e.db.Do(context.Background(), func(tx *sqldb.Tx) error {
		out = out[:0]
		for _, id := range aggregateIDs {
			env := event.Envelope{ID: event.NewID(), Type: typ, SchemaVersion: 1, AggregateType: event.Noun(typ),
				AggregateID: id, Sequence: e.seq[id] + 1, OccurredAt: tx.Now, Data: json.RawMessage(`{"n":1}`)}
			if err := e.svc.Consumer().Handle(context.Background(), tx, env); err != nil {
				return err
			}
			out = append(out, env)
		}
		return nil
	})
	if err != nil {
		e.t.Fatalf("emit: %v", err)
	}
	for _, env := range out {
		e.seq[env.AggregateID] = env.Sequence
	}
	return out
}

// flush delivers everything due now.
func (e *env) flush() {
	e.t.Helper()
	if err := e.svc.Dispatcher().Flush(context.Background()); err != nil {
		e.t.Fatalf("Flush: %v", err)
	}
}

// delivery reads one delivery row's status, attempts and due time.
func (e *env) delivery(endpointID, eventID string) (status string, attempts int, next time.Time) {
	e.t.Helper()
	var us int64
	if err := e.db.Reader().QueryRow(`SELECT status, attempts, next_at FROM webhooks_deliveries
		WHERE endpoint_id = $1 AND event_id = $2`, endpointID, eventID).Scan(&status, &attempts, &us); err != nil {
		e.t.Fatalf("delivery: %v", err)
	}
	return status, attempts, sqldb.FromMicros(us)
}

// received is one request a receiver got.
type received struct {
	id, ts string
	sigs   []string
	body   []byte
	env    event.Envelope
	valid  int // how many of the secrets under test verified it
}

// receiver is a local webhook receiver that checks every request with an
// independent Standard Webhooks verification and answers what answer says.
type receiver struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	got     []received
	secrets []string // verified against; set by the test
	now     func() time.Time
	answer  func(n int, r received) (int, http.Header) // nil: 204
}

func newReceiver(t testing.TB, now func() time.Time) *receiver {
	rc := &receiver{t: t, now: now}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) URL() string { return rc.srv.URL + "/hook" }

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	g := received{id: r.Header.Get("webhook-id"), ts: r.Header.Get("webhook-timestamp"),
		sigs: strings.Fields(r.Header.Get("webhook-signature")), body: body}
	json.Unmarshal(body, &g.env)
	rc.mu.Lock()
	for _, s := range rc.secrets {
		if verify(s, g.id, g.ts, body, g.sigs, rc.now()) {
			g.valid++
		}
	}
	rc.got = append(rc.got, g)
	n, answer := len(rc.got), rc.answer
	rc.mu.Unlock()
	status := http.StatusOK
	if answer != nil {
		var h http.Header
		status, h = answer(n, g)
		for k, v := range h {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(status)
	io.WriteString(w, "ok "+strconv.Itoa(n))
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// verify is the Standard Webhooks check written from the specification,
// independent of Sign: the key is the base64 after "whsec_", the signed
// content "<id>.<timestamp>.<body>", the signature "v1,<base64 HMAC-SHA256>"
// among space-separated ones, and the timestamp within 5 minutes of now.
func verify(secret, id, ts string, body []byte, sigs []string, now time.Time) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || id == "" {
		return false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, s := range sigs {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func testLog() io.Writer {
	if os.Getenv("WEBHOOKS_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}
