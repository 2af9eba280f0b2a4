package web_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/idem"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

// idemIn is the body of the test mutation. Outcome steers it: "" succeeds
// (201), "conflict" is a 409 from Commit, "invalid" a 422 from Commit,
// "unrecorded" a 422 that Commit returns as a status without an error,
// "internal" a 500, "panic" a panic in Commit, "declined" a 402 from Prepare.
// Identity is the identity an anonymous request names (Mutation.Scope);
// "throttle" as the Outcome makes OnReused answer 429.
type idemIn struct {
	Item     string `json:"item"`
	Outcome  string `json:"outcome,omitempty"`
	Identity string `json:"identity,omitempty"`
	Password string `json:"password,omitempty"`
}

type idemOut struct {
	ID   string `json:"id"`
	Item string `json:"item"`
	User string `json:"user"`
}

// idemEnv counts what the mutation did, per item: Prepare and Commit calls
// in memory, effects in the effects table (rolled-back ones vanish).
type idemEnv struct {
	db     *sqldb.DB
	seq    atomic.Int64
	reused atomic.Int64 // OnReused calls

	mu       sync.Mutex
	prepares map[string]int
	commits  map[string]int
	onArrive func(idemIn) // called before Run; guarded by mu
	inCommit func(idemIn) // called inside Commit after the effect; guarded by mu
}

func newIdemEnv(t *testing.T, db *sqldb.DB) *idemEnv {
	t.Helper()
	if _, err := db.Writer().Exec(`CREATE TABLE effects (item TEXT NOT NULL, n BIGINT NOT NULL)`); err != nil {
		t.Fatalf("create effects: %v", err)
	}
	return &idemEnv{db: db, prepares: map[string]int{}, commits: map[string]int{}}
}

func (e *idemEnv) hooks(arrive, commit func(idemIn)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onArrive, e.inCommit = arrive, commit
}

func (e *idemEnv) calls(item string) (prepares, commits int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.prepares[item], e.commits[item]
}

func (e *idemEnv) effects(t *testing.T, item string) int {
	t.Helper()
	return countRows(t, e.db, `SELECT count(*) FROM effects WHERE item = $1`, item)
}

func countRows(t *testing.T, db *sqldb.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// serve starts a server whose POST /api/v1/orders and /api/v1/register run
// the test mutation through idem and c (db when c is nil).
func (e *idemEnv) serve(t *testing.T, db *sqldb.DB, c sqldb.Committer, cfg web.IdempotencyConfig) *webtest.Client {
	t.Helper()
	if cfg.Secret == nil {
		cfg.Secret = testSecret // one secret for every server of a test: replicas, restarts
	}
	cfg.Logger = slogJSON(io.Discard)
	mw := web.NewIdempotency(db, cfg)
	t.Cleanup(func() { mw.Close() })
	if c == nil {
		c = db
	}
	rt := web.NewRouter(web.Config{Logger: slogJSON(io.Discard), Registerer: prometheus.NewRegistry(), Auth: fakeAuth{}})
	h := func(w http.ResponseWriter, r *http.Request) {
		var in idemIn
		if err := web.Decode(r, &in); err != nil {
			web.Error(w, r, err)
			return
		}
		e.mu.Lock()
		arrive, inCommit := e.onArrive, e.inCommit
		e.mu.Unlock()
		if arrive != nil {
			arrive(in)
		}
		p, _ := web.PrincipalFrom(r.Context())
		mw.Run(w, r, c, web.Mutation{
			Scope: in.Identity,
			OnReused: func(ctx context.Context) error {
				e.reused.Add(1)
				if in.Outcome == "throttle" {
					return errs.E("test.OnReused", errs.RateLimited, "too many failed attempts")
				}
				return nil
			},
			Prepare: func(ctx context.Context) error {
				e.mu.Lock()
				e.prepares[in.Item]++
				e.mu.Unlock()
				if in.Outcome == "declined" {
					return errs.E("test.Prepare", errs.PaymentDeclined, "the card was declined")
				}
				return nil
			},
			Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
				e.mu.Lock()
				e.commits[in.Item]++
				e.mu.Unlock()
				n := e.seq.Add(1)
				if _, err := tx.ExecContext(ctx, `INSERT INTO effects (item, n) VALUES ($1, $2)`, in.Item, n); err != nil {
					return 0, nil, err
				}
				if inCommit != nil {
					inCommit(in)
				}
				switch in.Outcome {
				case "conflict":
					return 0, nil, errs.E("test.Commit", errs.Conflict, errs.CodeOutOfStock, "the item is out of stock")
				case "invalid":
					return 0, nil, errs.E("test.Commit", errs.Invalid, "the item is invalid",
						[]errs.FieldError{{Field: "item", Message: "is invalid"}})
				case "unrecorded":
					return http.StatusUnprocessableEntity, map[string]string{"why": "no"}, nil
				case "internal":
					return 0, nil, errors.New("sql: database disk image is malformed")
				case "panic":
					panic("commit exploded")
				}
				return http.StatusCreated, idemOut{ID: fmt.Sprintf("ord-%d", n), Item: in.Item, User: p.UserID}, nil
			},
		})
	}
	rt.Handle(web.Route{Method: "POST", Path: "/api/v1/orders", Request: idemIn{}, Response: idemOut{}, Handler: h})
	rt.Handle(web.Route{Method: "POST", Path: "/api/v1/register", Request: idemIn{}, Response: idemOut{}, Handler: h})
	return webtest.Start(t, rt)
}

