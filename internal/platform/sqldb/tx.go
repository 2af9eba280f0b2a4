package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"mercato/internal/platform/errs"
)

// Tx is a database transaction with the fixed time it runs at, and the state
// the units of one batch share: Local values and the BeforeCommit,
// AfterCommit and OnRollback hooks. A Tx is not safe for concurrent use.
type Tx struct {
	*sql.Tx
	// Now is the one time the whole transaction runs at (UTC).
	Now time.Time
	// Try is which try of its batch this transaction is (1 the first; a
	// batch that lost a conflict runs again with Try 2, …). A unit that
	// reads optimistically may lock what it reads on a later try, so that a
	// contended batch waits instead of losing again.
	Try    int
	engine Engine
	ctx    context.Context // what the transaction began with; BeforeCommit hooks get it
	sp     int
	after  []func()
	before []func(context.Context) error
	undo   []func()
	locals map[any]any
	made   []any       // keys of locals in the order they were made
	stats  *writeStats // the DB's counters (nil for read-only transactions)
	began  time.Time
}

// Engine reports the engine tx runs on, for the few statements that differ.
func (tx *Tx) Engine() Engine { return tx.engine }

// AfterCommit registers f to run after tx commits (not if it rolls back),
// e.g. to wake the outbox relay. f must not block. Registered inside a unit
// or Savepoint whose writes are rolled back, f is dropped with them.
func (tx *Tx) AfterCommit(f func()) { tx.after = append(tx.after, f) }

// BeforeCommit registers f to run once, after the last unit of the
// transaction and before COMMIT, in the order registered; f may write
// through tx (the merged update of a hot row). An error from f — or a
// panic, reported as an Internal error — fails the whole transaction: it is
// rolled back and every unit of its batch gets the error (an error for
// which IsRetryable holds makes the batch run again instead). Registered
// inside a unit or Savepoint whose writes are rolled back, f is dropped.
func (tx *Tx) BeforeCommit(f func(ctx context.Context) error) { tx.before = append(tx.before, f) }

// OnRollback registers f to run when the writes of the current unit (or of
// the innermost Savepoint) are rolled back while the transaction goes on,
// so that the unit's share of state kept in a Local value is taken back.
// Hooks run in reverse order of registration, before the unit's OnFail. f
// never runs when the whole transaction rolls back: its Local values go
// with it. A panic in f breaks the transaction (see Unit).
func (tx *Tx) OnRollback(f func()) { tx.undo = append(tx.undo, f) }

// Local returns the value tx holds under key, making it with init on first
// use; the units of one transaction share it (the in-memory count of a hot
// row). A value made inside a unit or Savepoint whose writes are rolled back
// is forgotten with them, together with the hooks registered meanwhile, so
// the next unit makes it afresh. When init fails nothing is kept and its
// error is returned. Keys should be values of an unexported type, as for
// context keys.
func (tx *Tx) Local(key any, init func() (any, error)) (any, error) {
	if v, ok := tx.locals[key]; ok {
		return v, nil
	}
	v, err := init()
	if err != nil {
		return nil, err
	}
	if tx.locals == nil {
		tx.locals = map[any]any{}
	}
	tx.locals[key] = v
	tx.made = append(tx.made, key)
	return v, nil
}

// mark is how much per-transaction state a Tx held at a point in time.
type mark struct{ after, before, undo, made int }

func (tx *Tx) mark() mark { return mark{len(tx.after), len(tx.before), len(tx.undo), len(tx.made)} }

// rewind forgets what was registered since m, running its OnRollback hooks
// newest first. A panicking hook is returned as an Internal error.
func (tx *Tx) rewind(m mark) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errs.E("sqldb.OnRollback", errs.Internal, fmt.Errorf("panic: %v", p))
		}
		for _, k := range tx.made[m.made:] {
			delete(tx.locals, k)
		}
		tx.after, tx.before, tx.undo, tx.made = tx.after[:m.after], tx.before[:m.before], tx.undo[:m.undo], tx.made[:m.made]
	}()
	for i := len(tx.undo) - 1; i >= m.undo; i-- {
		tx.undo[i]()
	}
	return nil
}

