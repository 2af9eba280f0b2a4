package web

import (
	"context"
	"embed"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Migrations is the schema of the idempotency_keys table (module "web").
func Migrations() migrate.Source { return migrate.Embedded("web", migrations) }

// lock takes (scope, key) for the running request and returns the function
// that gives it back. It waits at most WaitTimeout for a request holding the
// key — in this process (an in-memory lock) and on PostgreSQL on any replica
// (pg_advisory_xact_lock in a transaction held open until release, so a
// crash frees it) — and then fails with 409 idempotency_key_in_use.
func (s *Idempotency) lock(ctx context.Context, scope, key string) (release func(), err error) {
	const op = "web.Idempotency"
	inUse := errs.E(op, errs.Conflict, errs.CodeIdemInUse,
		"a request with this Idempotency-Key is still being processed; retry later")
	deadline := now().Add(s.cfg.WaitTimeout)
	timer := time.NewTimer(s.cfg.WaitTimeout)
	defer timer.Stop()
	id := scope + "\x00" + key
	var done chan struct{}
	for done == nil {
		s.mu.Lock()
		busy, ok := s.running[id]
		if !ok {
			done = make(chan struct{})
			s.running[id] = done
		}
		s.mu.Unlock()
		if ok {
			select {
			case <-busy:
			case <-timer.C:
				return nil, inUse
			case <-ctx.Done():
				return nil, errs.E(op, errs.Unavailable, "the request was cancelled", ctx.Err())
			}
		}
	}
	releaseMem := func() {
		s.mu.Lock()
		delete(s.running, id)
		s.mu.Unlock()
		close(done)
	}
	if s.db.Engine() != sqldb.Postgres {
		return releaseMem, nil
	}
	unlock, err := s.advisoryLock(ctx, scope, key, deadline)
	if err != nil {
		releaseMem()
		if isLockTimeout(err) {
			return nil, inUse
		}
		return nil, errs.E(op, errs.Unavailable, "the request could not be serialised; retry later", err)
	}
	return func() { unlock(); releaseMem() }, nil
}

// advisoryLock takes a lock connection, opens a transaction on it and takes
// the transaction-scoped advisory lock of scope||key, waiting until deadline
// at most (for the connection, then lock_timeout). The returned function
// rolls the transaction back, which frees the lock and the connection. The
// transaction outlives ctx's cancellation; ctx still ends the waits.
func (s *Idempotency) advisoryLock(ctx context.Context, scope, key string, deadline time.Time) (unlock func(), err error) {
	if s.lockErr != nil {
		return nil, s.lockErr
	}
	connCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := s.lockDB.Conn(connCtx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, errLockTimeout
		}
		return nil, err
	}
	tx, err := conn.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	unlock = func() {
		tx.Rollback()
		conn.Close()
	}
	wait := deadline.Sub(now())
	if wait < time.Millisecond {
		unlock()
		return nil, errLockTimeout
	}
	if _, err := tx.ExecContext(ctx, `SELECT set_config('lock_timeout', $1, true)`,
		strconv.FormatInt(wait.Milliseconds(), 10)); err != nil {
		unlock()
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || $2, 0))`, scope, key); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

var errLockTimeout = errors.New("web: advisory lock wait timed out")

// isLockTimeout reports whether err is a lock wait that ran out of time
// (PostgreSQL lock_not_available, or no lock connection in time).
func isLockTimeout(err error) bool {
	var pe *pgconn.PgError
	return errors.Is(err, errLockTimeout) || errors.As(err, &pe) && pe.Code == "55P03"
}

// Prune deletes the keys older than Retention and reports how many.
func (s *Idempotency) Prune(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`,
			sqldb.Micros(tx.Now.Add(-s.cfg.Retention)))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, errs.E("web.Idempotency.Prune", errs.Internal, err)
	}
	return n, nil
}

// RunPruner prunes now and then every interval until ctx ends; failures are
// logged and retried at the next tick.
func (s *Idempotency) RunPruner(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.Prune(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.ErrorContext(ctx, "pruning idempotency keys failed", "err", err)
		} else if n > 0 {
			s.cfg.Logger.InfoContext(ctx, "pruned idempotency keys", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
