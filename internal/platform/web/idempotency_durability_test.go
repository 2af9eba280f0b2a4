package web_test

// Durability and secrecy of the idempotency records: replicas, restarts,
// crashes, pruning, and what a copy of the database holds.

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"

	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

// TestIdempotencyReplicas races one key over two replicas: two servers, each
// with its own Idempotency and its own connections to one database.
func TestIdempotencyReplicas(t *testing.T) {
	for _, engine := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(engine), func(t *testing.T) {
			cfg := sqldbtest.Config(t, engine)
			db1, db2 := openDB(t, cfg), openDB(t, cfg)
			env := newIdemEnv(t, db1)
			clients := []*webtest.Client{
				env.serve(t, db1, nil, web.IdempotencyConfig{}),
				env.serve(t, db2, nil, web.IdempotencyConfig{}),
			}
			raceDuplicates(t, env, clients, idemIn{Item: "replicated"}, key("k-replicas"))
			if n := env.effects(t, "replicated"); n != 1 {
				t.Errorf("%d effects, want 1", n)
			}
			prepares, commits := env.calls("replicated")
			// PostgreSQL replicas serialise on the advisory lock, so the work
			// runs once. SQLite has no cross-process lock: a second process
			// may run the work, but its effect is rolled back with the
			// record's insert, which the primary key refuses.
			if engine == sqldb.Postgres && (prepares != 1 || commits != 1) {
				t.Errorf("%d prepares and %d commits, want 1 each", prepares, commits)
			}
		})
	}
}

// TestIdempotencyRestart: a recorded answer survives closing and reopening
// the database; a new Idempotency replays it.
func TestIdempotencyRestart(t *testing.T) {
	for _, engine := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(engine), func(t *testing.T) {
			cfg := sqldbtest.Config(t, engine)
			db := openDB(t, cfg)
			env := newIdemEnv(t, db)
			body := idemIn{Item: "restart"}
			first := env.serve(t, db, nil, web.IdempotencyConfig{}).Do("POST", "/api/v1/orders", body, key("k-restart"))
			first.WantStatus(t, 201)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = openDB(t, cfg)
			env.db = db
			again := env.serve(t, db, nil, web.IdempotencyConfig{}).Do("POST", "/api/v1/orders", body, key("k-restart"))
			sameAnswer(t, first, again)
			env.db = db
			if _, commits := env.calls("restart"); commits != 1 || env.effects(t, "restart") != 1 {
				t.Errorf("%d commits, %d effects after the restart, want 1 each", commits, env.effects(t, "restart"))
			}
		})
	}
}

func openDB(t *testing.T, cfg sqldb.Config) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := migrate.Up(context.Background(), db, sources()...); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestIdempotencyKeepsNoSecret reads every column of the idempotency table
// after requests whose answers hold a known token and whose bodies hold a
// password, and finds neither — nor the keys, the scopes (user id, e-mail
// address) or an unsalted SHA-256 of a body — raw, hex or base64.
func TestIdempotencyKeepsNoSecret(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		env := newIdemEnv(t, db)
		cl := env.serve(t, db, nil, web.IdempotencyConfig{})
		const (
			token    = "tok_live_9b2f64c0a1d3e5f7"
			password = "correct horse battery staple"
			email    = "alice@example.com"
		)
		requests := []struct {
			client *webtest.Client
			key    string
			body   string
			status int
		}{
			{cl.WithToken("customer"), "key-signed-in-3f9a", `{"item":"` + token + `","password":"` + password + `"}`, 201},
			{cl, "key-identity-77c1", `{"item":"` + token + `","identity":"` + email + `","password":"` + password + `"}`, 201},
			{cl, "key-anonymous-0b5e", `{"item":"` + token + `","password":"` + password + `"}`, 201},
			{cl, "key-conflict-d41d", `{"item":"` + token + `","outcome":"conflict","password":"` + password + `"}`, 409},
		}
		secrets := []string{token, password, email, "u-customer"}
		var digests [][]byte
		for _, rq := range requests {
			res := rq.client.Do("POST", "/api/v1/orders", rq.body, key(rq.key))
			res.WantStatus(t, rq.status)
			if rq.status == 201 && !strings.Contains(string(res.Body), token) {
				t.Fatalf("the answer %s does not hold the token: the test proves nothing", res.Body)
			}
			sameAnswer(t, res, rq.client.Do("POST", "/api/v1/orders", rq.body, key(rq.key)))
			secrets = append(secrets, rq.key)
			body := sha256.Sum256([]byte(rq.body))
			answer := sha256.Sum256(res.Body)
			digests = append(digests, body[:], answer[:])
			for _, m := range []string{"POST\x00/api/v1/orders\x00" + rq.body, "POST/api/v1/orders" + rq.body} {
				sum := sha256.Sum256([]byte(m))
				digests = append(digests, sum[:])
			}
		}
		if n := records(t, db); n != len(requests) {
			t.Fatalf("%d records, want %d", n, len(requests))
		}
		sqldbtest.AssertNoSecret(t, db, "idempotency_records", secrets, digests)
	}, sources()...)
}

// TestIdempotencyCrashBeforeCommit: a request whose unit never commits
// leaves neither effect nor record; the retry after the restart runs afresh
// and is recorded.
func TestIdempotencyCrashBeforeCommit(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		env := newIdemEnv(t, db)
		body := idemIn{Item: "crash"}
		crashed := env.serve(t, db, sqldbtest.CrashCommitter{DB: db}, web.IdempotencyConfig{}).
			Do("POST", "/api/v1/orders", body, key("k-crash"))
		webtest.AssertProblem(t, crashed, 500, "internal_error")
		if n, e := records(t, db), env.effects(t, "crash"); n != 0 || e != 0 {
			t.Fatalf("%d records and %d effects after the crash, want none", n, e)
		}
		cl := env.serve(t, db, nil, web.IdempotencyConfig{})
		first := cl.Do("POST", "/api/v1/orders", body, key("k-crash"))
		first.WantStatus(t, 201)
		if first.Header.Get(replayed) != "" {
			t.Errorf("the retry after the crash was a replay")
		}
		sameAnswer(t, first, cl.Do("POST", "/api/v1/orders", body, key("k-crash")))
		if _, commits := env.calls("crash"); commits != 2 || env.effects(t, "crash") != 1 || records(t, db) != 1 {
			t.Errorf("%d commits, %d effects, %d records; want 2, 1, 1", commits, env.effects(t, "crash"), records(t, db))
		}
	}, sources()...)
}
