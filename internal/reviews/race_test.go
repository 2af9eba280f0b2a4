package reviews

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"

	"mercato/internal/accounts"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
)

// N customers review one product at once, through the write path: every
// review counts (count N, sum right), and since each unit's event carries
// the rating its own conditional update returned, the events' counts are
// exactly 1..N — no two units saw the same row.
func TestConcurrentReviewsOfOneProduct(t *testing.T) {
	const n = 32
	forEachEngine(t, func(t *testing.T, e *env) {
		start := make(chan struct{})
		errc := make(chan error, n)
		var wg sync.WaitGroup
		wantSum := 0
		for i := range n {
			rating := i%5 + 1
			wantSum += rating
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := e.svc.Create(context.Background(), fmt.Sprintf("c-%02d", i), "p-1",
					CreateRequest{Rating: rating, Title: "review " + fmt.Sprint(i)})
				errc <- err
			}()
		}
		close(start)
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Errorf("Create: %v", err)
			}
		}
		want := newRating(n, int64(wantSum))
		e.wantRating("p-1", want)
		var count, sum int
		if err := e.db.Reader().QueryRow(`SELECT count, sum FROM reviews_ratings WHERE product_id = 'p-1'`).Scan(&count, &sum); err != nil {
			t.Fatal(err)
		}
		if count != n || sum != wantSum {
			t.Errorf("reviews_ratings = (%d, %d), want (%d, %d)", count, sum, n, wantSum)
		}
		var counts []int
		for _, ev := range e.events() {
			if ev.Type != "review.created" || ev.Data.ProductID != "p-1" {
				t.Errorf("unexpected event %+v", ev)
			}
			counts = append(counts, ev.Data.Rating.Count)
		}
		slices.Sort(counts)
		for i, c := range counts {
			if c != i+1 {
				t.Fatalf("the events' counts are %v, want 1..%d", counts, n)
			}
		}
		if len(counts) != n {
			t.Errorf("%d events, want %d", len(counts), n)
		}
	})
}

// One customer sends the same review many times at once (no idempotency
// key): exactly one is created, every other answer is 409
// already_reviewed, and the rating counts one.
func TestRacingDuplicateReviews(t *testing.T) {
	const n = 12
	forEachEngine(t, func(t *testing.T, e *env) {
		_, c := e.customer("dup@example.com")
		start := make(chan struct{})
		statuses := make(chan string, n)
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := c.Do("POST", "/api/v1/products/p-1/reviews", map[string]any{"rating": 4, "title": "Again and again"})
				code := ""
				if r.Problem != nil {
					code = r.Problem.Code
				}
				statuses <- fmt.Sprint(r.Status, code)
			}()
		}
		close(start)
		wg.Wait()
		close(statuses)
		got := map[string]int{}
		for s := range statuses {
			got[s]++
		}
		if want := map[string]int{"201": 1, "409already_reviewed": n - 1}; !mapsEqual(got, want) {
			t.Errorf("answers %v, want %v", got, want)
		}
		e.wantRating("p-1", Rating{Average: 4, Count: 1})
		if k := e.count("outbox", "type = 'review.created'"); k != 1 {
			t.Errorf("%d review.created events, want 1", k)
		}
	})
}

// The unique index, not the pre-check, has the last word: a duplicate
// that appears after CreateTx's check (another unit committing between the
// check and the insert, here made certain by the Purchases call that runs
// between them) is still 409 already_reviewed, and nothing of the unit
// remains.
func TestUniqueIndexDecides(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sneak := sneakyOrders{db: e.db}
		svc := New(module.Platform{DB: e.db}, Deps{Products: e.products, Purchases: sneak})
		err := e.db.InTx(ctx, func(tx *sqldb.Tx) error {
			_, err := svc.CreateTx(ctx, tx, "c-1", "p-1", CreateRequest{Rating: 5, Title: "First"})
			return err
		})
		if errs.KindOf(err) != errs.Conflict || errs.CodeOf(err) != CodeAlreadyReviewed {
			t.Fatalf("CreateTx = %v, want 409 already_reviewed", err)
		}
		want := 0 // on SQLite the "other writer" was the unit itself, rolled back
		if e.db.Engine() == sqldb.Postgres {
			want = 1
		}
		if n := e.count("reviews_reviews", ""); n != want {
			t.Errorf("%d rows, want %d (the other writer's)", n, want)
		}
		if n := e.count("outbox", ""); n != 0 {
			t.Errorf("%d events after the refused review", n)
		}
		if n := e.count("reviews_ratings", ""); n != 0 {
			t.Errorf("%d rating rows after the refused review", n)
		}
	})
}

