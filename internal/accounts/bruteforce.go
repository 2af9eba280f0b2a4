package accounts

import (
	"context"
	"math"
	"sync"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// ThrottleConfig sets the back-off after failed logins. Failures are
// counted per account (per normalised e-mail, in the database, so the count
// holds across replicas and for unknown addresses alike) and per client IP
// (in memory). Once a counter reaches its threshold, every further attempt
// is refused with 429 for Base, doubling with each further failure up to
// Max; so the owner is never locked out for longer than Max after an attack
// stops. A success resets the account counter; a counter that sees no
// failure for Forget starts again from zero.
type ThrottleConfig struct {
	AccountFailures int           // default 10
	IPFailures      int           // default 50
	Base            time.Duration // default 30 s
	Max             time.Duration // default 15 min
	Forget          time.Duration // default 1 h
}

func (c ThrottleConfig) withDefaults() ThrottleConfig {
	if c.AccountFailures <= 0 {
		c.AccountFailures = 10
	}
	if c.IPFailures <= 0 {
		c.IPFailures = 50
	}
	if c.Base <= 0 {
		c.Base = 30 * time.Second
	}
	if c.Max <= 0 {
		c.Max = 15 * time.Minute
	}
	if c.Forget <= 0 {
		c.Forget = time.Hour
	}
	return c
}

// lockFor is how long to refuse attempts after the failures-th failure in
// a row against a threshold: zero below it, then Base·2^(failures-threshold)
// capped at Max.
func (c ThrottleConfig) lockFor(failures, threshold int) time.Duration {
	if failures < threshold {
		return 0
	}
	d := c.Base
	for i := threshold; i < failures && d < c.Max; i++ {
		d *= 2
	}
	return min(d, c.Max)
}

// rateLimited is the 429 answer, telling the client to retry after until.
func rateLimited(now, until time.Time) error {
	secs := int(math.Ceil(until.Sub(now).Seconds()))
	return &errs.Error{Op: "accounts.login", Kind: errs.RateLimited, Code: string(errs.CodeRateLimited),
		Msg: "too many failed attempts; try again later", RetryAfter: max(secs, 1)}
}

// checkThrottle refuses (429) an attempt for email from ip while either
// counter is locked.
func (s *Service) checkThrottle(ctx context.Context, email, ip string) error {
	now := s.db.Now()
	if until := s.ips.lockedUntil(ip); until.After(now) {
		return rateLimited(now, until)
	}
	var lockedUntil int64
	err := s.db.Reader().QueryRowContext(ctx,
		`SELECT locked_until FROM accounts_login_throttle WHERE email = $1`, email).Scan(&lockedUntil)
	if err != nil && !isNoRows(err) {
		return errs.E("accounts.checkThrottle", errs.Internal, err)
	}
	if until := sqldb.FromMicros(lockedUntil); until.After(now) {
		return rateLimited(now, until)
	}
	return nil
}

// recordFailure counts a failed attempt for email from ip, in a unit of
// its own on the write path (it must persist although the request fails).
func (s *Service) recordFailure(ctx context.Context, email, ip string) error {
	err := s.write.Do(ctx, func(tx *sqldb.Tx) error {
		now := sqldb.Micros(tx.Now)
		var failures int
		err := tx.QueryRowContext(ctx, `INSERT INTO accounts_login_throttle (email, failures, last_failure_at, locked_until)
			VALUES ($1, 1, $2, 0)
			ON CONFLICT (email) DO UPDATE SET
				failures = CASE WHEN accounts_login_throttle.last_failure_at < $3 THEN 1
					ELSE accounts_login_throttle.failures + 1 END,
				last_failure_at = $2
			RETURNING failures`, email, now, sqldb.Micros(tx.Now.Add(-s.cfg.Throttle.Forget))).Scan(&failures)
		if err != nil {
			return err
		}
		if d := s.cfg.Throttle.lockFor(failures, s.cfg.Throttle.AccountFailures); d > 0 {
			_, err = tx.ExecContext(ctx, `UPDATE accounts_login_throttle SET locked_until = $1 WHERE email = $2`,
				sqldb.Micros(tx.Now.Add(d)), email)
		}
		return err
	})
	s.ips.fail(ip, s.db.Now())
	if err != nil {
		return errs.E("accounts.recordFailure", errs.Internal, err)
	}
	return nil
}

// resetThrottle forgets email's failures (a successful login), in tx.
func resetThrottle(ctx context.Context, tx *sqldb.Tx, email string) error {
	_, err := exec(ctx, tx, "accounts.resetThrottle", `DELETE FROM accounts_login_throttle WHERE email = $1`, email)
	return err
}

// ipThrottle counts failures per client IP in memory. A success does not
// reset it (an attacker would interleave logins to an account of its own);
// it forgets an address after Forget without failures. Safe for concurrent
// use.
type ipThrottle struct {
	cfg ThrottleConfig

	mu sync.Mutex
	m  map[string]*ipState // guarded by mu
}

type ipState struct {
	failures int
	last     time.Time
	until    time.Time
}

// maxIPEntries bounds the map; beyond it, idle entries are swept.
const maxIPEntries = 100_000

func newIPThrottle(cfg ThrottleConfig) *ipThrottle {
	return &ipThrottle{cfg: cfg, m: map[string]*ipState{}}
}

func (t *ipThrottle) lockedUntil(ip string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.m[ip]; st != nil {
		return st.until
	}
	return time.Time{}
}

func (t *ipThrottle) fail(ip string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.m[ip]
	if st == nil || now.Sub(st.last) > t.cfg.Forget {
		if len(t.m) >= maxIPEntries {
			t.sweep(now)
		}
		st = &ipState{}
		t.m[ip] = st
	}
	st.failures++
	st.last = now
	if d := t.cfg.lockFor(st.failures, t.cfg.IPFailures); d > 0 {
		st.until = now.Add(d)
	}
}

// sweep drops entries idle for longer than Forget. Called with mu held.
func (t *ipThrottle) sweep(now time.Time) {
	for ip, st := range t.m {
		if now.Sub(st.last) > t.cfg.Forget && !st.until.After(now) {
			delete(t.m, ip)
		}
	}
}
