package idem

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// The errors Do returns when the work does not run.
var (
	// ErrKeyReused: the key has a record made with other material.
	ErrKeyReused = errors.New("idem: the key was used with another request")
	// ErrKeyInUse: a call with the key is still running after WaitTimeout.
	ErrKeyInUse = errors.New("idem: a call with the key is still running")
)

// Outcome is what a unit answered, recorded as given and returned again on
// replay: opaque to this package. Status must be 100–999 and ContentType at
// most 255 bytes for the outcome to be recorded.
type Outcome struct {
	Status      int
	ContentType string
	Body        []byte
}

// Request names one idempotent call.
type Request struct {
	// Scope is the caller whose keys these are ("" — an anonymous caller
	// that names nobody — scopes the key by Material; see the package doc).
	Scope string
	// Key is the caller's idempotency key. Empty: nothing is recorded or
	// looked up; Do runs Prepare and the work and returns its outcome or error.
	Key string
	// Material is what the fingerprint covers (e.g. method, path and body):
	// a later call with the key replays only when its Material is the same.
	Material []byte
	// Prepare, when set, runs first, outside any transaction (slow work:
	// hashing, a call to a provider), once the key is held and not recorded.
	Prepare func(ctx context.Context) error
	// Record decides which failures (of Prepare or of the work) are recorded:
	// it returns the outcome to record for err, and whether to record it.
	// nil records no failure.
	Record func(err error) (Outcome, bool)
}

// Work is a unit's work in the write transaction. It may run more than once
// (a group-commit batch run again): only its effect through tx may count.
type Work func(ctx context.Context, tx *sqldb.Tx) (Outcome, error)

// Result is a call's recorded outcome.
type Result struct {
	Outcome
	// Replayed is true when the outcome was recorded by an earlier call.
	Replayed bool
}

// Config configures a Store.
type Config struct {
	// Secret is the server secret (at least MinSecret bytes; secret.Load).
	Secret []byte
	// Retention is how long a record is kept (default and minimum 24h).
	Retention time.Duration
	// WaitTimeout is how long a duplicate waits for the call holding its key
	// before it gets ErrKeyInUse (default 10s).
	WaitTimeout time.Duration
	// LockConns caps the PostgreSQL connections that hold advisory locks for
	// running calls (default 32); they are apart from the DB's pool so that a
	// call holding a lock can always get a connection for its work.
	LockConns int
	// Logger receives panics in work and the pruner's errors (nil: slog.Default).
	Logger *slog.Logger
}

// Store records idempotent outcomes in db, whose schema must include
// Migrations(). Safe for concurrent use; several Stores (replicas) may share
// a database with the same secret: on PostgreSQL they serialise on advisory
// locks, on SQLite the record's primary key settles a race between processes.
type Store struct {
	db   *sqldb.DB
	cfg  Config
	keys keys

	mu      sync.Mutex
	running map[string]chan struct{} // key_id → closed when its call ends; guarded by mu

	lockDB  *sql.DB // PostgreSQL: the connections whose transactions hold advisory locks
	lockErr error
}