// sneakyOrders is a Purchases whose HasPaidOrder inserts, and commits, the
// same customer's review of the product from another connection first (on
// SQLite, whose writer is single, in the unit's own transaction).
type sneakyOrders struct{ db *sqldb.DB }

func (o sneakyOrders) HasPaidOrder(ctx context.Context, tx *sqldb.Tx, customerID, productID string) (bool, error) {
	q := `INSERT INTO reviews_reviews (id, product_id, customer_id, rating, title, body, verified_purchase, status,
		created_at, updated_at) VALUES ('other', $1, $2, 3, 'Other', '', 0, 'visible', 1, 1)`
	var err error
	if tx.Engine() == sqldb.Postgres {
		_, err = o.db.Writer().ExecContext(ctx, q, productID, customerID)
	} else {
		_, err = tx.ExecContext(ctx, q, productID, customerID)
	}
	return false, err
}

// Many staff hide one review at once: one succeeds, the others get 409
// invalid_transition; the rating loses it once; one audit entry, one event.
func TestRacingModeration(t *testing.T) {
	const n = 10
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for i, rating := range []int{5, 3} {
			if _, err := e.svc.Create(ctx, fmt.Sprint("c-", i), "p-1", CreateRequest{Rating: rating, Title: "t"}); err != nil {
				t.Fatal(err)
			}
		}
		target := e.events()[0].AggregateID // the 5
		staffID, _ := e.staff("mod@example.com", accounts.RoleOperator)
		start := make(chan struct{})
		errc := make(chan error, n)
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := e.svc.Hide(ctx, Actor{ID: staffID}, target, "off-topic")
				errc <- err
			}()
		}
		close(start)
		wg.Wait()
		close(errc)
		ok, conflicts := 0, 0
		for err := range errc {
			switch {
			case err == nil:
				ok++
			case errs.CodeOf(err) == errs.CodeInvalidTransition:
				conflicts++
			default:
				t.Errorf("Hide: %v", err)
			}
		}
		if ok != 1 || conflicts != n-1 {
			t.Errorf("%d hidden, %d conflicts; want 1 and %d", ok, conflicts, n-1)
		}
		e.wantRating("p-1", Rating{Average: 3, Count: 1})
		if a := e.audits(); len(a) != 1 || a[0].Action != "review.hidden" || a[0].TargetID != target {
			t.Errorf("audit %+v, want one review.hidden", a)
		}
		if k := e.count("outbox", "type = 'review.hidden'"); k != 1 {
			t.Errorf("%d review.hidden events, want 1", k)
		}
	})
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// An erasure that meets a moderation of one of the customer's reviews
// takes the review out of the rating once: the erasure's DELETE waits for
// the hide's row lock (PostgreSQL) and reports the row as the hide left
// it. On SQLite the single writer runs them one after the other.
func TestEraseMeetsModeration(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rv, err := e.svc.Create(ctx, "ann", "p-1", CreateRequest{Rating: 5, Title: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Create(ctx, "bob", "p-1", CreateRequest{Rating: 3, Title: "t"}); err != nil {
			t.Fatal(err)
		}
		hide, err := e.db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.HideTx(ctx, hide, Actor{ID: "staff"}, rv.ID, "rude"); err != nil {
			t.Fatal(err)
		}
		erased := make(chan error, 1)
		go func() {
			erased <- e.db.InTx(ctx, func(tx *sqldb.Tx) error { return e.svc.EraseTx(ctx, tx, "ann") })
		}()
		if e.db.Engine() == sqldb.Postgres {
			waitForLockWait(t, e.db)
		}
		if err := hide.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := <-erased; err != nil {
			t.Fatalf("EraseTx: %v", err)
		}
		e.wantRating("p-1", Rating{Average: 3, Count: 1})
		evs := e.events()
		if last := evs[len(evs)-1]; last.Type != "review.erased" || last.Data.Rating != (Rating{3, 1}) {
			t.Errorf("last event %+v, want review.erased with rating {3 1}", last)
		}
	})
}

// waitForLockWait returns once a session of db's schema waits for a lock
// (the erasure blocked behind the hide). It polls pg_locks, yielding
// between looks; the test's deadline bounds it.
func waitForLockWait(t *testing.T, db *sqldb.DB) {
	t.Helper()
	for {
		var n int
		if err := db.Reader().QueryRow(`SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE NOT l.granted AND a.query LIKE 'DELETE FROM reviews_reviews%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		runtime.Gosched()
	}
}
