package notify

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// process is what one server process has: its hub and two caches.
type process struct {
	hub  *Hub
	x, y *Cache[int]
}

func newProcess(t *testing.T, db *sqldb.DB) *process {
	p := &process{hub: New(db)}
	p.x, p.y = NewCache[int](p.hub, "notifytest_x"), NewCache[int](p.hub, "notifytest_y")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "the hub listens", p.hub.Trusted)
	return p
}

// eventually waits for cond: at once on SQLite; on PostgreSQL a delivery
// takes a round trip (the deadline only bounds a broken test).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func loader(v int) func() (int, error) { return func() (int, error) { return v, nil } }

// get reads c, loading v when it must.
func get(t *testing.T, c *Cache[int], v int) int {
	t.Helper()
	got, err := c.Get(loader(v))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCache(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		a := newProcess(t, db)
		if got := get(t, a.x, 1); got != 1 {
			t.Fatalf("first read = %d", got)
		}
		if got := get(t, a.x, 2); got != 1 || a.x.Loads() != 1 {
			t.Fatalf("second read = %d after %d loads, want the cached 1 after 1", got, a.x.Loads())
		}
		t.Run("a rolled back change drops nothing", func(t *testing.T) {
			err := db.Do(ctx, func(tx *sqldb.Tx) error {
				if err := a.x.ChangedTx(ctx, tx); err != nil {
					return err
				}
				return errors.New("rolled back")
			})
			if err == nil {
				t.Fatal("the unit committed")
			}
			if got := get(t, a.x, 3); got != 1 {
				t.Fatalf("read = %d after a rollback, want the cached 1", got)
			}
		})
		t.Run("a committed change drops at commit", func(t *testing.T) {
			get(t, a.y, 10)
			if err := db.Do(ctx, func(tx *sqldb.Tx) error { return a.x.ChangedTx(ctx, tx) }); err != nil {
				t.Fatal(err)
			}
			if got := get(t, a.x, 4); got != 4 {
				t.Fatalf("read = %d after the commit, want the fresh 4", got)
			}
			if got := get(t, a.y, 11); got != 10 {
				t.Fatalf("the other cache read = %d, want its cached 10", got)
			}
		})
		t.Run("a load that raced a change is not kept", func(t *testing.T) {
			a.x.drop()
			got, err := a.x.Get(func() (int, error) { a.x.drop(); return 5, nil })
			if err != nil || got != 5 {
				t.Fatalf("read = %d, %v", got, err)
			}
			if got := get(t, a.x, 6); got != 6 {
				t.Fatalf("read = %d, want 6: the raced load was kept", got)
			}
		})
		if db.Engine() != sqldb.Postgres {
			return
		}
		t.Run("another process hears the change, on one connection for both caches", func(t *testing.T) {
			b := newProcess(t, db)
			get(t, b.x, 20)
			get(t, b.y, 30)
			if err := db.Do(ctx, func(tx *sqldb.Tx) error { return a.y.ChangedTx(ctx, tx) }); err != nil {
				t.Fatal(err)
			}
			eventually(t, "b's y is dropped", func() bool { return get(t, b.y, 31) == 31 })
			if got := get(t, b.x, 21); got != 20 {
				t.Errorf("b's x = %d, want its cached 20", got)
			}
			b.hub.mu.Lock()
			runs := b.hub.runs
			b.hub.mu.Unlock()
			if runs != 1 {
				t.Errorf("b's hub made %d connections for its two caches, want 1", runs)
			}
		})
		t.Run("an unlistened hub's caches are not trusted", func(t *testing.T) {
			c := NewCache[int](New(db), "notifytest_x")
			get(t, c, 1)
			if got := get(t, c, 2); got != 2 || c.Loads() != 2 {
				t.Errorf("read = %d after %d loads: a hub that does not listen answered from memory", got, c.Loads())
			}
		})
	})
}

// A Listener hears every payload of its channel from other processes, in
// order, and is reset when the hub connects, before the hub is trusted
// (PostgreSQL).
func TestListenerPayloads(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.Postgres)
	ctx := context.Background()
	hub := New(db)
	var mu sync.Mutex
	var heard []string
	resets, resetsBeforeTrusted := 0, 0
	hub.Listen("notifytest_p", Listener{
		On: func(p string) { mu.Lock(); heard = append(heard, p); mu.Unlock() },
		Reset: func() {
			mu.Lock()
			resets++
			if !hub.Trusted() {
				resetsBeforeTrusted++
			}
			mu.Unlock()
		},
	})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "the hub listens", hub.Trusted)
	for _, p := range []string{"a", "b", "c"} {
		if err := db.Do(ctx, func(tx *sqldb.Tx) error {
			_, err := tx.ExecContext(ctx, sqldb.NotifySQL("notifytest_p"), p)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	// The hub's own process's change is not heard again (its listeners
	// heard it at the commit); another process's is, without its tag.
	other := New(db)
	for _, send := range []struct {
		h *Hub
		p string
	}{{hub, "mine"}, {other, "d"}} {
		if err := db.Do(ctx, func(tx *sqldb.Tx) error { return send.h.NotifyTx(ctx, tx, "notifytest_p", send.p) }); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "four payloads heard", func() bool { mu.Lock(); defer mu.Unlock(); return len(heard) == 4 })
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(heard, []string{"a", "b", "c", "d"}) {
		t.Errorf("heard %q, want a, b, c, d in order (not its own \"mine\")", heard)
	}
	if resets == 0 || resets != resetsBeforeTrusted {
		t.Errorf("reset %d times, %d of them before the hub was trusted: want at least one, all before", resets, resetsBeforeTrusted)
	}
}