func key(k string) string { return web.HeaderIdempotencyKey + ": " + k }

const replayed = web.HeaderReplayed

// sameAnswer fails unless b replays a: same status and body bytes, marked replayed.
func sameAnswer(t *testing.T, a, b *webtest.Response) {
	t.Helper()
	if a.Status != b.Status || string(a.Body) != string(b.Body) {
		t.Errorf("replay differs:\n first %d %s\n again %d %s", a.Status, a.Body, b.Status, b.Body)
	}
	if a.Header.Get("Content-Type") != b.Header.Get("Content-Type") {
		t.Errorf("content type %q, replayed as %q", a.Header.Get("Content-Type"), b.Header.Get("Content-Type"))
	}
	if b.Header.Get(replayed) != "true" {
		t.Errorf("the replay is not marked %s", replayed)
	}
}

func TestIdempotency(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		committers := []struct {
			name string
			c    func(t *testing.T) sqldb.Committer
		}{
			{"intx", func(*testing.T) sqldb.Committer { return db }},
			{"groupcommit", func(t *testing.T) sqldb.Committer {
				b := groupcommit.New(db, groupcommit.Config{})
				t.Cleanup(b.Close)
				return b
			}},
		}
		env := newIdemEnv(t, db)
		for _, cm := range committers {
			t.Run(cm.name, func(t *testing.T) {
				c := cm.c(t)
				cl := env.serve(t, db, c, web.IdempotencyConfig{})
				for _, sc := range idemScenarios {
					t.Run(sc.name, func(t *testing.T) {
						env.hooks(nil, nil)
						// Items and keys are unique per engine, committer and scenario.
						sc.run(t, &idemCase{env: env, cl: cl, db: db, c: c, ns: cm.name + "/" + sc.name + "/", base: records(t, db)})
					})
				}
			})
		}
	}, sources()...)
}

var testSecret = []byte("a test server secret of 32 bytes")

// sources is the schema the idempotency middleware needs.
func sources() []migrate.Source { return []migrate.Source{web.Migrations(), idem.Migrations()} }

// idemCase is one scenario's view: ns prefixes its items and keys; base is
// the number of records when it started (scenarios run one after another).
type idemCase struct {
	env  *idemEnv
	cl   *webtest.Client
	db   *sqldb.DB
	c    sqldb.Committer
	ns   string
	base int
}

func (ic *idemCase) item(s string) string { return ic.ns + s }
func (ic *idemCase) key(s string) string  { return key(ic.ns + s) }

// newRecords is how many records the scenario has made so far.
func (ic *idemCase) newRecords(t *testing.T) int { return records(t, ic.db) - ic.base }

func records(t *testing.T, db *sqldb.DB) int {
	return countRows(t, db, `SELECT count(*) FROM idempotency_records`)
}

func (ic *idemCase) wantCounts(t *testing.T, item string, prepares, commits, effects int) {
	t.Helper()
	p, c := ic.env.calls(ic.item(item))
	if p != prepares || c != commits {
		t.Errorf("%s: %d prepares and %d commits, want %d and %d", item, p, c, prepares, commits)
	}
	if n := ic.env.effects(t, ic.item(item)); n != effects {
		t.Errorf("%s: %d effects, want %d", item, n, effects)
	}
}

