package accounts

import (
	"context"
	"math"
	"sync"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// ThrottleConfig sets the back-off after failed password checks (logins,
// and the password confirmations of /me routes). Three counters:
//
//   - per account and client address (AccountFailures, default 10): what
//     the owner's own address sees; a stranger's failures from other
//     addresses never lock it;
//   - per account from every address (AccountCeiling, default 100): a
//     distributed attack; it does not lock an address from which the
//     account logged in within KnownFor (default 30 days);
//   - per client address over every account (IPFailures, default 50, in
//     memory): a spray of many accounts from one address.
//
// The two account counters are in the database (they hold across replicas
// and for unknown addresses alike). Every attempt is counted there before
// its password is hashed, so that parallel attempts cannot outrun the
// count; once a counter reaches its threshold every further attempt is
// refused with 429 for Base, doubling with each further failure up to Max.
// A success cancels its own count and the failures before it on its
// address; a counter without failures for Forget starts again from zero;
// the unlock link and a password reset clear an account's locks.
type ThrottleConfig struct {
	AccountFailures int           // per account and address; default 10
	AccountCeiling  int           // per account, all addresses; default 100
	IPFailures      int           // per address, all accounts; default 50
	Base            time.Duration // default 30 s
	Max             time.Duration // default 15 min
	Forget          time.Duration // default 1 h
	KnownFor        time.Duration // default 30 days
}

func (c ThrottleConfig) withDefaults() ThrottleConfig {
	defInt := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	defDur := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	defInt(&c.AccountFailures, 10)
	defInt(&c.AccountCeiling, 100)
	defInt(&c.IPFailures, 50)
	defDur(&c.Base, 30*time.Second)
	defDur(&c.Max, 15*time.Minute)
	defDur(&c.Forget, time.Hour)
	defDur(&c.KnownFor, 30*24*time.Hour)
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
		Msg: "too many failed attempts; try again later (the account's owner can ask for an unlock link)", RetryAfter: max(secs, 1)}
}

// anyClient is the client column of an account's all-addresses counter.
const anyClient = "*"

// attempt is a password check that has been counted: pos is its place in
// its address's row of failures, star whether the all-addresses counter
// counted it too (not when a known address passed that counter's lock).
type attempt struct {
	email, ip string
	pos       int
	star      bool
}

// beginAttempt counts a password check for email from ip before it runs,
// as a unit of its own on the write path, and refuses it (429 with
// Retry-After) while a counter is locked — nothing is counted then. The
// caller ends the attempt with succeeded (in its transaction), undo, or
// nothing (a failure stays counted), and calls s.ips.end in every case
// once begin returned nil.
func (s *Service) beginAttempt(ctx context.Context, email, ip string) (attempt, error) {
	now := s.db.Now()
	if until, ok := s.ips.begin(ip, now); !ok {
		return attempt{}, rateLimited(now, until)
	}
	at := attempt{email: email, ip: ip}
	c := s.cfg.Throttle
	err := s.write.Do(ctx, func(tx *sqldb.Tx) error {
		pos, known, err := bumpThrottle(ctx, tx, c, email, ip, c.AccountFailures)
		if err != nil {
			return err
		}
		star, _, err := bumpThrottle(ctx, tx, c, email, anyClient, c.AccountCeiling)
		if err != nil && !(known && errs.Is(err, errs.RateLimited)) {
			return err // refused: the unit rolls back, the pair's count with it
		}
		at.pos, at.star = pos, star > 0
		return nil
	})
	if err != nil {
		s.ips.end(ip, false, s.db.Now())
		if errs.Is(err, errs.RateLimited) {
			return attempt{}, err
		}
		return attempt{}, errs.E("accounts.beginAttempt", errs.Internal, err)
	}
	return at, nil
}

