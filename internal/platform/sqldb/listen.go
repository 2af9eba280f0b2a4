package sqldb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// NotifySQL is the statement that sends payload ($1) on the channel of name
// in the current schema (see Listen), inside the caller's transaction:
// PostgreSQL delivers it when the transaction commits, not before, and not
// at all when it rolls back.
func NotifySQL(name string) string {
	return `SELECT pg_notify('mercato_` + name + `.' || current_schema(), $1)`
}

// Listener receives the notifications sent with NotifySQL(name) by any
// process on the same PostgreSQL database and schema.
type Listener struct {
	// On is called with each notification's payload, in order.
	On func(payload string)
	// Lost is called when the listening connection was down, so that
	// notifications may have been missed (at start, before the first LISTEN
	// succeeded, and after every reconnection); Up when it listens again.
	// The caller must not trust state that notifications keep current while
	// it is down.
	Lost, Up func()
	// Retry is the wait between connection attempts (default 1s).
	Retry time.Duration
}

// Listen runs l on the channel of name until ctx ends. It returns at once
// on SQLite, where one process owns the database and has nothing to hear.
func (db *DB) Listen(ctx context.Context, name string, l Listener) error {
	if db.engine != Postgres {
		return nil
	}
	if l.Retry <= 0 {
		l.Retry = time.Second
	}
	for {
		if l.Lost != nil {
			l.Lost()
		}
		err := db.listenOnce(ctx, name, l)
		if ctx.Err() != nil {
			return nil
		}
		_ = err // reconnect; the caller learns of the gap through Lost
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.Retry):
		}
	}
}

func (db *DB) listenOnce(ctx context.Context, name string, l Listener) error {
	conn, err := pgx.Connect(ctx, db.url)
	if err != nil {
		return fmt.Errorf("listen: connect: %w", err)
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
	channel := "mercato_" + name + "." + schema
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if l.Up != nil {
		l.Up()
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			l.On(n.Payload)
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