// ErrSavepoint marks a failure to set, release or roll back a savepoint: the
// transaction itself is broken and must be rolled back.
var ErrSavepoint = errors.New("sqldb: savepoint failed")

// Savepoint runs fn inside a savepoint: when fn returns an error, everything
// it wrote is rolled back (its OnRollback hooks run, its Local values and
// other hooks are forgotten) and the transaction stays usable; the error is
// returned. A panic in fn propagates and dooms the whole transaction. Units
// on the write path need no Savepoint of their own: RunBatch gives each the
// rollback it needs.
func (tx *Tx) Savepoint(ctx context.Context, fn func() error) error {
	tx.sp++
	name := fmt.Sprintf("sp%d", tx.sp)
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return fmt.Errorf("%w: %w", ErrSavepoint, err)
	}
	m := tx.mark()
	if err := fn(); err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+name); rerr != nil {
			return errors.Join(err, fmt.Errorf("%w: rollback to: %w", ErrSavepoint, rerr))
		}
		if rerr := tx.rewind(m); rerr != nil {
			return errors.Join(err, fmt.Errorf("%w: %w", ErrSavepoint, rerr))
		}
		if _, rerr := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name); rerr != nil {
			return errors.Join(err, fmt.Errorf("%w: release: %w", ErrSavepoint, rerr))
		}
		return err
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name); err != nil {
		return fmt.Errorf("%w: release: %w", ErrSavepoint, err)
	}
	return nil
}

// Begin starts a write transaction. Callers must Commit or Rollback it;
// prefer Run (or InTx).
func (db *DB) Begin(ctx context.Context) (*Tx, error) {
	t, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqldb: begin: %w", err)
	}
	return &Tx{Tx: t, Now: db.Now(), Try: 1, engine: db.engine, ctx: ctx, stats: &db.stats, began: time.Now()}, nil
}

// Commit runs tx's BeforeCommit hooks, commits, and then runs its
// AfterCommit functions. When a hook fails, tx is rolled back and the hook's
// error returned.
func (tx *Tx) Commit() error {
	for i := 0; i < len(tx.before); i++ { // a hook may register another
		if err := tx.runBefore(tx.before[i]); err != nil {
			tx.Rollback()
			return err
		}
	}
	err := tx.Tx.Commit()
	tx.stats.ended(tx.began, err == nil)
	if err != nil {
		return err
	}
	for _, f := range tx.after {
		f()
	}
	return nil
}

// Rollback rolls tx back (see sql.Tx.Rollback).
func (tx *Tx) Rollback() error {
	err := tx.Tx.Rollback()
	if !errors.Is(err, sql.ErrTxDone) {
		tx.stats.ended(tx.began, false)
	}
	return err
}

func (tx *Tx) runBefore(f func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			slog.Error("sqldb: BeforeCommit hook panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = errs.E("sqldb.BeforeCommit", errs.Internal, fmt.Errorf("panic: %v", p))
		}
	}()
	return f(tx.ctx)
}

// ReadTx runs fn in a read-only transaction on the reader pool, for use
// cases whose reads take a *Tx (a quote reads the catalogue, promotions and
// rate tables through the same contracts checkout uses inside its unit)
// but write nothing: no writer connection, no place on the write path.
// The transaction is always rolled back; a write in it fails; its
// AfterCommit and BeforeCommit hooks never run.
func (db *DB) ReadTx(ctx context.Context, fn func(*Tx) error) error {
	t, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqldb: begin read: %w", err)
	}
	defer t.Rollback()
	return fn(&Tx{Tx: t, Now: db.Now(), Try: 1, engine: db.engine, ctx: ctx})
}

// InTx runs fn in a write transaction and commits it when fn returns nil;
// otherwise (or on panic) it rolls back and returns fn's error. It neither
// retries nor contains panics: use-case writes go through Run (or a
// batcher) instead; InTx is for maintenance work that wants a plain
// transaction.
func (db *DB) InTx(ctx context.Context, fn func(*Tx) error) (err error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqldb: commit: %w", err)
	}
	return nil
}

// Placeholders returns "$from, $from+1, …" for n parameters: the list of an
// `IN (…)` whose values are passed as arguments (never spliced into SQL).
func Placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(from+i))
	}
	return b.String()
}

// Args returns ss as query arguments.
func Args(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
