package promotions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// counterRow is a promotion's counter (promotions_counters) as the units of
// one write transaction share it (docs/writepath.md, "merging a hot row"):
// the first unit to touch it reads it — FOR UPDATE on PostgreSQL, so a
// concurrent batch waits for this one's commit and then reads the new
// counts — and registers one BeforeCommit hook; each unit then decides on
// its own from the counts in memory and adds its change to the deltas
// (given back by OnRollback if the unit fails later); the hook writes the
// transaction's net change in one conditional UPDATE. A popular automatic
// promotion thus costs one UPDATE per batch instead of one per order, and
// the condition in the UPDATE is still the last word on the limits.
type counterRow struct {
	id              string
	uses, spent     int64         // as read
	maxUses, budget sql.NullInt64 // the limits (NULL: none)
	currency        string        // the budget's
	dUses, dSpent   int64         // the transaction's change so far
}

type counterKey struct{ id string }

// counter returns promotion id's shared counter row in tx. NotFound when
// the promotion has no counter.
func (s *Service) counter(ctx context.Context, tx *sqldb.Tx, id string) (*counterRow, error) {
	v, err := tx.Local(counterKey{id}, func() (any, error) {
		q := `SELECT uses, spent, max_uses, budget, currency FROM promotions_counters WHERE id = $1`
		if tx.Engine() == sqldb.Postgres {
			q += ` FOR UPDATE`
		}
		c := &counterRow{id: id}
		err := tx.QueryRowContext(ctx, q, id).Scan(&c.uses, &c.spent, &c.maxUses, &c.budget, &c.currency)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errNoPromotion
		}
		if err != nil {
			return nil, errs.E("promotions.counter", errs.Internal, err)
		}
		tx.BeforeCommit(func(ctx context.Context) error { return s.flush(ctx, tx, c) })
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*counterRow), nil
}

// flush writes c's net change with one conditional UPDATE; a row that
// changed since it was read (which the lock prevents on PostgreSQL and
// the single writer on SQLite) is sqldb.ErrConflict: the batch runs again.
func (s *Service) flush(ctx context.Context, tx *sqldb.Tx, c *counterRow) error {
	if c.dUses == 0 && c.dSpent == 0 {
		return nil
	}
	if s.onFlush != nil {
		s.onFlush(c.id, c.dUses, c.dSpent)
	}
	res, err := tx.ExecContext(ctx, `UPDATE promotions_counters SET uses = uses + $2, spent = spent + $3
		WHERE id = $1 AND uses + $2 >= 0 AND spent + $3 >= 0
		AND (max_uses IS NULL OR uses + $2 <= max_uses) AND (budget IS NULL OR spent + $3 <= budget)`,
		c.id, c.dUses, c.dSpent)
	if err != nil {
		return errs.E("promotions.flush", errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return errs.E("promotions.flush", errs.Internal, err)
	} else if n != 1 {
		return fmt.Errorf("promotions: the counter of %s changed since it was read: %w", c.id, sqldb.ErrConflict)
	}
	return nil
}

// take counts one use of c spending amount in currency in the unit of tx,
// or reports false when a limit would be exceeded.
func (c *counterRow) take(tx *sqldb.Tx, amount int64, currency string) bool {
	if c.maxUses.Valid && c.uses+c.dUses+1 > c.maxUses.Int64 {
		return false
	}
	if c.budget.Valid && (c.currency != currency || c.spent+c.dSpent+amount > c.budget.Int64) {
		return false
	}
	c.add(tx, 1, amount)
	return true
}

// add changes c's deltas in the unit of tx (undone if the unit fails).
func (c *counterRow) add(tx *sqldb.Tx, uses, spent int64) {
	c.dUses += uses
	c.dSpent += spent
	tx.OnRollback(func() { c.dUses -= uses; c.dSpent -= spent })
}

// setLimits sets c's limits in the unit of tx, in memory and in the row
// (locked by this transaction), when what was used — counting the
// transaction's own changes — fits them; false when it does not.
func (c *counterRow) setLimits(ctx context.Context, tx *sqldb.Tx, maxUses, budget sql.NullInt64, currency string) (bool, error) {
	uses, spent := c.uses+c.dUses, c.spent+c.dSpent
	if maxUses.Valid && uses > maxUses.Int64 || budget.Valid && spent > budget.Int64 {
		return false, nil
	}
	if budget.Valid && spent > 0 && c.currency != "" && c.currency != currency {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE promotions_counters SET max_uses = $2, budget = $3, currency = $4 WHERE id = $1`,
		c.id, maxUses, budget, currency); err != nil {
		return false, errs.E("promotions.setLimits", errs.Internal, err)
	}
	old := *c
	c.maxUses, c.budget, c.currency = maxUses, budget, currency
	tx.OnRollback(func() { c.maxUses, c.budget, c.currency = old.maxUses, old.budget, old.currency })
	return true, nil
}
