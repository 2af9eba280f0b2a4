package sqldb

import "context"

// AtCommit queues rows for write, which writes them all just before tx
// commits: the rows that many units of one transaction insert into one
// table become one statement (a multi-row INSERT) instead of one per unit.
// key names the queue (a value of an unexported type, as for Local); write
// runs once, as a BeforeCommit hook registered when the queue is made, with
// every row queued under key in the order queued. A unit whose writes are
// rolled back takes its rows back. Rows queued after the hook ran (by a
// later BeforeCommit hook) are written at once, under ctx.
//
// The rows are not in the database before the hook runs: a unit that reads
// them back does not see them. write must use the same function for every
// key (the first queue's is the one that runs).
func AtCommit[T any](ctx context.Context, tx *Tx, key any, write func(ctx context.Context, tx *Tx, rows []T) error, rows ...T) error {
	v, err := tx.Local(key, func() (any, error) {
		q := &atCommit[T]{}
		tx.BeforeCommit(func(ctx context.Context) error {
			q.written = true
			if len(q.rows) == 0 {
				return nil
			}
			return write(ctx, tx, q.rows)
		})
		return q, nil
	})
	if err != nil {
		return err
	}
	q := v.(*atCommit[T])
	if q.written {
		return write(ctx, tx, rows)
	}
	n := len(q.rows)
	q.rows = append(q.rows, rows...)
	tx.OnRollback(func() { q.rows = q.rows[:n] })
	return nil
}

// atCommit is AtCommit's queue of one transaction.
type atCommit[T any] struct {
	rows    []T
	written bool // the hook ran
}

// Queued returns the rows queued under key in tx and not yet written,
// oldest first: what a unit must see of what its transaction will insert
// (a rate limit over rows an earlier unit queued). The slice must not be
// changed.
func Queued[T any](tx *Tx, key any) []T {
	if v, ok := tx.locals[key]; ok {
		if q := v.(*atCommit[T]); !q.written {
			return q.rows
		}
	}
	return nil
}

// Unqueue takes the rows queued under key in tx for which drop holds out of
// the queue (an erasure in the same transaction as the units that queued
// its customer's rows); a rollback of the current unit puts them back. Rows
// already written are the caller's to delete.
func Unqueue[T any](tx *Tx, key any, drop func(T) bool) {
	v, ok := tx.locals[key]
	if !ok {
		return
	}
	q := v.(*atCommit[T])
	if q.written || len(q.rows) == 0 {
		return
	}
	old := q.rows
	kept := make([]T, 0, len(old))
	for _, r := range old {
		if !drop(r) {
			kept = append(kept, r)
		}
	}
	q.rows = kept
	tx.OnRollback(func() { q.rows = old })
}
