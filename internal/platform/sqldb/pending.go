package sqldb

import "context"

// Pending gathers the rows that the units of one transaction write to one
// table, so that a single BeforeCommit hook writes them all (one multi-row
// INSERT per transaction instead of one statement per unit: what a batch of
// units or of consumed events costs the writer). A unit whose writes are
// rolled back takes its rows back; a row added after the hook ran (by a
// later BeforeCommit hook) is flushed at once. The rows are not in the
// database before the hook: a unit that must see them reads Rows.
type Pending[T any] struct {
	flush func(ctx context.Context, tx *Tx, rows []T) error
}

// NewPending returns a Pending whose rows flush writes (in the order added;
// flush is not called with none).
func NewPending[T any](flush func(ctx context.Context, tx *Tx, rows []T) error) *Pending[T] {
	return &Pending[T]{flush: flush}
}

type pendingRows[T any] struct {
	rows    []T
	flushed bool // the hook ran: later rows are written at once
}

func (p *Pending[T]) queue(tx *Tx) *pendingRows[T] {
	v, _ := tx.Local(p, func() (any, error) {
		q := &pendingRows[T]{}
		tx.BeforeCommit(func(ctx context.Context) error {
			q.flushed = true
			if len(q.rows) == 0 {
				return nil
			}
			return p.flush(ctx, tx, q.rows)
		})
		return q, nil
	})
	return v.(*pendingRows[T])
}

// Add queues rows in tx.
func (p *Pending[T]) Add(ctx context.Context, tx *Tx, rows ...T) error {
	if len(rows) == 0 {
		return nil
	}
	q := p.queue(tx)
	if q.flushed {
		return p.flush(ctx, tx, rows)
	}
	n := len(q.rows)
	q.rows = append(q.rows, rows...)
	tx.OnRollback(func() { q.rows = q.rows[:n] })
	return nil
}

// Remove takes the queued rows for which drop holds out of tx's queue (an
// erasure in the same transaction as their unit); a rollback of the
// current unit puts them back. Rows already written are the caller's to
// delete.
func (p *Pending[T]) Remove(tx *Tx, drop func(T) bool) {
	q := p.queue(tx)
	if q.flushed || len(q.rows) == 0 {
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

// Rows returns the rows queued in tx and not yet written, oldest first. The
// slice must not be changed.
func (p *Pending[T]) Rows(tx *Tx) []T {
	if v, ok := tx.locals[p]; ok {
		if q := v.(*pendingRows[T]); !q.flushed {
			return q.rows
		}
	}
	return nil
}
