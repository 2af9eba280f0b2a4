package idem_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/idem"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

var testSecret = bytes.Repeat([]byte("s3cret!!"), 4)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// importer is the non-HTTP caller the tests drive: an import of channel
// orders keyed by external id. Its work inserts one effect row per run that
// commits, and answers the order id it created.
type importer struct {
	db    *sqldb.DB
	store *idem.Store
	seq   atomic.Int64

	mu     sync.Mutex
	runs   map[string]int          // work runs per external id
	inWork func(externalID string) // called inside the work after its effect; guarded by mu
	fail   map[string]error        // external id → error its work returns; guarded by mu
}

func newImporter(t *testing.T, db *sqldb.DB, cfg idem.Config) *importer {
	t.Helper()
	if _, err := db.Writer().Exec(`CREATE TABLE IF NOT EXISTS effects (item TEXT NOT NULL, n BIGINT NOT NULL)`); err != nil {
		t.Fatalf("create effects: %v", err)
	}
	return &importer{db: db, store: newStore(t, db, cfg), runs: map[string]int{}, fail: map[string]error{}}
}

func newStore(t *testing.T, db *sqldb.DB, cfg idem.Config) *idem.Store {
	t.Helper()
	if cfg.Secret == nil {
		cfg.Secret = testSecret
	}
	cfg.Logger = quiet
	s, err := idem.New(db, cfg)
	if err != nil {
		t.Fatalf("idem.New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// recordConflicts records a Conflict failure as a 409 outcome, nothing else.
func recordConflicts(err error) (idem.Outcome, bool) {
	if errs.KindOf(err) == errs.Conflict {
		return idem.Outcome{Status: 409, ContentType: "text/plain", Body: []byte("conflict: " + err.Error())}, true
	}
	return idem.Outcome{}, false
}

// importOrder imports one order: scope is the channel, key its external id,
// material the order's payload.
func (im *importer) importOrder(ctx context.Context, c sqldb.Committer, scope, externalID, payload string) (idem.Result, error) {
	return im.store.Do(ctx, c, idem.Request{
		Scope: scope, Key: externalID, Material: []byte(payload), Record: recordConflicts,
	}, func(ctx context.Context, tx *sqldb.Tx) (idem.Outcome, error) {
		im.mu.Lock()
		im.runs[externalID]++
		hook, fail := im.inWork, im.fail[externalID]
		im.mu.Unlock()
		n := im.seq.Add(1)
		if _, err := tx.ExecContext(ctx, `INSERT INTO effects (item, n) VALUES ($1, $2)`, externalID, n); err != nil {
			return idem.Outcome{}, err
		}
		if hook != nil {
			hook(externalID)
		}
		if fail != nil {
			return idem.Outcome{}, fail
		}
		if payload == "panic" {
			panic("work exploded")
		}
		return idem.Outcome{Status: 201, ContentType: "application/json",
			Body: fmt.Appendf(nil, `{"order":"ord-%d","payload":%q}`, n, payload)}, nil
	})
}

func (im *importer) setFail(id string, err error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.fail[id] = err
}

func (im *importer) setHook(f func(string)) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.inWork = f
}

func (im *importer) runsOf(id string) int {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.runs[id]
}

func count(t *testing.T, db *sqldb.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (im *importer) effects(t *testing.T, id string) int {
	return count(t, im.db, `SELECT count(*) FROM effects WHERE item = $1`, id)
}

func records(t *testing.T, db *sqldb.DB) int {
	return count(t, db, `SELECT count(*) FROM idempotency_records`)
}

func committers(db *sqldb.DB) []struct {
	name string
	make func(t *testing.T) sqldb.Committer
} {
	return []struct {
		name string
		make func(t *testing.T) sqldb.Committer
	}{
		{"intx", func(*testing.T) sqldb.Committer { return db }},
		{"groupcommit", func(t *testing.T) sqldb.Committer {
			b := groupcommit.New(db, groupcommit.Config{Logger: quiet})
			t.Cleanup(b.Close)
			return b
		}},
	}
}

// idemCase is one scenario's view: ns prefixes its ids so that scenarios
// sharing a database do not meet.
type idemCase struct {
	im *importer
	c  sqldb.Committer
	ns string
}

func (ic *idemCase) id(s string) string { return ic.ns + s }

func (ic *idemCase) do(t *testing.T, scope, id, payload string) (idem.Result, error) {
	t.Helper()
	return ic.im.importOrder(context.Background(), ic.c, scope, ic.id(id), payload)
}

// want fails unless id's work ran runs times and left effects effects.
func (ic *idemCase) want(t *testing.T, id string, runs, effects int) {
	t.Helper()
	if r, e := ic.im.runsOf(ic.id(id)), ic.im.effects(t, ic.id(id)); r != runs || e != effects {
		t.Errorf("%s: %d runs and %d effects, want %d and %d", id, r, e, runs, effects)
	}
}

// ok is do that must succeed.
func (ic *idemCase) ok(t *testing.T, scope, id, payload string) idem.Result {
	t.Helper()
	res, err := ic.do(t, scope, id, payload)
	if err != nil {
		t.Fatalf("Do(%q, %q): %v", scope, id, err)
	}
	return res
}

func sameOutcome(t *testing.T, first, again idem.Result) {
	t.Helper()
	if first.Status != again.Status || first.ContentType != again.ContentType || !bytes.Equal(first.Body, again.Body) {
		t.Errorf("replay differs:\n first %d %q %s\n again %d %q %s",
			first.Status, first.ContentType, first.Body, again.Status, again.ContentType, again.Body)
	}
	if first.Replayed || !again.Replayed {
		t.Errorf("Replayed = %v then %v, want false then true", first.Replayed, again.Replayed)
	}
}

var scenarios = []struct {
	name string
	run  func(t *testing.T, ic *idemCase)
}{
	{"same external id twice: one effect, the recorded outcome", func(t *testing.T, ic *idemCase) {
		first := ic.ok(t, "c:amazon", "ext-1", "two lamps")
		again := ic.ok(t, "c:amazon", "ext-1", "two lamps")
		if first.Status != 201 || !strings.Contains(string(first.Body), "ord-") {
			t.Errorf("first outcome %d %s", first.Status, first.Body)
		}
		sameOutcome(t, first, again)
		ic.want(t, "ext-1", 1, 1)
	}},
	{"same key, other material: ErrKeyReused, nothing runs", func(t *testing.T, ic *idemCase) {
		ic.ok(t, "c:amazon", "ext-1", "two lamps")
		if _, err := ic.do(t, "c:amazon", "ext-1", "three lamps"); !errors.Is(err, idem.ErrKeyReused) {
			t.Errorf("Do = %v, want ErrKeyReused", err)
		}
		ic.want(t, "ext-1", 1, 1)
	}},
	{"scopes do not meet", func(t *testing.T, ic *idemCase) {
		a := ic.ok(t, "c:amazon", "ext-1", "lamp")
		b := ic.ok(t, "c:ebay", "ext-1", "lamp")
		if b.Replayed || bytes.Equal(a.Body, b.Body) {
			t.Errorf("another scope got the first scope's outcome: %s / %s", a.Body, b.Body)
		}
		ic.want(t, "ext-1", 2, 2)
	}},
	{"a failure that is not recorded leaves no trace and frees the key", func(t *testing.T, ic *idemCase) {
		ic.im.setFail(ic.id("ext-1"), errs.E("test", errs.Invalid, "bad line"))
		if _, err := ic.do(t, "c:amazon", "ext-1", "lamp"); errs.KindOf(err) != errs.Invalid {
			t.Fatalf("Do = %v, want the work's Invalid error", err)
		}
		ic.want(t, "ext-1", 1, 0)
		ic.im.setFail(ic.id("ext-1"), nil)
		res := ic.ok(t, "c:amazon", "ext-1", "lamp")
		if res.Replayed || res.Status != 201 {
			t.Errorf("the retry got %+v, want a fresh 201", res)
		}
		ic.want(t, "ext-1", 2, 1)
	}},
	{"a recorded failure rolls its effect back and replays", func(t *testing.T, ic *idemCase) {
		ic.im.setFail(ic.id("ext-1"), errs.E("test", errs.Conflict, "out of stock"))
		first := ic.ok(t, "c:amazon", "ext-1", "lamp")
		if first.Status != 409 || !strings.Contains(string(first.Body), "out of stock") {
			t.Errorf("recorded outcome %d %s", first.Status, first.Body)
		}
		ic.im.setFail(ic.id("ext-1"), nil) // the stock came back: the record still answers
		sameOutcome(t, first, ic.ok(t, "c:amazon", "ext-1", "lamp"))
		ic.want(t, "ext-1", 1, 0)
	}},
	{"a panic in the work leaves no trace", func(t *testing.T, ic *idemCase) {
		if _, err := ic.do(t, "c:amazon", "ext-1", "panic"); errs.KindOf(err) != errs.Internal {
			t.Fatalf("Do = %v, want Internal", err)
		}
		ic.want(t, "ext-1", 1, 0)
		ic.ok(t, "c:amazon", "ext-1", "lamp")
		ic.want(t, "ext-1", 2, 1)
	}},
	{"an anonymous caller cannot squat another's key", func(t *testing.T, ic *idemCase) {
		squat := ic.ok(t, "", "k", "stranger's body")
		victim := ic.ok(t, "", "k", "victim's body")
		if victim.Replayed || bytes.Equal(squat.Body, victim.Body) {
			t.Errorf("the victim got the squatter's outcome %s", victim.Body)
		}
		sameOutcome(t, victim, ic.ok(t, "", "k", "victim's body"))
		ic.want(t, "k", 2, 2)
	}},
	{"ten racing duplicates: one effect, nine replays", func(t *testing.T, ic *idemCase) {
		const n = 10
		id := ic.id("ext-race")
		var arrived atomic.Int32
		all := make(chan struct{})
		ic.im.setHook(func(got string) {
			if got == id {
				<-all // hold the first run's transaction open until every call has arrived
			}
		})
		defer ic.im.setHook(nil)
		results := make([]idem.Result, n)
		errors := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if arrived.Add(1) == n {
					close(all)
				}
				results[i], errors[i] = ic.do(t, "c:amazon", "ext-race", "lamp")
			})
		}
		wg.Wait()
		fresh := 0
		for i := range n {
			if errors[i] != nil || !bytes.Equal(results[i].Body, results[0].Body) {
				t.Errorf("call %d: %v %s; call 0: %s", i, errors[i], results[i].Body, results[0].Body)
			}
			if !results[i].Replayed {
				fresh++
			}
		}
		if fresh != 1 {
			t.Errorf("%d fresh outcomes, want 1", fresh)
		}
		ic.want(t, "ext-race", 1, 1)
	}},
}

func TestDo(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		im := newImporter(t, db, idem.Config{})
		for _, cm := range committers(db) {
			t.Run(cm.name, func(t *testing.T) {
				c := cm.make(t)
				for _, sc := range scenarios {
					t.Run(sc.name, func(t *testing.T) {
						sc.run(t, &idemCase{im: im, c: c, ns: cm.name + "/" + sc.name + "/"})
					})
				}
			})
		}
	}, idem.Migrations())
}
