package idem_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/idem"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

func TestCrashBeforeCommitLeavesNoTrace(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		im := newImporter(t, db, idem.Config{})
		ctx := context.Background()
		if _, err := im.importOrder(ctx, sqldbtest.CrashCommitter{DB: db}, "c:amazon", "ext-crash", "lamp"); !errors.Is(err, sqldbtest.ErrCrash) {
			t.Fatalf("Do = %v, want the crash", err)
		}
		if n := records(t, db); n != 0 {
			t.Errorf("%d records after the crash, want none", n)
		}
		if n := im.effects(t, "ext-crash"); n != 0 {
			t.Errorf("%d effects after the crash, want none", n)
		}
		// After the restart the retry runs afresh and is recorded.
		res, err := im.importOrder(ctx, db, "c:amazon", "ext-crash", "lamp")
		if err != nil || res.Replayed || res.Status != 201 {
			t.Fatalf("retry = %+v, %v; want a fresh 201", res, err)
		}
		if im.runsOf("ext-crash") != 2 || im.effects(t, "ext-crash") != 1 || records(t, db) != 1 {
			t.Errorf("%d runs, %d effects, %d records; want 2, 1, 1", im.runsOf("ext-crash"), im.effects(t, "ext-crash"), records(t, db))
		}
	}, idem.Migrations())
}

func TestKeyInUse(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		im := newImporter(t, db, idem.Config{WaitTimeout: 50 * time.Millisecond})
		ctx := context.Background()
		entered, release := make(chan struct{}), make(chan struct{})
		im.setHook(func(string) {
			close(entered)
			<-release
		})
		first := make(chan error)
		go func() {
			_, err := im.importOrder(ctx, db, "c:amazon", "ext-busy", "lamp")
			first <- err
		}()
		<-entered
		// The first call holds the key until release, whatever the timeout: the
		// duplicate's wait ends by the timer.
		if _, err := im.importOrder(ctx, db, "c:amazon", "ext-busy", "lamp"); !errors.Is(err, idem.ErrKeyInUse) {
			t.Errorf("duplicate = %v, want ErrKeyInUse", err)
		}
		im.setHook(nil)
		close(release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		res, err := im.importOrder(ctx, db, "c:amazon", "ext-busy", "lamp")
		if err != nil || !res.Replayed {
			t.Errorf("after the first ended: %+v, %v; want a replay", res, err)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := im.importOrder(cancelled, db, "c:amazon", "ext-busy", "lamp"); errs.KindOf(err) != errs.Unavailable {
			t.Errorf("a call with a cancelled context = %v, want Unavailable", err)
		}
		if im.runsOf("ext-busy") != 1 {
			t.Errorf("%d runs, want 1", im.runsOf("ext-busy"))
		}
	}, idem.Migrations())
}

func TestForget(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		im := newImporter(t, db, idem.Config{})
		ctx := context.Background()
		for _, r := range []struct{ scope, id string }{{"u:alice", "a1"}, {"u:alice", "a2"}, {"u:bob", "b1"}, {"", "anon"}} {
			if _, err := im.importOrder(ctx, db, r.scope, r.id, "x"); err != nil {
				t.Fatal(err)
			}
		}
		var n int64
		if err := db.InTx(ctx, func(tx *sqldb.Tx) (err error) {
			n, err = im.store.Forget(ctx, tx, "u:alice")
			return err
		}); err != nil || n != 2 {
			t.Fatalf("Forget = %d, %v; want 2", n, err)
		}
		cases := []struct {
			scope, id string
			replayed  bool
		}{
			{"u:alice", "a1", false}, // forgotten: runs afresh
			{"u:alice", "a2", false},
			{"u:bob", "b1", true}, // another scope keeps its records
			{"", "anon", true},
		}
		for _, c := range cases {
			res, err := im.importOrder(ctx, db, c.scope, c.id, "x")
			if err != nil || res.Replayed != c.replayed {
				t.Errorf("%s/%s after Forget: replayed %v, %v; want %v", c.scope, c.id, res.Replayed, err, c.replayed)
			}
		}
		if err := db.InTx(ctx, func(tx *sqldb.Tx) error { _, err := im.store.Forget(ctx, tx, ""); return err }); err == nil {
			t.Errorf("Forget of the empty scope succeeded")
		}
	}, idem.Migrations())
}

