package idem

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// lock takes n's key for the running call and returns the function that
// gives it back. It waits at most WaitTimeout for a call holding the key —
// in this process (an in-memory lock) and on PostgreSQL on any replica
// (pg_advisory_xact_lock in a transaction held open until release, so a
// crash frees it) — and then fails with ErrKeyInUse. A cancelled ctx ends
// the wait with an errs.Unavailable error.
func (s *Store) lock(ctx context.Context, n name) (release func(), err error) {
	deadline := time.Now().Add(s.cfg.WaitTimeout)
	timer := time.NewTimer(s.cfg.WaitTimeout)
	defer timer.Stop()
	id := string(n.keyID)
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
				return nil, ErrKeyInUse
			case <-ctx.Done():
				return nil, errs.E("idem.Do", errs.Unavailable, "the request was cancelled", ctx.Err())
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
	unlock, err := s.advisoryLock(ctx, n, deadline)
	if err != nil {
		releaseMem()
		if isLockTimeout(err) {
			return nil, ErrKeyInUse
		}
		return nil, errs.E("idem.Do", errs.Unavailable, "the request could not be serialised; retry later", err)
	}
	return func() { unlock(); releaseMem() }, nil
}

// advisoryLock takes a lock connection, opens a transaction on it and takes
// the transaction-scoped advisory lock of n's key id, waiting until deadline
// at most (for the connection, then lock_timeout). The returned function
// rolls the transaction back, which frees the lock and the connection. The
// transaction outlives ctx's cancellation; ctx still ends the waits. The
// server sees only 64 bits of the key id, never the key.
func (s *Store) advisoryLock(ctx context.Context, n name, deadline time.Time) (unlock func(), err error) {
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
	wait := time.Until(deadline)
	if wait < time.Millisecond {
		unlock()
		return nil, errLockTimeout
	}
	if _, err := tx.ExecContext(ctx, `SELECT set_config('lock_timeout', $1, true)`,
		strconv.FormatInt(wait.Milliseconds(), 10)); err != nil {
		unlock()
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, lockID(n)); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// lockID is the advisory lock of n: the first 64 bits of its key id (a
// collision only makes two calls wait for each other).
func lockID(n name) int64 { return int64(binary.BigEndian.Uint64(n.keyID)) }

var errLockTimeout = errors.New("idem: advisory lock wait timed out")

// isLockTimeout reports whether err is a lock wait that ran out of time
// (PostgreSQL lock_not_available, or no lock connection in time).
func isLockTimeout(err error) bool {
	var pe *pgconn.PgError
	return errors.Is(err, errLockTimeout) || errors.As(err, &pe) && pe.Code == "55P03"
}

// String keeps a name's secrets out of logs.
func (n name) String() string { return fmt.Sprintf("idem.name{key_id:%x…}", n.keyID[:4]) }
