package notifications

import (
	"context"
	"testing"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/orders"
	"mercato/internal/platform/notify"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// replica is one process's notifications module over a shared database,
// with the process's notify hub running.
func replica(t *testing.T, db *sqldb.DB, shop *fakeShop) *Service {
	t.Helper()
	hub := notify.New(db)
	p := moduleFor(db)
	p.Notify = hub
	svc := New(p, Deps{Customers: shop, Orders: shop, Tracking: shop}, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "the hub listens", hub.Trusted)
	return svc
}

// eventually waits for cond: at once on SQLite; on PostgreSQL a
// notification takes a round trip (the deadline only bounds a broken test).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

// TestPreferencesCache: the mails of a customer read their preferences
// once; a change is in the next mail, made in this process (dropped at
// commit) or in another one (PostgreSQL: dropped by its notification).
func TestPreferencesCache(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		shop := &fakeShop{users: map[string]accounts.User{}, orders: map[string]orders.Order{}}
		shop.addOrder("o-1", "M-1", "c-1", "Bo", 100)
		mailer := replica(t, db, shop)
		changer := mailer
		if db.Engine() == sqldb.Postgres {
			changer = replica(t, db, shop) // another process
		}
		e := &env{t: t, db: db, svc: mailer, shop: shop}
		locales := func() []string {
			rows, err := db.Reader().QueryContext(ctx, `SELECT locale FROM notifications_messages ORDER BY created_at, id`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []string
			for rows.Next() {
				var l string
				rows.Scan(&l)
				out = append(out, l)
			}
			return out
		}
		e.deliver(e.eventFor(KindOrderPlaced, "o-1"))
		if _, ok, _ := mailer.prefs.get("c-1"); !ok {
			t.Fatal("the mail's preferences were not kept")
		}
		if _, err := changer.SetPreferences(ctx, "c-1", PreferencesRequest{Locale: LocaleZH, Marketing: new(bool)}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the change drops the mailer's entry", func() bool { _, ok, _ := mailer.prefs.get("c-1"); return !ok })
		e.deliver(e.eventFor(KindOrderPaid, "o-1"))
		if got := locales(); len(got) != 2 || got[0] != LocaleEN || got[1] != LocaleZH {
			t.Errorf("locales %q, want en then zh-CN", got)
		}
	}, Migrations())
}

// A read that raced a change is not kept, nor is anything while the hub
// does not listen.
func TestPreferencesCacheRaces(t *testing.T) {
	trusted := true
	c := newPrefsCache(func() bool { return trusted })
	_, _, epoch := c.get("c")
	c.forget("c") // a change commits while the read runs
	c.put("c", Preferences{Locale: LocaleEN}, epoch)
	if _, ok, _ := c.get("c"); ok {
		t.Error("a read that raced a change was kept")
	}
	trusted = false
	_, _, epoch = c.get("c")
	c.put("c", Preferences{Locale: LocaleEN}, epoch)
	trusted = true
	if _, ok, _ := c.get("c"); ok {
		t.Error("a read made while not listening was kept")
	}
	_, _, epoch = c.get("c")
	c.put("c", Preferences{Locale: LocaleZH}, epoch)
	if p, ok, _ := c.get("c"); !ok || p.Locale != LocaleZH {
		t.Errorf("get = %+v, %v after a clean put", p, ok)
	}
	c.clear()
	if _, ok, _ := c.get("c"); ok {
		t.Error("clear kept an entry")
	}
}

// An erasure in the same transaction as a mail of its customer takes the
// queued message with it; the other customers' messages are inserted.
func TestEraseTakesQueuedMessages(t *testing.T) {
	forEachEngine(t, func() Config { return Config{} }, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.shop.addOrder("o-1", "M-1", "c-1", "Bo", 100)
		e.shop.addOrder("o-2", "M-2", "c-2", "Al", 100)
		ev1, err := e.eventFor(KindOrderPlaced, "o-1")
		if err != nil {
			t.Fatal(err)
		}
		ev2, err := e.eventFor(KindOrderPlaced, "o-2")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.db.Do(ctx, func(tx *sqldb.Tx) error {
			if err := e.svc.HandleEvent(ctx, tx, ev1); err != nil {
				return err
			}
			if err := e.svc.HandleEvent(ctx, tx, ev2); err != nil {
				return err
			}
			return e.svc.erase(ctx, tx, "c-1")
		}); err != nil {
			t.Fatal(err)
		}
		if m := e.messages(""); len(m) != 1 || m[0].CustomerID != "c-2" {
			t.Fatalf("messages %+v, want c-2's alone", m)
		}
	})
}
