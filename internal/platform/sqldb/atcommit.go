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
