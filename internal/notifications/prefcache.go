package notifications

import (
	"context"
	"sync"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/notify"
	"mercato/internal/platform/sqldb"
)

// The preferences cache: every order mail needs its customer's locale, and
// a read per consumed event was a writer statement per event. The consumer
// keeps what it read (defaults included) in a bounded in-process cache. A
// change (SetPreferencesTx, erasure) drops the customer's entry when its
// transaction commits and, on PostgreSQL, notifies every replica in the
// same transaction (the process's notify.Hub); a replica trusts its cache
// only while its hub listens. A miss reads committed state (the reader),
// never a unit's uncommitted writes, and a read that raced a change is not
// kept.
const (
	prefsChannel   = "notifications_prefs"
	prefsCacheSize = 100_000
)

type prefsCache struct {
	trusted func() bool

	mu    sync.Mutex
	epoch uint64                 // counts invalidations; guarded by mu
	m     map[string]Preferences // guarded by mu
}

func newPrefsCache(trusted func() bool) *prefsCache {
	return &prefsCache{trusted: trusted, m: map[string]Preferences{}}
}

func (c *prefsCache) get(id string) (Preferences, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[id]
	return p, ok && c.trusted(), c.epoch
}

func (c *prefsCache) put(id string, p Preferences, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch || !c.trusted() {
		return
	}
	if len(c.m) >= prefsCacheSize {
		c.m = map[string]Preferences{} // rare: start again rather than track age
	}
	c.m[id] = p
}

func (c *prefsCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	delete(c.m, id)
}

func (c *prefsCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.m = map[string]Preferences{}
}

// listen makes hub's notifications drop the cache's entries.
func (c *prefsCache) listen(hub *notify.Hub) {
	hub.Listen(prefsChannel, notify.Listener{On: c.forget, Reset: c.clear})
}

// cachedPreferences is customerID's preferences for a mail: from the cache,
// else read from committed state and kept.
func (s *Service) cachedPreferences(ctx context.Context, customerID string) (Preferences, error) {
	p, ok, epoch := s.prefs.get(customerID)
	if ok {
		return p, nil
	}
	p, err := s.Preferences(ctx, customerID)
	if err != nil {
		return Preferences{}, err
	}
	s.prefs.put(customerID, p, epoch)
	return p, nil
}

// preferencesChanged drops customerID's cached preferences when tx
// commits, here and (PostgreSQL) on every replica. Its error fails the
// unit: no change commits without its invalidation.
func (s *Service) preferencesChanged(ctx context.Context, tx *sqldb.Tx, customerID string) error {
	tx.AfterCommit(func() { s.prefs.forget(customerID) })
	if s.hub != nil {
		if err := s.hub.NotifyTx(ctx, tx, prefsChannel, customerID); err != nil {
			return errs.E("notifications.preferencesChanged", errs.Internal, err)
		}
	}
	return nil
}