// TestNoSecretAtRest reads every column of every record after calls whose
// key, material and outcome hold known strings, and finds none of them — raw,
// hex, base64 — nor an unsalted SHA-256 of the material.
func TestNoSecretAtRest(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		store := newStore(t, db, idem.Config{})
		const (
			token    = "tok_live_5f1c0ffee5f1c0ffee"
			password = "correct horse battery staple"
			key      = "key-7d1e4a9b"
			scope    = "anon:alice@example.com"
		)
		material := []byte(`POST /api/v1/auth/login {"email":"alice@example.com","password":"` + password + `"}`)
		body := []byte(`{"token":"` + token + `","recovery_codes":["rc-1234-5678"]}`)
		if _, err := store.Do(context.Background(), db, idem.Request{Scope: scope, Key: key, Material: material},
			func(context.Context, *sqldb.Tx) (idem.Outcome, error) {
				return idem.Outcome{Status: 200, ContentType: "application/json", Body: body}, nil
			}); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(material)
		bodySum := sha256.Sum256(body)
		AssertNothingAtRest(t, db, []string{token, password, key, scope, "alice@example.com", "rc-1234-5678"},
			[][]byte{sum[:], bodySum[:]})
	}, idem.Migrations())
}

// AssertNothingAtRest fails if any column of any idempotency record holds
// one of the strings (raw, hex, base64) or digests (raw, hex).
func AssertNothingAtRest(t *testing.T, db *sqldb.DB, secrets []string, digests [][]byte) {
	t.Helper()
	rows, err := db.Reader().Query(`SELECT key_id, scope_id, fingerprint, record, created_at FROM idempotency_records`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var needles [][]byte
	for _, s := range secrets {
		needles = append(needles, []byte(s), []byte(hex.EncodeToString([]byte(s))),
			[]byte(base64.StdEncoding.EncodeToString([]byte(s))), []byte(base64.RawURLEncoding.EncodeToString([]byte(s))))
	}
	for _, d := range digests {
		needles = append(needles, d, []byte(hex.EncodeToString(d)))
	}
	n := 0
	for rows.Next() {
		n++
		cols := make([][]byte, 4)
		var created int64
		if err := rows.Scan(&cols[0], &cols[1], &cols[2], &cols[3], &created); err != nil {
			t.Fatal(err)
		}
		for i, col := range append(cols, fmt.Append(nil, created)) {
			for _, needle := range needles {
				if bytes.Contains(col, needle) || bytes.Contains(bytes.ToLower(col), bytes.ToLower(needle)) {
					t.Errorf("column %d of a record holds %q", i, needle)
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no record to inspect")
	}
}

// TestReplicas races one key over two Stores on two connections to one
// database (replicas, or two SQLite processes).
func TestReplicas(t *testing.T) {
	for _, engine := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(engine), func(t *testing.T) {
			cfg := sqldbtest.Config(t, engine)
			db1, db2 := openDB(t, cfg), openDB(t, cfg)
			im1 := newImporter(t, db1, idem.Config{})
			im2 := &importer{db: db2, store: newStore(t, db2, idem.Config{}), runs: im1.runs, fail: im1.fail}
			const n = 10
			var arrived atomic.Int32
			all := make(chan struct{})
			hold := func(string) { <-all }
			im1.setHook(hold)
			im2.inWork = hold
			errc := make(chan error, n)
			replays := make(chan bool, n)
			for i := range n {
				im := []*importer{im1, im2}[i%2]
				go func() {
					if arrived.Add(1) == n {
						close(all)
					}
					res, err := im.importOrder(context.Background(), im.db, "c:amazon", "ext-replicas", "lamp")
					errc <- err
					replays <- res.Replayed
				}()
			}
			fresh := 0
			for range n {
				if err := <-errc; err != nil {
					t.Errorf("Do: %v", err)
				}
				if !<-replays {
					fresh++
				}
			}
			if fresh != 1 || im1.effects(t, "ext-replicas") != 1 {
				t.Errorf("%d fresh outcomes and %d effects, want 1 each", fresh, im1.effects(t, "ext-replicas"))
			}
			// PostgreSQL replicas serialise on the advisory lock, so the work runs
			// once. SQLite has no cross-process lock: the other process may run
			// the work, but its effect rolls back with the insert the primary
			// key refuses, and it replays the record.
			im1.mu.Lock()
			runs := im1.runs["ext-replicas"]
			im1.mu.Unlock()
			if engine == sqldb.Postgres && runs != 1 {
				t.Errorf("%d runs, want 1", runs)
			}
		})
	}
}

// TestRestart: a record survives reopening the database and a new Store
// with the same secret replays it; under another secret it is unreachable
// (the key runs afresh), so the secret must be kept (secret.Load).
func TestRestart(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		im := newImporter(t, db, idem.Config{})
		ctx := context.Background()
		first, err := im.importOrder(ctx, db, "c:amazon", "ext-restart", "lamp")
		if err != nil {
			t.Fatal(err)
		}
		im.store = newStore(t, db, idem.Config{})
		again, err := im.importOrder(ctx, db, "c:amazon", "ext-restart", "lamp")
		if err != nil || !again.Replayed || !bytes.Equal(first.Body, again.Body) {
			t.Errorf("same secret: %+v, %v; want the replay of %s", again, err, first.Body)
		}
		im.store = newStore(t, db, idem.Config{Secret: bytes.Repeat([]byte{7}, 32)})
		other, err := im.importOrder(ctx, db, "c:amazon", "ext-restart", "lamp")
		if err != nil || other.Replayed {
			t.Errorf("another secret: %+v, %v; want a fresh run", other, err)
		}
	}, idem.Migrations())
}

