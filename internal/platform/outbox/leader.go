package outbox

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
)

// On PostgreSQL the relays of several replicas elect a leader with a
// session-level advisory lock held on a dedicated connection (not one of the
// pool's). The leader's connection also LISTENs on the outbox channel, which
// every Append notifies, so events committed on any replica are published
// at once. Losing the connection loses the lock: the leader stops publishing
// and competes again; the server releases the lock and a standby takes over.

// healthEvery is how often the leader checks its connection while no
// notification arrives.
const healthEvery = 15 * time.Second

// runPostgres competes for leadership until ctx ends and leads while it holds
// it.
func (r *Relay) runPostgres(ctx context.Context) error {
	for {
		conn, channel, err := r.acquire(ctx)
		if err != nil {
			return nil // ctx ended
		}
		lctx, cancel := context.WithCancel(ctx)
		lost := make(chan error, 1)
		go func() {
			lost <- r.listen(lctx, conn, channel)
			cancel()
		}()
		err = r.lead(lctx)
		cancel()
		lerr := <-lost
		closeCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		conn.Close(closeCtx) // ends the session: the lock is released
		done()
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		r.cfg.Logger.Warn("outbox relay: lost leadership", "err", lerr)
	}
}

// acquire connects and retries pg_try_advisory_lock every LockRetry until it
// holds the lock of the current schema's outbox, then LISTENs. It returns an
// error only when ctx ends.
func (r *Relay) acquire(ctx context.Context) (*pgx.Conn, string, error) {
	for {
		conn, channel, err := r.tryAcquire(ctx)
		if conn != nil {
			return conn, channel, nil
		}
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.Error("outbox relay: leader election", "err", err)
		}
		if !sleep(ctx, r.cfg.LockRetry) {
			return nil, "", ctx.Err()
		}
	}
}

// tryAcquire opens a connection and polls the lock on it while the
// connection works. It returns the connection once the lock is held, or the
// error that broke the connection (nil, nil when ctx ended).
func (r *Relay) tryAcquire(ctx context.Context) (*pgx.Conn, string, error) {
	conn, err := pgx.Connect(ctx, r.db.URL())
	if err != nil {
		return nil, "", fmt.Errorf("connect: %w", err)
	}
	fail := func(err error) (*pgx.Conn, string, error) {
		closeCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer done()
		conn.Close(closeCtx)
		return nil, "", err
	}
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fail(err)
	}
	key, channel := lockKey(schema), "mercato_outbox."+schema
	for {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
			return fail(fmt.Errorf("advisory lock: %w", err))
		}
		if ok {
			if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
				return fail(fmt.Errorf("listen: %w", err))
			}
			return conn, channel, nil
		}
		if !sleep(ctx, r.cfg.LockRetry) {
			return fail(nil)
		}
	}
}

// listen wakes the relay on every notification until ctx ends or the
// connection fails (which loses the lock); it returns the failure.
func (r *Relay) listen(ctx context.Context, conn *pgx.Conn, channel string) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, healthEvery)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			r.Wake()
		case ctx.Err() != nil:
			return ctx.Err()
		case !conn.PgConn().IsClosed() && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)):
			// No notification for a while: check that the session is alive.
			if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
				return fmt.Errorf("leader connection on %s: %w", channel, err)
			}
		default:
			return fmt.Errorf("leader connection on %s: %w", channel, err)
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// lockKey is the advisory lock key of the outbox relay of one schema, so
// that databases sharing a server (tests, tenants) elect apart.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("mercato.outbox.relay/" + schema))
	return int64(h.Sum64())
}
