// Package notify keeps a process's in-memory caches right across replicas
// (the product documents, the token cache, the notification preferences,
// and whole small tables: the active promotions, the rate tables, the
// region rules): a change drops the cache in this process when its
// transaction commits and, on PostgreSQL, notifies every other process in
// the same transaction (NOTIFY is delivered at commit, never on rollback).
//
// A process has ONE Hub (module.Platform.Notify), and the Hub ONE
// PostgreSQL connection that LISTENs on the channels of all its caches: a
// listening connection per cache per process would use up the server's
// max_connections. While that connection is down (before its first LISTEN,
// after a reconnection) a notification may have been missed, so the caches
// are not trusted: every read loads afresh, and every cache is dropped when
// it listens again. On SQLite one process owns the database: the caches are
// always trusted.
package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"mercato/internal/platform/sqldb"
)

// Hub is one process's listener for the notifications of many channels,
// over one connection. Safe for concurrent use.
type Hub struct {
	db        *sqldb.DB
	retry     time.Duration
	listening atomic.Bool // PostgreSQL: the connection LISTENs now

	mu   sync.Mutex
	subs map[string][]Listener // guarded by mu: channel name → its listeners
	runs int                   // guarded by mu: connections made (tests)

	origin string // tags the notifications this hub's process sends (NotifyTx)
}

// Listener hears one channel's notifications: those sent with NotifyTx by
// the other processes on the same database and schema. A process's own
// changes reach its listeners at their commit (Tx.AfterCommit), not again
// by notification: a late copy would drop what was loaded since.
type Listener struct {
	// On is called with each notification's payload, in order.
	On func(payload string)
	// Reset is called whenever notifications may have been missed: each
	// time the hub's connection is (re)established, before it is trusted
	// again. What the listener kept from before must go.
	Reset func()
}

// New returns db's hub. On PostgreSQL its caches are trusted only while
// Run listens; a hub that never runs keeps them loading afresh every time.
func New(db *sqldb.DB) *Hub {
	var b [8]byte
	rand.Read(b[:])
	return &Hub{db: db, retry: time.Second, subs: map[string][]Listener{}, origin: hex.EncodeToString(b[:])}
}

// NotifyTx sends payload on channel name to every other process's hub, in
// tx: PostgreSQL delivers it when tx commits, never when it rolls back. On
// SQLite (one process owns the database) it sends nothing. Its error must
// fail the unit: no change commits without its invalidation.
func (h *Hub) NotifyTx(ctx context.Context, tx *sqldb.Tx, name, payload string) error {
	if tx.Engine() != sqldb.Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, sqldb.NotifySQL(name), h.origin+" "+payload); err != nil {
		return fmt.Errorf("notify %s: %w", name, err)
	}
	return nil
}

// fromOther returns a notification's payload and whether another process
// sent it (an untagged one counts as another's).
func (h *Hub) fromOther(raw string) (string, bool) {
	origin, payload, ok := strings.Cut(raw, " ")
	if !ok || len(origin) != len(h.origin) {
		return raw, true
	}
	return payload, origin != h.origin
}

// Trusted reports whether a cache may answer from memory: always on
// SQLite, on PostgreSQL only while Run listens.
func (h *Hub) Trusted() bool {
	return h.db.Engine() != sqldb.Postgres || h.listening.Load()
}

// Listen makes l hear the notifications of channel name (a module's name,
// as NotifyTx takes it). Call it before Run: the connection LISTENs
// on the channels known when it connects. While the hub does not listen
// (Trusted is false) the listener must not trust what it keeps.
func (h *Hub) Listen(name string, l Listener) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[name] = append(h.subs[name], l)
}

// resetAll tells every listener that notifications may have been missed.
func (h *Hub) resetAll() {
	h.mu.Lock()
	var all []Listener
	for _, ls := range h.subs {
		all = append(all, ls...)
	}
	h.mu.Unlock()
	for _, l := range all {
		if l.Reset != nil {
			l.Reset()
		}
	}
}