func TestPrune(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		var clock atomic.Pointer[time.Time]
		setClock := func(t time.Time) { clock.Store(&t) }
		setClock(t0)
		db.SetClock(func() time.Time { return *clock.Load() })
		im := newImporter(t, db, idem.Config{Retention: time.Hour}) // raised to 24h
		ctx := context.Background()
		if _, err := im.importOrder(ctx, db, "c:x", "old", "x"); err != nil {
			t.Fatal(err)
		}
		setClock(t0.Add(2 * time.Hour))
		if _, err := im.importOrder(ctx, db, "c:x", "young", "x"); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			at      time.Duration
			deleted int64
			left    int
		}{
			{23 * time.Hour, 0, 2},             // the minimum retention is 24h, not the 1h asked
			{24*time.Hour + time.Second, 1, 1}, // the old key is past 24h
			{26*time.Hour + time.Second, 1, 0},
		}
		for _, s := range steps {
			t.Run(fmt.Sprintf("after %v", s.at), func(t *testing.T) {
				setClock(t0.Add(s.at))
				n, err := im.store.Prune(ctx)
				if err != nil || n != s.deleted {
					t.Errorf("Prune = %d, %v; want %d deleted", n, err, s.deleted)
				}
				if left := records(t, db); left != s.left {
					t.Errorf("%d records left, want %d", left, s.left)
				}
			})
		}
		if res, err := im.importOrder(ctx, db, "c:x", "old", "y"); err != nil || res.Replayed {
			t.Errorf("a pruned key: %+v, %v; want a fresh run", res, err)
		}
	}, idem.Migrations())
}

func TestNewRejectsShortSecret(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite, idem.Migrations())
	for _, n := range []int{0, 16, idem.MinSecret - 1} {
		if _, err := idem.New(db, idem.Config{Secret: make([]byte, n)}); err == nil || strings.Contains(err.Error(), "\x00") {
			t.Errorf("a %d-byte secret: %v, want an error", n, err)
		}
	}
}

func openDB(t *testing.T, cfg sqldb.Config) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := migrate.Up(context.Background(), db, idem.Migrations()); err != nil {
		t.Fatal(err)
	}
	return db
}