var idemScenarios = []struct {
	name string
	run  func(t *testing.T, ic *idemCase)
}{
	{"replay runs nothing", func(t *testing.T, ic *idemCase) {
		body := idemIn{Item: ic.item("a")}
		first := ic.cl.Do("POST", "/api/v1/orders", body, ic.key("k"))
		first.WantStatus(t, 201)
		if first.Header.Get(replayed) != "" {
			t.Errorf("the first answer is marked replayed")
		}
		again := ic.cl.Do("POST", "/api/v1/orders", body, ic.key("k"))
		sameAnswer(t, first, again)
		ic.wantCounts(t, "a", 1, 1, 1)
	}},
	{"another body is 422 key reused", func(t *testing.T, ic *idemCase) {
		customer := ic.cl.WithToken("customer")
		reused0 := ic.env.reused.Load()
		customer.Do("POST", "/api/v1/orders", idemIn{Item: ic.item("a")}, ic.key("k")).WantStatus(t, 201)
		res := customer.Do("POST", "/api/v1/orders", idemIn{Item: ic.item("b")}, ic.key("k"))
		webtest.AssertProblem(t, res, 422, "idempotency_key_reused")
		// The same body on another route is another request too.
		webtest.AssertProblem(t, customer.Do("POST", "/api/v1/register", idemIn{Item: ic.item("a")}, ic.key("k")),
			422, "idempotency_key_reused")
		if n := ic.env.reused.Load() - reused0; n != 2 {
			t.Errorf("OnReused ran %d times, want 2", n)
		}
		// An anonymous caller: another scope, so the key is fresh there.
		ic.cl.Do("POST", "/api/v1/orders", idemIn{Item: ic.item("a")}, ic.key("k")).WantStatus(t, 201)
		ic.wantCounts(t, "a", 2, 2, 2)
		ic.wantCounts(t, "b", 0, 0, 0)
	}},
	{"no key runs every time", func(t *testing.T, ic *idemCase) {
		a := ic.cl.Do("POST", "/api/v1/orders", idemIn{Item: ic.item("a")})
		b := ic.cl.Do("POST", "/api/v1/orders", idemIn{Item: ic.item("a")})
		a.WantStatus(t, 201)
		b.WantStatus(t, 201)
		if a.Field("id") == b.Field("id") {
			t.Errorf("two requests without a key got one answer %v", a.Field("id"))
		}
		ic.wantCounts(t, "a", 2, 2, 2)
	}},
	{"422 from Commit leaves no effect and no key", func(t *testing.T, ic *idemCase) {
		res := ic.cl.Do("POST", "/api/v1/orders", idemIn{Item: ic.item("a"), Outcome: "invalid"}, ic.key("k"))
		webtest.AssertFieldError(t, webtest.AssertProblem(t, res, 422, "validation_failed"), "item")
		ic.wantCounts(t, "a", 1, 1, 0)
		if n := ic.newRecords(t); n != 0 {
			t.Fatalf("%d records for the key, want none", n)
		}
		// The key is free: a corrected request with it runs.
		ic.cl.Do("POST", "/api/v1/orders", idemIn{Item: ic.item("a")}, ic.key("k")).WantStatus(t, 201)
		ic.wantCounts(t, "a", 2, 2, 1)
	}},
	{"422 returned as a status is not recorded either", func(t *testing.T, ic *idemCase) {
		res := ic.cl.Do("POST", "/api/v1/orders", idemIn{Item: ic.item("a"), Outcome: "unrecorded"}, ic.key("k"))
		res.WantStatus(t, 422)
		if res.Field("why") != "no" {
			t.Errorf("body %s", res.Body)
		}
		ic.wantCounts(t, "a", 1, 1, 0)
		if n := ic.newRecords(t); n != 0 {
			t.Errorf("%d records for the key, want none", n)
		}
		// Without a key the effect is rolled back too.
		ic.cl.Do("POST", "/api/v1/orders", idemIn{Item: ic.item("a"), Outcome: "unrecorded"}).WantStatus(t, 422)
		ic.wantCounts(t, "a", 2, 2, 0)
	}},
	{"409 from Commit is recorded and replayed", func(t *testing.T, ic *idemCase) {
		body := idemIn{Item: ic.item("a"), Outcome: "conflict"}
		first := ic.cl.Do("POST", "/api/v1/orders", body, ic.key("k"))
		webtest.AssertProblem(t, first, 409, "out_of_stock")
		again := ic.cl.Do("POST", "/api/v1/orders", body, ic.key("k"))
		sameAnswer(t, first, again)
		ic.wantCounts(t, "a", 1, 1, 0) // the savepoint rolled the effect back
		if n := ic.newRecords(t); n != 1 {
			t.Errorf("%d records for the key, want 1", n)
		}
	}},
	{"402 from Prepare is recorded and replayed", func(t *testing.T, ic *idemCase) {
		body := idemIn{Item: ic.item("a"), Outcome: "declined"}
		first := ic.cl.Do("POST", "/api/v1/orders", body, ic.key("k"))
		webtest.AssertProblem(t, first, 402, "payment_declined")
		sameAnswer(t, first, ic.cl.Do("POST", "/api/v1/orders", body, ic.key("k")))
		ic.wantCounts(t, "a", 1, 0, 0)
	}},
	{"500 is not recorded", func(t *testing.T, ic *idemCase) {
		body := idemIn{Item: ic.item("a"), Outcome: "internal"}
		webtest.AssertProblem(t, ic.cl.Do("POST", "/api/v1/orders", body, ic.key("k")), 500, "internal_error")
		webtest.AssertProblem(t, ic.cl.Do("POST", "/api/v1/orders", body, ic.key("k")), 500, "internal_error")
		ic.wantCounts(t, "a", 2, 2, 0)
		if n := ic.newRecords(t); n != 0 {
			t.Errorf("%d records for the key, want none", n)
		}
	}},
	{"a panic in Commit frees the key", func(t *testing.T, ic *idemCase) {
		res := ic.cl.Do("POST", "/api/v1/orders", idemIn{Item: ic.item("a"), Outcome: "panic"}, ic.key("k"))
		webtest.AssertProblem(t, res, 500, "internal_error")
		ic.cl.Do("POST", "/api/v1/orders", idemIn{Item: ic.item("a")}, ic.key("k")).WantStatus(t, 201)
		ic.wantCounts(t, "a", 2, 2, 1)
	}},
	{"scopes: users and anonymous callers do not meet", func(t *testing.T, ic *idemCase) {
		body := idemIn{Item: ic.item("a")}
		c1 := ic.cl.WithToken("customer")
		c2 := ic.cl.WithToken("customer2")
		r1 := c1.Do("POST", "/api/v1/orders", body, ic.key("k"))
		r2 := c2.Do("POST", "/api/v1/orders", body, ic.key("k"))
		r3 := ic.cl.Do("POST", "/api/v1/orders", body, ic.key("k"))
		for i, r := range []*webtest.Response{r1, r2, r3} {
			r.WantStatus(t, 201)
			if r.Header.Get(replayed) != "" {
				t.Errorf("caller %d got another caller's answer: %s", i+1, r.Body)
			}
		}
		if r1.Field("user") != "u-customer" || r2.Field("user") != "u-customer2" || r3.Field("user") != "" {
			t.Errorf("answers for the wrong users: %s %s %s", r1.Body, r2.Body, r3.Body)
		}
		sameAnswer(t, r1, c1.Do("POST", "/api/v1/orders", body, ic.key("k")))
		sameAnswer(t, r2, c2.Do("POST", "/api/v1/orders", body, ic.key("k")))
		ic.wantCounts(t, "a", 3, 3, 3)
	}},
	{"an anonymous caller naming nobody cannot squat a key", func(t *testing.T, ic *idemCase) {
		reused0 := ic.env.reused.Load()
		squat := ic.cl.Do("POST", "/api/v1/register", idemIn{Item: ic.item("squatter")}, ic.key("k"))
		squat.WantStatus(t, 201)
		victim := ic.cl.Do("POST", "/api/v1/register", idemIn{Item: ic.item("victim")}, ic.key("k"))
		victim.WantStatus(t, 201)
		if victim.Header.Get(replayed) != "" || victim.Field("item") != ic.item("victim") {
			t.Errorf("the victim got %s, want its own fresh answer", victim.Body)
		}
		sameAnswer(t, victim, ic.cl.Do("POST", "/api/v1/register", idemIn{Item: ic.item("victim")}, ic.key("k")))
		ic.wantCounts(t, "squatter", 1, 1, 1)
		ic.wantCounts(t, "victim", 1, 1, 1)
		if n := ic.env.reused.Load() - reused0; n != 0 {
			t.Errorf("OnReused ran %d times", n)
		}
	}},
	{"an anonymous identity scopes its keys; another body counts as reused", func(t *testing.T, ic *idemCase) {
		alice, bob := ic.item("alice@example.com"), ic.item("bob@example.com")
		first := ic.cl.Do("POST", "/api/v1/register", idemIn{Item: ic.item("a"), Identity: alice}, ic.key("k"))
		first.WantStatus(t, 201)
		reused0 := ic.env.reused.Load()
		webtest.AssertProblem(t, ic.cl.Do("POST", "/api/v1/register",
			idemIn{Item: ic.item("b"), Identity: alice}, ic.key("k")), 422, "idempotency_key_reused")
		webtest.AssertProblem(t, ic.cl.Do("POST", "/api/v1/register",
			idemIn{Item: ic.item("b"), Identity: alice, Outcome: "throttle"}, ic.key("k")), 429, "rate_limited")
		if n := ic.env.reused.Load() - reused0; n != 2 {
			t.Errorf("OnReused ran %d times, want 2", n)
		}
		other := ic.cl.Do("POST", "/api/v1/register", idemIn{Item: ic.item("a"), Identity: bob}, ic.key("k"))
		other.WantStatus(t, 201)
		if other.Header.Get(replayed) != "" {
			t.Errorf("another identity got alice's answer")
		}
		sameAnswer(t, first, ic.cl.Do("POST", "/api/v1/register", idemIn{Item: ic.item("a"), Identity: alice}, ic.key("k")))
		// A signed-in caller's scope is its user, whatever identity the body names.
		ic.cl.WithToken("customer").Do("POST", "/api/v1/register",
			idemIn{Item: ic.item("a"), Identity: alice}, ic.key("k")).WantStatus(t, 201)
		ic.wantCounts(t, "a", 3, 3, 3)
		ic.wantCounts(t, "b", 0, 0, 0)
	}},
	{"malformed keys are 400", func(t *testing.T, ic *idemCase) {
		for _, k := range []string{strings.Repeat("k", 256), "clé"} {
			res := ic.cl.Do("POST", "/api/v1/orders", idemIn{Item: ic.item("a")}, key(k))
			webtest.AssertProblem(t, res, 400, "malformed_request")
		}
		ic.wantCounts(t, "a", 0, 0, 0)
		longest := ic.ns + strings.Repeat("k", web.MaxIdempotencyKey-len(ic.ns))
		ic.cl.Do("POST", "/api/v1/orders", idemIn{Item: ic.item("b")}, key(longest)).WantStatus(t, 201)
	}},
	{"ten racing duplicates run once", func(t *testing.T, ic *idemCase) {
		raceDuplicates(t, ic.env, []*webtest.Client{ic.cl}, idemIn{Item: ic.item("a")}, ic.key("k"))
		ic.wantCounts(t, "a", 1, 1, 1)
	}},
	{"a duplicate of a running request waits, then gets 409 in use", func(t *testing.T, ic *idemCase) {
		cl := ic.env.serve(t, ic.db, ic.c, web.IdempotencyConfig{WaitTimeout: 200 * time.Millisecond})
		entered, release := make(chan struct{}), make(chan struct{})
		ic.env.hooks(nil, func(in idemIn) {
			if in.Item == ic.item("a") {
				close(entered)
				<-release
			}
		})
		body := idemIn{Item: ic.item("a")}
		firstDone := make(chan *webtest.Response)
		go func() { firstDone <- cl.Do("POST", "/api/v1/orders", body, ic.key("k")) }()
		<-entered
		webtest.AssertProblem(t, cl.Do("POST", "/api/v1/orders", body, ic.key("k")), 409, "idempotency_key_in_use")
		close(release)
		first := <-firstDone
		first.WantStatus(t, 201)
		sameAnswer(t, first, cl.Do("POST", "/api/v1/orders", body, ic.key("k")))
		ic.wantCounts(t, "a", 1, 1, 1)
	}},
}

// raceDuplicates sends ten requests with one key at once, spread over the
// clients (replicas), while the first to commit holds its transaction open
// until all ten have arrived; all ten must get the same answer.
func raceDuplicates(t *testing.T, env *idemEnv, clients []*webtest.Client, body idemIn, hdr string) []*webtest.Response {
	t.Helper()
	const n = 10
	var arrived atomic.Int32
	all := make(chan struct{})
	env.hooks(func(in idemIn) {
		if in.Item == body.Item && arrived.Add(1) == n {
			close(all)
		}
	}, func(in idemIn) {
		if in.Item == body.Item {
			<-all
		}
	})
	start := make(chan struct{})
	answers := make([]*webtest.Response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			answers[i] = clients[i%len(clients)].Do("POST", "/api/v1/orders", body, hdr)
		})
	}
	close(start)
	wg.Wait()
	fresh := 0
	for i, a := range answers {
		if a.Status != 201 || string(a.Body) != string(answers[0].Body) {
			t.Errorf("answer %d: %d %s; answer 0: %d %s", i, a.Status, a.Body, answers[0].Status, answers[0].Body)
		}
		if a.Header.Get(replayed) == "" {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d answers were not replays, want 1", fresh)
	}
	return answers
}