// Run listens on every subscribed channel until ctx ends, reconnecting
// after a failure (the caches are untrusted meanwhile). It returns nil at
// once on SQLite.
func (h *Hub) Run(ctx context.Context) error {
	if h.db.Engine() != sqldb.Postgres {
		return nil
	}
	for {
		h.listening.Store(false)
		h.resetAll()
		err := h.listenOnce(ctx)
		h.listening.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		_ = err // reconnect; the caches are untrusted until then
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(h.retry):
		}
	}
}

func (h *Hub) listenOnce(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, h.db.URL())
	if err != nil {
		return fmt.Errorf("notify: connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return err
	}
	h.mu.Lock()
	h.runs++
	byChannel := map[string][]Listener{}
	for name, ls := range h.subs {
		byChannel[channel(name, schema)] = slices.Clone(ls)
	}
	h.mu.Unlock()
	for ch := range byChannel {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("notify: listen: %w", err)
		}
	}
	h.resetAll() // what was kept before the LISTEN may have missed a change
	h.listening.Store(true)
	for {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			payload, other := h.fromOther(n.Payload)
			if !other {
				continue // this process's own change: its listeners heard it at the commit
			}
			for _, l := range byChannel[n.Channel] {
				if l.On != nil {
					l.On(payload)
				}
			}
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded) && !conn.PgConn().IsClosed():
			if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// channel is the PostgreSQL channel sqldb.NotifySQL(name) sends on in
// schema.
func channel(name, schema string) string { return "mercato_" + name + "." + schema }

// Cache holds one value loaded from the database — a table small enough to
// keep whole — until a change drops it. Safe for concurrent use.
type Cache[T any] struct {
	hub  *Hub
	name string

	mu    sync.Mutex
	gen   uint64 // guarded by mu: drops so far
	has   bool   // guarded by mu
	v     T      // guarded by mu
	loads atomic.Int64
}

// NewCache returns an empty cache on hub, dropped by the notifications of
// channel name (a module's name, as NotifyTx takes it). Call it
// before the hub runs.
func NewCache[T any](hub *Hub, name string) *Cache[T] {
	c := &Cache[T]{hub: hub, name: name}
	hub.Listen(name, Listener{On: func(string) { c.drop() }, Reset: c.drop})
	return c
}

// Get returns the cached value, or load's result when there is none or the
// cache is not trusted. What load returns is kept only when no drop
// happened while it ran (a load that raced a change may have read the
// state before it) and the cache is trusted. load reads committed state
// (the reader), never a unit's uncommitted writes.
func (c *Cache[T]) Get(load func() (T, error)) (T, error) {
	trusted := c.hub.Trusted()
	c.mu.Lock()
	if c.has && trusted {
		v := c.v
		c.mu.Unlock()
		return v, nil
	}
	gen := c.gen
	c.mu.Unlock()
	c.loads.Add(1)
	v, err := load()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.gen == gen && c.hub.Trusted() {
		c.v, c.has = v, true
	}
	c.mu.Unlock()
	return v, nil
}

// Loads counts the calls of load so far (tests: a cached read loads
// nothing).
func (c *Cache[T]) Loads() int64 { return c.loads.Load() }

func (c *Cache[T]) drop() {
	c.mu.Lock()
	c.gen++
	c.has = false
	var zero T
	c.v = zero
	c.mu.Unlock()
}

// ChangedTx records in tx that the cached table changes: the cache is
// dropped in this process when tx commits (and a load that raced the
// commit is not kept) and, on PostgreSQL, every process listening is
// notified by the same transaction. Its error must fail the unit: no change
// commits without its invalidation.
func (c *Cache[T]) ChangedTx(ctx context.Context, tx *sqldb.Tx) error {
	tx.AfterCommit(c.drop)
	return c.hub.NotifyTx(ctx, tx, c.name, "")
}