// bumpThrottle counts one failure in email's counter for client, unless it
// is locked (then a RateLimited error until the lock ends), and locks it
// when the count reaches threshold. It returns the count and whether the
// account logged in from client recently (its row is "known").
func bumpThrottle(ctx context.Context, tx *sqldb.Tx, c ThrottleConfig, email, client string, threshold int) (int, bool, error) {
	now := sqldb.Micros(tx.Now)
	var failures int
	var knownUntil int64
	err := tx.QueryRowContext(ctx, `INSERT INTO accounts_login_throttle
			(email, client, failures, last_failure_at, locked_until, known_until) VALUES ($1, $2, 1, $3, 0, 0)
		ON CONFLICT (email, client) DO UPDATE SET
			failures = CASE WHEN accounts_login_throttle.last_failure_at < $4 THEN 1
				ELSE accounts_login_throttle.failures + 1 END,
			last_failure_at = $3
		WHERE accounts_login_throttle.locked_until <= $3
		RETURNING failures, known_until`, email, client, now, sqldb.Micros(tx.Now.Add(-c.Forget))).Scan(&failures, &knownUntil)
	if isNoRows(err) {
		var until int64
		if err := tx.QueryRowContext(ctx, `SELECT locked_until FROM accounts_login_throttle WHERE email = $1 AND client = $2`,
			email, client).Scan(&until); err != nil {
			return 0, false, errs.E("accounts.throttle", errs.Internal, err)
		}
		return 0, false, rateLimited(tx.Now, sqldb.FromMicros(until))
	}
	if err != nil {
		return 0, false, errs.E("accounts.throttle", errs.Internal, err)
	}
	if d := c.lockFor(failures, threshold); d > 0 {
		if _, err := exec(ctx, tx, "accounts.throttle", `UPDATE accounts_login_throttle SET locked_until = $1
			WHERE email = $2 AND client = $3`, sqldb.Micros(tx.Now.Add(d)), email, client); err != nil {
			return 0, false, err
		}
	}
	return failures, knownUntil > now, nil
}

// succeeded ends a in tx for a right password: the failures in a row on
// its address up to it are forgotten (those counted after it, still
// running, stay), its address is known for KnownFor, and its count in the
// all-addresses counter is taken back.
func (s *Service) succeeded(ctx context.Context, tx *sqldb.Tx, a attempt) error {
	const op = "accounts.throttle"
	c := s.cfg.Throttle
	if _, err := exec(ctx, tx, op, `UPDATE accounts_login_throttle SET
			failures = CASE WHEN failures > $3 THEN failures - $3 ELSE 0 END,
			locked_until = CASE WHEN failures - $3 >= $4 THEN locked_until ELSE 0 END,
			known_until = $5
		WHERE email = $1 AND client = $2`,
		a.email, a.ip, a.pos, c.AccountFailures, sqldb.Micros(tx.Now.Add(c.KnownFor))); err != nil {
		return err
	}
	return s.takeBack(ctx, tx, a, false)
}

// undo takes a's count back (a check that was neither right nor wrong: a
// missing second factor, or a hash that could not run), as a unit of its
// own on the write path. A failure to undo is logged: the attempt then
// stays counted, which errs on the safe side.
func (s *Service) undo(ctx context.Context, a attempt) {
	ctx = context.WithoutCancel(ctx)
	if err := s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.takeBack(ctx, tx, a, true) }); err != nil {
		s.log.ErrorContext(ctx, "accounts: taking back a login attempt failed", "err", err)
	}
}

// takeBack removes a's count from the all-addresses counter, and from its
// address's counter when pair, lifting a lock that the count had set.
func (s *Service) takeBack(ctx context.Context, tx *sqldb.Tx, a attempt, pair bool) error {
	c := s.cfg.Throttle
	for _, row := range []struct {
		client    string
		threshold int
		do        bool
	}{{a.ip, c.AccountFailures, pair}, {anyClient, c.AccountCeiling, a.star}} {
		if !row.do {
			continue
		}
		if _, err := exec(ctx, tx, "accounts.throttle", `UPDATE accounts_login_throttle SET failures = failures - 1,
				locked_until = CASE WHEN failures - 1 >= $3 THEN locked_until ELSE 0 END
			WHERE email = $1 AND client = $2 AND failures > 0`, a.email, row.client, row.threshold); err != nil {
			return err
		}
	}
	return nil
}

