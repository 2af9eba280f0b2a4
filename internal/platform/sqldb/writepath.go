package sqldb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"mercato/internal/platform/errs"
)

// Unit is one unit of work on the write path: a use case's writes, and
// optionally what must commit when they fail.
type Unit struct {
	// Run does the unit's work in tx. When it returns an error, everything it
	// wrote is rolled back (and only that: other units of a batch commit).
	// Run may be called more than once for one unit (a batch that is run
	// again); only its effect through tx may count. A panic in Run fails the
	// unit alone with an Internal error.
	Run func(tx *Tx) error
	// OnFail, when set, runs after Run failed and its writes were rolled
	// back, in the same transaction, with Run's error. What it writes commits
	// (e.g. the failure's recorded idempotent answer); the caller still gets
	// Run's error. When OnFail fails too, its writes are rolled back and the
	// caller gets both errors.
	OnFail func(tx *Tx, err error) error
	// Prompt asks a group-commit batcher to commit the unit in a small
	// batch of its own, ahead of the ordinary units queued, instead of with
	// the next full batch. It is for tiny units (a few rows, no hot row)
	// whose caller has more to do once they are durable: the payments
	// module's write-ahead of an attempt, committed before the provider is
	// called and followed by the capture's unit. The batcher bounds the
	// lane (a cap on a prompt batch's size, at most one prompt batch
	// between two ordinary ones while ordinary units wait), so a flood of
	// prompt units cannot starve the others; a slow or large unit marked
	// Prompt would delay the ordinary ones all the same. Prompt changes
	// only when the unit commits, never how: the rules of RunBatch hold in
	// a prompt batch too. *DB (a transaction per unit) ignores it.
	Prompt bool
}

// Committer runs units of work in a committed transaction: *DB (one
// transaction per call) and the group-commit batcher (many calls per
// transaction) both are, with the same rules (RunBatch).
type Committer interface {
	// Do runs fn as a Unit without OnFail.
	Do(ctx context.Context, fn func(*Tx) error) error
	// Run runs u and returns after its transaction committed: nil, or u's
	// error (its writes rolled back, OnFail's committed), or the commit's.
	Run(ctx context.Context, u Unit) error
}

// Batch is the work of one write transaction: units, each decided on its
// own, run in order.
type Batch struct {
	Units []Unit
	// Begin, when set, runs first in every transaction the batch is tried
	// in (a batch may be tried more than once), e.g. to read what its
	// units decide on and register a BeforeCommit hook. Its error fails the
	// batch.
	Begin func(tx *Tx) error
	// Guarded skips the optimistic pass: every unit runs after a savepoint
	// from the start (a batch that likely holds a failure).
	Guarded bool
	// Logger receives contained panics (nil: slog.Default()).
	Logger *slog.Logger
}

// BatchResult is what became of a batch.
type BatchResult struct {
	// Outcomes[i] is what the caller of Units[i] is told: nil once committed,
	// the unit's own error, or Err.
	Outcomes []error
	// Err, when set, failed the batch as a whole: nothing of it committed
	// except units taken out earlier for breaking the transaction.
	Err error
	// Rerun reports that the optimistic pass failed and the batch ran again
	// guarded.
	Rerun bool
	// Tries is how many times the batch was tried (1 + conflicts retried).
	Tries int
}

// Run runs u in a transaction of its own, by the rules of RunBatch.
func (db *DB) Run(ctx context.Context, u Unit) error {
	return db.RunBatch(ctx, Batch{Units: []Unit{u}}).Outcomes[0]
}

// Do runs fn as a Unit of its own (see Run).
func (db *DB) Do(ctx context.Context, fn func(*Tx) error) error { return db.Run(ctx, Unit{Run: fn}) }

