package catalog

import (
	"context"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"

	"mercato/internal/platform/sqldb"
)

// Cache keeps encoded public product documents by key. Implementations are
// safe for concurrent use; every entry lives at most the TTL the cache was
// made with, whatever happens to invalidations. Errors are the store's (a
// Redis that is down): the catalog then reads the database.
type Cache interface {
	// Get returns the value of key, and false when there is none.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores value under key for the cache's TTL.
	Set(ctx context.Context, key string, value []byte) error
	// Delete removes keys; unknown keys are no error.
	Delete(ctx context.Context, keys ...string) error
	// Shared reports whether replicas share the cache (Redis): its
	// invalidations then need no fan-out, but reach it over the network.
	Shared() bool
}

// DefaultCacheTTL bounds how long a cached public product document may be
// served after a change that no invalidation reported (a change made by
// another process on SQLite, a lost notification).
const DefaultCacheTTL = 30 * time.Second

// memoryCache is the in-process Cache (otter: bounded size and TTL).
type memoryCache struct{ c *otter.Cache[string, []byte] }

// NewMemoryCache returns an in-process cache of at most size entries, each
// kept at most ttl.
func NewMemoryCache(size int, ttl time.Duration) Cache {
	return memoryCache{c: otter.Must(&otter.Options[string, []byte]{
		MaximumSize:      size,
		ExpiryCalculator: otter.ExpiryWriting[string, []byte](ttl),
	})}
}

func (m memoryCache) Get(_ context.Context, key string) ([]byte, bool, error) {
	v, ok := m.c.GetIfPresent(key)
	return v, ok, nil
}

func (m memoryCache) Set(_ context.Context, key string, value []byte) error {
	m.c.Set(key, value)
	return nil
}

func (m memoryCache) Delete(_ context.Context, keys ...string) error {
	for _, k := range keys {
		m.c.Invalidate(k)
	}
	return nil
}

func (memoryCache) Shared() bool { return false }

// productKey is the cache key of a product's public document.
func productKey(id string) string { return "product:" + id }

// notifyName is the LISTEN/NOTIFY channel of the catalog's invalidations.
const notifyName = "catalog_cache"

// forget makes the cached documents of ids go when tx commits: this
// process drops them after the commit, and on PostgreSQL the same
// transaction notifies the other replicas (RunInvalidations), which drop
// theirs when the commit is delivered.
// Its error fails the unit: no change commits without its invalidation.
func (s *Service) forget(ctx context.Context, tx *sqldb.Tx, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	tx.AfterCommit(func() { s.drop(ids) })
	if s.hub != nil {
		if err := s.hub.NotifyTx(ctx, tx, notifyName, strings.Join(ids, ",")); err != nil {
			return internal("catalog.forget", err)
		}
	}
	return nil
}

// drop removes ids from the cache after a commit and counts an
// invalidation, so that a read that raced it does not fill the cache with
// what it read before. It must not block: a shared cache is told in the
// background (and the handler of the change tells it again before it
// answers, for read-your-writes).
func (s *Service) drop(ids []string) {
	s.gen.Add(1)
	if s.onDrop != nil {
		defer s.onDrop(ids)
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = productKey(id)
	}
	if !s.cache.Shared() {
		s.cache.Delete(context.Background(), keys...)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.cache.Delete(ctx, keys...); err != nil {
			s.log.Warn("catalog: cache invalidation failed; the entry expires with its TTL", "err", err)
		}
	}()
}

// dropNow removes id from a shared cache before a change's answer is sent.
func (s *Service) dropNow(ctx context.Context, ids ...string) {
	if !s.cache.Shared() {
		return
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = productKey(id)
	}
	if err := s.cache.Delete(ctx, keys...); err != nil {
		s.log.Warn("catalog: cache invalidation failed; the entry expires with its TTL", "err", err)
	}
}

// cacheTrusted reports whether the in-process cache may be used: always on
// SQLite (one server owns the database; a change by another process is
// seen within the TTL) and with a shared cache; on PostgreSQL only while
// this process hears the other replicas' invalidations (its notify hub
// listens).
func (s *Service) cacheTrusted() bool {
	return s.cache.Shared() || s.db.Engine() != sqldb.Postgres || s.hub.Trusted()
}

// dropAll empties the in-process cache: invalidations may have been missed.
func (s *Service) dropAll() {
	s.gen.Add(1)
	if m, ok := s.cache.(memoryCache); ok {
		m.c.InvalidateAll()
	}
}

// RunInvalidations listens for the other replicas' invalidations until ctx
// ends, when the catalog made its own notify hub (no
// module.Platform.Notify: tools and tests); with the process's hub, or a
// shared cache, it returns nil at once. While the hub does not listen the
// in-process cache is not used (PostgreSQL).
func (s *Service) RunInvalidations(ctx context.Context) error {
	if !s.ownHub {
		return nil
	}
	return s.hub.Run(ctx)
}