// clearLocks forgets every failure and lock of email's counters (the
// unlock link, a password reset), in tx; known addresses stay known.
func clearLocks(ctx context.Context, tx *sqldb.Tx, email string) error {
	_, err := exec(ctx, tx, "accounts.clearLocks", `UPDATE accounts_login_throttle SET failures = 0, locked_until = 0
		WHERE email = $1`, email)
	return err
}

// deleteThrottle deletes every counter of email (erasure), in tx.
func deleteThrottle(ctx context.Context, tx *sqldb.Tx, email string) error {
	_, err := exec(ctx, tx, "accounts.deleteThrottle", `DELETE FROM accounts_login_throttle WHERE email = $1`, email)
	return err
}

// lockedUntil is the end of the latest lock on any of email's counters
// (zero when none is in force), read outside any transaction.
func (s *Service) lockedUntil(ctx context.Context, q querier, email string, now time.Time) (time.Time, error) {
	var until int64
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(locked_until), 0) FROM accounts_login_throttle WHERE email = $1`,
		email).Scan(&until)
	if err != nil {
		return time.Time{}, errs.E("accounts.lockedUntil", errs.Internal, err)
	}
	if t := sqldb.FromMicros(until); t.After(now) {
		return t, nil
	}
	return time.Time{}, nil
}

// ipThrottle counts failures per client address in memory and bounds the
// checks in flight from one address, so that parallel attempts cannot
// outrun the count: below the threshold, failures plus checks in flight
// stay below it; at or above it (after a lock ended) one check at a time.
// A success does not reset it (an attacker would interleave logins to an
// account of its own); it forgets an address after Forget without
// failures. Safe for concurrent use.
type ipThrottle struct {
	cfg ThrottleConfig

	mu sync.Mutex
	m  map[string]*ipState // guarded by mu
}

type ipState struct {
	failures int
	inflight int
	last     time.Time
	until    time.Time
}

// maxIPEntries bounds the map; beyond it, idle entries are swept.
const maxIPEntries = 100_000

func newIPThrottle(cfg ThrottleConfig) *ipThrottle {
	return &ipThrottle{cfg: cfg, m: map[string]*ipState{}}
}

// begin admits a check from ip, or refuses it with the time to retry.
func (t *ipThrottle) begin(ip string, now time.Time) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.m[ip]
	if st == nil || (st.inflight == 0 && now.Sub(st.last) > t.cfg.Forget && !st.until.After(now)) {
		if len(t.m) >= maxIPEntries {
			t.sweep(now)
		}
		st = &ipState{last: now}
		t.m[ip] = st
	}
	if st.until.After(now) {
		return st.until, false
	}
	if st.inflight >= max(1, t.cfg.IPFailures-st.failures) {
		return now.Add(time.Second), false
	}
	st.inflight++
	return time.Time{}, true
}

// end finishes a check begun from ip, counting it when it failed.
func (t *ipThrottle) end(ip string, failed bool, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.m[ip]
	if st == nil {
		return
	}
	st.inflight = max(0, st.inflight-1)
	if !failed {
		return
	}
	st.failures++
	st.last = now
	if d := t.cfg.lockFor(st.failures, t.cfg.IPFailures); d > 0 {
		st.until = now.Add(d)
	}
}

// sweep drops idle entries. Called with mu held.
func (t *ipThrottle) sweep(now time.Time) {
	for ip, st := range t.m {
		if st.inflight == 0 && now.Sub(st.last) > t.cfg.Forget && !st.until.After(now) {
			delete(t.m, ip)
		}
	}
}