// RunBatch runs b's units in one transaction; every write path (DB.Run,
// the group-commit batcher, the inbox) goes through it.
//
// Optimistic pass: the units run back to back without savepoints. When
// all succeed, the BeforeCommit hooks run and the transaction commits. When
// one fails, the transaction is rolled back and the batch runs guarded —
// except a lone unit without OnFail, whose failure is simply its outcome.
//
// Guarded pass (also straight away for b.Guarded, or a lone unit with
// OnFail): each unit runs after its own savepoint. A failing unit is rolled
// back to it (OnRollback hooks, Local values and hooks of the unit undone),
// then OnFail runs within the same savepoint scope, rolled back in turn if
// it fails. A unit whose savepoint cannot be rolled back has broken the
// transaction: it is taken out with that error and the rest run again in a
// new transaction.
//
// Conflicts: when a unit, OnFail, Begin, a BeforeCommit hook or the commit
// fails with an error for which IsRetryable holds, the transaction is rolled
// back (releasing its locks) and the whole batch tried again after the
// DB's Retry.Wait, at most Retry.Attempts times; the conflict is never an
// outcome while tries remain. In the last try a unit's conflict is an
// ordinary failure of that unit, wrapped as errs.Unavailable (a 503: the
// caller may try again).
func (db *DB) RunBatch(ctx context.Context, b Batch) BatchResult {
	r := &runner{db: db, ctx: ctx, b: b, log: b.Logger,
		out: make([]error, len(b.Units)), gone: make([]bool, len(b.Units))}
	if r.log == nil {
		r.log = slog.Default()
	}
	retry := db.retry.withDefaults()
	// A lone unit with OnFail and no Begin runs without a savepoint too: when
	// it fails, its transaction is rolled back whole and OnFail runs in a
	// transaction of its own (one statement fewer per call than a savepoint,
	// the common case of one commit per request).
	lone := len(b.Units) == 1 && b.Units[0].OnFail != nil
	guarded := b.Guarded || lone && b.Begin != nil
	for try := 1; ; try++ {
		r.res.Tries = try
		last := try >= retry.Attempts
		var err error
		if !guarded {
			var failed bool
			if failed, err = r.optimistic(last); failed && lone {
				err = r.onFailAlone(r.failure)
			} else if failed {
				guarded, r.res.Rerun = true, true
			}
		}
		if guarded {
			err = r.guarded(last)
		}
		if err != nil && IsRetryable(err) && !last {
			if err = retry.Wait(ctx, try); err == nil {
				continue
			}
		}
		if err != nil {
			if IsRetryable(err) && !errs.Is(err, errs.Unavailable) {
				err = lostEveryTry(err)
			}
			r.res.Err = err
			for i := range r.out {
				if !r.gone[i] {
					r.out[i] = err
				}
			}
		}
		r.res.Outcomes = r.out
		return r.res
	}
}

// runner is one RunBatch call.
type runner struct {
	db   *DB
	ctx  context.Context
	b    Batch
	log  *slog.Logger
	out  []error
	gone []bool // taken out for breaking the transaction; out is final
	res  BatchResult

	failure error // the failing unit's error of the last optimistic pass
}

// onFailAlone runs the lone unit's OnFail in a transaction of its own after
// its Run failed with runErr (and was rolled back with its transaction).
func (r *runner) onFailAlone(runErr error) error {
	u := r.b.Units[0]
	tx, err := r.begin()
	if err != nil {
		return err
	}
	if ferr := r.call("sqldb.OnFail", func(tx *Tx) error { return u.OnFail(tx, runErr) }, tx); ferr != nil {
		tx.Rollback()
		if IsRetryable(ferr) {
			return ferr
		}
		r.out[0] = errors.Join(runErr, ferr)
		return nil
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqldb: commit: %w", err)
	}
	r.out[0] = runErr
	return nil
}

// begin starts a try's transaction and runs the batch's Begin in it.
func (r *runner) begin() (*Tx, error) {
	tx, err := r.db.Begin(r.ctx)
	if err != nil {
		return nil, err
	}
	tx.Try = max(r.res.Tries, 1)
	if r.b.Begin != nil {
		if err := r.call("sqldb.Begin", r.b.Begin, tx); err != nil {
			tx.Rollback()
			return nil, err
		}
	}
	return tx, nil
}