// New returns a Store over db. It fails only when cfg.Secret is too short.
// Close it to release its lock connections.
func New(db *sqldb.DB, cfg Config) (*Store, error) {
	k, err := deriveKeys(cfg.Secret)
	if err != nil {
		return nil, err
	}
	cfg.Secret = nil // only the derived keys are kept
	if cfg.Retention < 24*time.Hour {
		cfg.Retention = 24 * time.Hour
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 10 * time.Second
	}
	if cfg.LockConns <= 0 {
		cfg.LockConns = 32
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Store{db: db, cfg: cfg, keys: k, running: map[string]chan struct{}{}}
	if db.Engine() == sqldb.Postgres {
		s.lockDB, s.lockErr = sql.Open("pgx", db.URL())
		if s.lockErr == nil {
			s.lockDB.SetMaxOpenConns(cfg.LockConns)
			s.lockDB.SetMaxIdleConns(min(cfg.LockConns, 4))
			s.lockDB.SetConnMaxIdleTime(time.Minute)
		}
	}
	return s, nil
}

// Close releases the lock connections (PostgreSQL). Do must not be called after.
func (s *Store) Close() error {
	if s.lockDB != nil {
		return s.lockDB.Close()
	}
	return nil
}

// Do runs work once per (req.Scope, req.Key) and returns its recorded
// outcome (see the package doc): a nil error means Result holds the outcome
// recorded for the key — fresh, or Replayed — even when that outcome is a
// recorded failure. Otherwise Do returns ErrKeyReused, ErrKeyInUse, the
// error of Prepare or of work that was not recorded (its effect rolled
// back, the key left free), or a commit's error. Once Prepare has
// succeeded, the work runs to its end even if ctx is cancelled.
func (s *Store) Do(ctx context.Context, c sqldb.Committer, req Request, work Work) (Result, error) {
	if req.Key == "" {
		return s.plain(ctx, c, req, work)
	}
	n, err := s.keys.nameOf(req)
	if err != nil {
		return Result{}, errs.E("idem.Do", errs.Internal, err)
	}
	release, err := s.lock(ctx, n)
	if err != nil {
		return Result{}, err
	}
	defer release()
	if res, found, err := s.lookup(ctx, n); found || err != nil {
		return res, err
	}
	res, err := s.execute(ctx, c, req, n, work)
	if sqldb.IsUniqueViolation(err) {
		// Recorded meanwhile by a process that holds no lock with us (a
		// second SQLite process); our effect was rolled back with the insert.
		if res, found, lerr := s.lookup(ctx, n); found || lerr != nil {
			return res, lerr
		}
		return Result{}, errs.E("idem.Do", errs.Internal, err)
	}
	return res, err
}

// plain runs a call without a key: nothing is looked up or recorded.
func (s *Store) plain(ctx context.Context, c sqldb.Committer, req Request, work Work) (Result, error) {
	if req.Prepare != nil {
		if err := req.Prepare(ctx); err != nil {
			return Result{}, err
		}
	}
	ctx = context.WithoutCancel(ctx)
	var out Outcome
	err := c.Run(ctx, sqldb.Unit{
		Run: func(tx *sqldb.Tx) error {
			var err error
			out, err = s.call(ctx, tx, work)
			return err
		},
		// Nothing to record; set so that a failure is rolled back alone (a
		// savepoint) and a group-commit batch around it is not run again.
		OnFail: func(*sqldb.Tx, error) error { return nil },
	})
	return Result{Outcome: out}, err
}

// errInsert marks a failure to insert the record after the work succeeded:
// it is never offered to Request.Record.
type errInsert struct{ err error }

func (e errInsert) Error() string { return "idem: recording the outcome: " + e.err.Error() }
func (e errInsert) Unwrap() error { return e.err }

// execute runs Prepare and work and records the outcome in the unit's
// transaction; n's key is held and has no record.
func (s *Store) execute(ctx context.Context, c sqldb.Committer, req Request, n name, work Work) (Result, error) {
	if req.Prepare != nil {
		if err := req.Prepare(ctx); err != nil {
			out, ok := s.recordable(req, err)
			if !ok {
				return Result{}, err
			}
			ctx := context.WithoutCancel(ctx)
			if err := c.Do(ctx, func(tx *sqldb.Tx) error { return s.insert(ctx, tx, n, out) }); err != nil {
				return Result{}, err
			}
			return Result{Outcome: out}, nil
		}
	}
	ctx = context.WithoutCancel(ctx)
	// What the last run of the unit did (a batch may run it again; the last
	// run is the one that committed).
	var (
		out      Outcome
		recorded bool
		runErr   error
	)
	err := c.Run(ctx, sqldb.Unit{
		Run: func(tx *sqldb.Tx) error {
			recorded = false
			o, err := s.call(ctx, tx, work)
			if err == nil {
				if err = s.insert(ctx, tx, n, o); err != nil {
					err = errInsert{err}
				}
			}
			out, runErr = o, err
			recorded = err == nil
			return err
		},
		OnFail: func(tx *sqldb.Tx, err error) error {
			var ie errInsert
			if errors.As(err, &ie) {
				return nil
			}
			o, ok := s.recordable(req, err)
			if !ok {
				return nil
			}
			if err := s.insert(ctx, tx, n, o); err != nil {
				return err
			}
			out, recorded = o, true
			return nil
		},
	})
	if recorded && (err == nil || runErr != nil && errors.Is(err, runErr)) {
		return Result{Outcome: out}, nil
	}
	if err == nil { // a Committer that lost the unit's outcome
		err = errs.E("idem.Do", errs.Internal, "the unit committed without its record")
	}
	return Result{}, err
}

// recordable asks req.Record whether err's outcome is recorded.
func (s *Store) recordable(req Request, err error) (Outcome, bool) {
	if req.Record == nil {
		return Outcome{}, false
	}
	o, ok := req.Record(err)
	if ok && validOutcome(o) != nil {
		s.cfg.Logger.Error("idem: Record returned an outcome that cannot be recorded", "status", o.Status)
		return Outcome{}, false
	}
	return o, ok
}

// call runs work; a panic in it (a bug) fails this call alone, logged with
// its stack: the unit's writes roll back and a batch around it goes on.
func (s *Store) call(ctx context.Context, tx *sqldb.Tx, work Work) (out Outcome, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Logger.ErrorContext(ctx, "panic in idempotent work", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			out, err = Outcome{}, errs.E("idem.Do", errs.Internal, fmt.Errorf("panic: %v", p))
		}
	}()
	out, err = work(ctx, tx)
	if err == nil {
		if verr := validOutcome(out); verr != nil {
			return Outcome{}, errs.E("idem.Do", errs.Internal, verr)
		}
	}
	return out, err
}
