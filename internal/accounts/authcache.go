package accounts

import (
	"context"
	"net/http"
	"sync"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// The token cache: every authenticated request of the shop resolves its
// bearer token, and a database read per request was most of an
// authenticated read's cost. Authenticate keeps what it read — the principal
// and the user's profile — in a bounded in-process cache for at most
// authCacheTTL.
//
// Every change that can make a cached entry wrong (logout, password change
// or reset, disable, role change, MFA activation, profile change, erasure,
// channel token revocation) calls forgetUser in its unit's transaction:
// after the commit this process drops the user's entries, and on PostgreSQL
// the same transaction notifies every other replica, which drops them when
// the commit is delivered (the process's notify.Hub). A replica trusts its
// cache only while the hub listens: while its listening connection is down
// it neither reads nor fills the cache. A read that raced an invalidation does not fill it
// either (the epoch check below). On SQLite one server owns the database;
// a change made by another process (the command line) is seen within
// authCacheTTL.
const (
	authCacheTTL  = 10 * time.Second
	authCacheSize = 100_000
)

type authEntry struct {
	p       web.Principal
	user    User // the profile, when p is a user's
	expires time.Time
}

// authCache is safe for concurrent use.
type authCache struct {
	now func() time.Time

	mu      sync.Mutex
	trusted func() bool                    // the invalidations reach us; guarded by mu
	epoch   uint64                         // counts invalidations; guarded by mu
	byToken map[string]authEntry           // token hash → entry; guarded by mu
	byUser  map[string]map[string]struct{} // user key → token hashes; guarded by mu
}

func newAuthCache(now func() time.Time, trusted func() bool) *authCache {
	return &authCache{now: now, trusted: trusted, byToken: map[string]authEntry{}, byUser: map[string]map[string]struct{}{}}
}

// get returns the entry of a token hash when it is cached and fresh, and
// the epoch to pass to put after a miss.
func (c *authCache) get(hash string) (authEntry, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.trusted() {
		return authEntry{}, false, c.epoch
	}
	e, ok := c.byToken[hash]
	if ok && c.now().Before(e.expires) {
		return e, true, c.epoch
	}
	return authEntry{}, false, c.epoch
}

// put caches e under hash unless an invalidation happened since epoch was
// read (the read that made e may predate it) or the cache is not trusted.
func (c *authCache) put(hash string, e authEntry, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.trusted() || epoch != c.epoch {
		return
	}
	if len(c.byToken) >= authCacheSize {
		c.clearLocked() // rare: a bounded cache over many live sessions starts again
	}
	e.expires = minTime(e.expires, c.now().Add(authCacheTTL))
	c.byToken[hash] = e
	key := userKey(e.p)
	if c.byUser[key] == nil {
		c.byUser[key] = map[string]struct{}{}
	}
	c.byUser[key][hash] = struct{}{}
}

// profile returns the cached profile of userID, if one of its sessions is
// cached and fresh.
func (c *authCache) profile(hash string) (User, bool) {
	e, ok, _ := c.get(hash)
	if !ok || e.user.ID == "" {
		return User{}, false
	}
	return e.user, true
}

// forget drops every entry of the user key.
func (c *authCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for h := range c.byUser[key] {
		delete(c.byToken, h)
	}
	delete(c.byUser, key)
}

// setTrusted replaces what says whether invalidations reach this process,
// and clears the cache.
func (c *authCache) setTrusted(trusted func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trusted = trusted
	c.clearLocked()
}

// clear drops every entry: notifications may have been missed.
func (c *authCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
}

func (c *authCache) clearLocked() {
	c.epoch++
	c.byToken = map[string]authEntry{}
	c.byUser = map[string]map[string]struct{}{}
}

// userKey is the key under which a principal's entries are kept: the user
// id, or "channel:<code>" for channel tokens (their Principal.UserID).
func userKey(p web.Principal) string { return p.UserID }

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// authChannel is the notification channel of token invalidations.
const authChannel = "auth"

// forgetUser invalidates every cached session of key (a user id, or
// "channel:<code>") when tx commits, here and on every replica.
func (s *Service) forgetUser(ctx context.Context, tx *sqldb.Tx, key string) error {
	tx.AfterCommit(func() { s.cache.forget(key) })
	if s.hub != nil {
		if err := s.hub.NotifyTx(ctx, tx, authChannel, key); err != nil {
			return errs.E("accounts.forgetUser", errs.Internal, err)
		}
	}
	return nil
}

// currentUser is the signed-in user userID of r: from the token cache when
// Authenticate just cached it, else from the database.
func (s *Service) currentUser(r *http.Request, userID string) (User, error) {
	if tok, ok := bearer(r); ok {
		if u, ok := s.cache.profile(hashToken(tok)); ok && u.ID == userID {
			return u, nil
		}
	}
	return s.User(r.Context(), userID)
}