// optimistic tries the batch without savepoints. failed reports a unit that
// failed (nothing kept, no outcome set): the batch must run guarded. err is
// a failure of the batch (or a conflict to retry).
func (r *runner) optimistic(last bool) (failed bool, err error) {
	tx, err := r.begin()
	if err != nil {
		return false, err
	}
	for i, u := range r.b.Units {
		if err := r.call("sqldb.Unit", u.Run, tx); err != nil {
			tx.Rollback()
			if IsRetryable(err) {
				if !last {
					return false, err
				}
				err = lostEveryTry(err)
			}
			if len(r.b.Units) == 1 && u.OnFail == nil {
				r.out[i] = err
				return false, nil
			}
			r.failure = err
			return true, nil
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("sqldb: commit: %w", err)
	}
	for i := range r.out {
		r.out[i] = nil
	}
	return false, nil
}

// lostEveryTry marks a conflict that every try of a batch lost: the caller
// may try again later (Unavailable, a 503), it is not the server failing
// (a 500). IsRetryable still holds.
func lostEveryTry(err error) error {
	return errs.E("sqldb.Unit", errs.Unavailable, "the database stayed too contended for this request; try again", err)
}

// verdict is what a guarded unit did to its transaction.
type verdict int

const (
	decided  verdict = iota // the outcome is set; the transaction goes on
	conflict                // a conflict to retry: the try is over
	broken                  // the unit broke the transaction: take it out
)

// guarded tries the batch with a savepoint per unit, taking out units that
// break the transaction until one try runs through.
func (r *runner) guarded(last bool) error {
	for {
		live := false
		for i := range r.gone {
			live = live || !r.gone[i]
		}
		if !live && len(r.b.Units) > 0 {
			return nil
		}
		tx, err := r.begin()
		if err != nil {
			return err
		}
		again := false
		for i, u := range r.b.Units {
			if r.gone[i] {
				continue
			}
			v, out := r.unit(tx, u, last)
			if v == conflict {
				tx.Rollback()
				return out
			}
			r.out[i] = out
			if v == broken {
				tx.Rollback()
				r.gone[i], again = true, true
				break
			}
		}
		if again {
			continue
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqldb: commit: %w", err)
		}
		return nil
	}
}

// unit runs u after a savepoint of tx (see RunBatch).
func (r *runner) unit(tx *Tx, u Unit, last bool) (verdict, error) {
	if _, err := tx.ExecContext(r.ctx, "SAVEPOINT unit"); err != nil {
		return broken, fmt.Errorf("%w: %w", ErrSavepoint, err)
	}
	m := tx.mark()
	err := r.call("sqldb.Unit", u.Run, tx)
	if err == nil {
		return decided, nil
	}
	if IsRetryable(err) {
		if !last {
			return conflict, err
		}
		err = lostEveryTry(err)
	}
	if rerr := r.rollbackTo(tx, m); rerr != nil {
		return broken, errors.Join(err, rerr)
	}
	if u.OnFail == nil {
		return decided, err
	}
	m = tx.mark()
	ferr := r.call("sqldb.OnFail", func(tx *Tx) error { return u.OnFail(tx, err) }, tx)
	if ferr == nil {
		return decided, err
	}
	if IsRetryable(ferr) && !last {
		return conflict, ferr
	}
	if rerr := r.rollbackTo(tx, m); rerr != nil {
		return broken, errors.Join(err, ferr, rerr)
	}
	return decided, errors.Join(err, ferr)
}

// rollbackTo undoes what tx did since the unit's savepoint and since m.
func (r *runner) rollbackTo(tx *Tx, m mark) error {
	if _, err := tx.ExecContext(r.ctx, "ROLLBACK TO SAVEPOINT unit"); err != nil {
		return fmt.Errorf("%w: rollback to: %w", ErrSavepoint, err)
	}
	return tx.rewind(m)
}

// call runs f, turning a panic into an Internal error (logged with its stack).
func (r *runner) call(op string, f func(*Tx) error, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error(op+": panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = errs.E(op, errs.Internal, fmt.Errorf("panic: %v", p))
		}
	}()
	return f(tx)
}

// Retry says how a batch that lost a conflict is tried again.
type Retry struct {
	// Attempts is the most times one batch is tried (default 6).
	Attempts int
	// Wait waits before try n+1 after try n lost a conflict, returning
	// early with ctx's error. The default waits a random time in [d/2, d],
	// d = 2 ms·2^(n-1) capped at 250 ms. Tests inject one that counts.
	Wait func(ctx context.Context, n int) error
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 6
	}
	if r.Wait == nil {
		r.Wait = backoff
	}
	return r
}

func backoff(ctx context.Context, n int) error {
	d := 250 * time.Millisecond
	if n <= 7 {
		d = min(d, 2*time.Millisecond<<(n-1))
	}
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetRetry replaces how db retries batches that lost a conflict. Call it
// before any write (not safe for use concurrent with writes).
func (db *DB) SetRetry(r Retry) { db.retry = r }

// ErrConflict, wrapped in an error that a unit or hook returns, asks for the
// batch to be tried again: e.g. a merged conditional update that matched no
// row because another transaction changed it since it was read.
var ErrConflict = errors.New("sqldb: conflict; try again")

// IsRetryable reports whether err means the transaction lost a conflict and
// may succeed when run again: PostgreSQL serialization failure (40001) or
// deadlock (40P01), or an error wrapping ErrConflict.
func IsRetryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01") {
		return true
	}
	return errors.Is(err, ErrConflict)
}
