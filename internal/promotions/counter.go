package promotions

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// counterRow is a promotion's counter (promotions_counters) and the
// promotion's version, status and per-customer limit as the units of one
// write transaction share them (docs/writepath.md, "merging a hot row"):
// the first unit to touch the promotion reads them — without a lock, so
// that two batches redeeming one coupon do not wait on each other for
// their whole length; from a batch's third try FOR UPDATE on PostgreSQL,
// so that a batch that lost twice waits instead of losing again — and each
// unit then decides on its own from the counts in memory plus what the
// units before it took, adding its change to the deltas (given back by
// OnRollback if the unit fails later). The transaction's one flush hook
// writes each promotion's net change in one conditional UPDATE whose WHERE
// holds the limits against the row as it is then: a count read stale
// (another batch committed meanwhile) makes it match nothing, the batch
// runs again (sqldb.ErrConflict) and reads afresh. Never over-redeemed:
// the condition in the UPDATE has the last word.
type counterRow struct {
	id              string
	version         int64         // the promotion's, as this transaction sees it
	status          string        // the promotion's
	perCustomer     sql.NullInt64 // the promotion's per-customer limit
	uses, spent     int64         // as read
	maxUses, budget sql.NullInt64 // the limits (NULL: none)
	currency        string        // the budget's
	dUses, dSpent   int64         // the transaction's change so far
	uncounted       int           // the transaction's redemptions while not counted
}

// counted reports whether c's row counts the promotion's uses: only while
// the promotion has a limit (total uses, a budget or per customer). A
// promotion without one — the common coupon — is redeemed without writing
// its counter or its customers' uses, so that the checkouts of two batches
// do not wait on that one row until commit: its uses and the discount it
// gave are its live redemptions (promotions_redemptions), which a limit set
// later counts into the row (recount). On PostgreSQL the flush holds such a
// promotion's row FOR SHARE, so that a change of it waits for the batches
// redeeming it and then counts their rows.
func (c *counterRow) counted() bool { return c.maxUses.Valid || c.budget.Valid || c.perCustomer.Valid }

// usesRow is one customer's uses of one promotion
// (promotions_customer_uses) as the units of one transaction share them:
// the uses are read (same locking as counterRow) only where a
// per-customer limit needs them; d is the transaction's change, written by
// the flush in one upsert per promotion for all its customers.
type usesRow struct {
	promotion, customer string
	read                bool
	mine                int64 // as read (when read)
	d                   int64
}

// pending is what a transaction redeems: the rows its flush writes.
type pending struct {
	counters    []*counterRow
	uses        []*usesRow
	redemptions []redemptionRow // inserted by the flush in one statement
	live        map[liveKey]bool
}

type (
	counterKey struct{ id string }
	usesKey    struct{ promotion, customer string }
	pendingKey struct{}
)

// pending returns tx's pending redemptions, registering the one flush hook
// on first use.
func (s *Service) pending(tx *sqldb.Tx) *pending {
	v, _ := tx.Local(pendingKey{}, func() (any, error) {
		p := &pending{live: map[liveKey]bool{}}
		tx.BeforeCommit(func(ctx context.Context) error { return s.flush(ctx, tx, p) })
		return p, nil
	})
	return v.(*pending)
}

// lockClause is what a read of a redeemed row adds: FOR UPDATE on
// PostgreSQL from the batch's third try.
func lockClause(tx *sqldb.Tx) string {
	if tx.Engine() == sqldb.Postgres && tx.Try >= 3 {
		return ` FOR UPDATE`
	}
	return ""
}

// counter returns promotion id's shared counter row in tx. NotFound when
// the promotion has no counter.
func (s *Service) counter(ctx context.Context, tx *sqldb.Tx, id string) (*counterRow, error) {
	v, err := tx.Local(counterKey{id}, func() (any, error) {
		c := &counterRow{id: id}
		err := tx.QueryRowContext(ctx, `SELECT p.version, p.status, p.per_customer,
			c.uses, c.spent, c.max_uses, c.budget, c.currency
			FROM promotions_counters c JOIN promotions_promotions p ON p.id = c.id WHERE c.id = $1`+lockClause(tx), id).
			Scan(&c.version, &c.status, &c.perCustomer, &c.uses, &c.spent, &c.maxUses, &c.budget, &c.currency)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errNoPromotion
		}
		if err != nil {
			return nil, errs.E("promotions.counter", errs.Internal, err)
		}
		p := s.pending(tx)
		p.counters = append(p.counters, c)
		tx.OnRollback(func() { p.counters = slices.DeleteFunc(p.counters, func(x *counterRow) bool { return x == c }) })
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*counterRow), nil
}

// customerUses returns customer's shared uses row of promotion id in tx,
// its uses read when read is set (and not read yet).
func (s *Service) customerUses(ctx context.Context, tx *sqldb.Tx, id, customer string, read bool) (*usesRow, error) {
	v, _ := tx.Local(usesKey{id, customer}, func() (any, error) {
		u := &usesRow{promotion: id, customer: customer}
		p := s.pending(tx)
		p.uses = append(p.uses, u)
		tx.OnRollback(func() { p.uses = slices.DeleteFunc(p.uses, func(x *usesRow) bool { return x == u }) })
		return u, nil
	})
	u := v.(*usesRow)
	if read && !u.read {
		err := tx.QueryRowContext(ctx, `SELECT uses FROM promotions_customer_uses WHERE promotion_id = $1 AND customer_id = $2`+
			lockClause(tx), id, customer).Scan(&u.mine)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, errs.E("promotions.customerUses", errs.Internal, err)
		}
		u.read = true
	}
	return u, nil
}

// usesLeft is how many more uses c allows customer in tx (nil: no
// limit), counting the transaction's own.
func (s *Service) usesLeft(ctx context.Context, tx *sqldb.Tx, c *counterRow, customer string) (*int64, error) {
	var left *int64
	if c.maxUses.Valid {
		n := max(c.maxUses.Int64-c.uses-c.dUses, 0)
		left = &n
	}
	if c.perCustomer.Valid {
		n := int64(0)
		if customer != "" {
			u, err := s.customerUses(ctx, tx, c.id, customer, true)
			if err != nil {
				return nil, err
			}
			n = max(c.perCustomer.Int64-u.mine-u.d, 0)
		}
		if left == nil || n < *left {
			left = &n
		}
	}
	return left, nil
}

// flush writes the transaction's redemptions, promotions in ID order (the
// lock order): each promotion's net change of its counter in one
// conditional UPDATE, then its customers' uses in one upsert that matches
// no row at a per-customer limit. A row that no longer allows the change
// (another batch committed since it was read) is sqldb.ErrConflict: the
// batch runs again.
func (s *Service) flush(ctx context.Context, tx *sqldb.Tx, p *pending) error {
	slices.SortFunc(p.counters, func(a, b *counterRow) int { return cmp.Compare(a.id, b.id) })
	slices.SortFunc(p.uses, func(a, b *usesRow) int {
		return cmp.Or(cmp.Compare(a.promotion, b.promotion), cmp.Compare(a.customer, b.customer))
	})
	// The redemption rows first: they lock no shared row, so the counters'
	// locks are not held while they are written.
	if err := s.flushRedemptions(ctx, tx, p); err != nil {
		return err
	}
	for _, c := range p.counters {
		if err := s.flushCounter(ctx, tx, c); err != nil {
			return err
		}
		var mine []*usesRow
		for _, u := range p.uses {
			if u.promotion == c.id && u.d != 0 {
				mine = append(mine, u)
			}
		}
		if err := flushUses(ctx, tx, c, mine); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) flushCounter(ctx context.Context, tx *sqldb.Tx, c *counterRow) error {
	if c.uncounted > 0 && tx.Engine() == sqldb.Postgres {
		// Redeemed uncounted: the version priced must still be the current
		// one, and stay so until COMMIT (a change waits for the lock).
		var version int64
		var status string
		if err := tx.QueryRowContext(ctx, `SELECT version, status FROM promotions_promotions WHERE id = $1 FOR SHARE`, c.id).
			Scan(&version, &status); err != nil {
			return errs.E("promotions.flush", errs.Internal, err)
		}
		if version != c.version || status != c.status {
			return fmt.Errorf("promotions: %s changed since the batch read it: %w", c.id, sqldb.ErrConflict)
		}
	}
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
		return fmt.Errorf("promotions: the counter of %s no longer allows the batch's redemptions: %w", c.id, sqldb.ErrConflict)
	}
	return nil
}

// flushUses adds each of us's uses of promotion c in one upsert (the
// redemptions only add: a release takes its use back on its own).
// Counted also without a per-customer limit, so that one set later holds
// the uses made before it.
func flushUses(ctx context.Context, tx *sqldb.Tx, c *counterRow, us []*usesRow) error {
	if len(us) == 0 {
		return nil
	}
	limit := any(nil)
	if c.perCustomer.Valid {
		limit = c.perCustomer.Int64
	}
	var b strings.Builder
	args := []any{c.id, limit}
	for i, u := range us {
		if i > 0 {
			b.WriteString(", ")
		}
		n := len(args)
		b.WriteString("($1, $" + strconv.Itoa(n+1) + ", $" + strconv.Itoa(n+2) + ")")
		args = append(args, u.customer, u.d)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO promotions_customer_uses (promotion_id, customer_id, uses)
		VALUES `+b.String()+` ON CONFLICT (promotion_id, customer_id)
		DO UPDATE SET uses = promotions_customer_uses.uses + excluded.uses
		WHERE promotions_customer_uses.uses + excluded.uses <= COALESCE($2, promotions_customer_uses.uses + excluded.uses)`,
		args...)
	if err != nil {
		return errs.E("promotions.flush", errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return errs.E("promotions.flush", errs.Internal, err)
	} else if n != int64(len(us)) {
		return fmt.Errorf("promotions: a customer's uses of %s no longer allow the batch's redemptions: %w", c.id, sqldb.ErrConflict)
	}
	return nil
}

// take counts one use of c by customer ("" a guest) spending amount in
// currency in the unit of tx, or reports false when a limit would be
// exceeded.
func (s *Service) take(ctx context.Context, tx *sqldb.Tx, c *counterRow, customer string, amount int64, currency string) (bool, error) {
	if !c.counted() {
		c.uncounted++
		tx.OnRollback(func() { c.uncounted-- })
		return true, nil
	}
	if c.maxUses.Valid && c.uses+c.dUses+1 > c.maxUses.Int64 {
		return false, nil
	}
	if c.budget.Valid && (c.currency != currency || c.spent+c.dSpent+amount > c.budget.Int64) {
		return false, nil
	}
	if c.perCustomer.Valid && customer == "" {
		return false, nil
	}
	if customer != "" {
		u, err := s.customerUses(ctx, tx, c.id, customer, c.perCustomer.Valid)
		if err != nil {
			return false, err
		}
		if c.perCustomer.Valid && u.mine+u.d+1 > c.perCustomer.Int64 {
			return false, nil
		}
		u.d++
		tx.OnRollback(func() { u.d-- })
	}
	c.add(tx, 1, amount)
	return true, nil
}

// add changes c's deltas in the unit of tx (undone if the unit fails).
func (c *counterRow) add(tx *sqldb.Tx, uses, spent int64) {
	c.dUses += uses
	c.dSpent += spent
	tx.OnRollback(func() { c.dUses -= uses; c.dSpent -= spent })
}

// lock re-reads c's counts FOR UPDATE on PostgreSQL (where they were read
// without a lock), for a change of the limits that must judge them fresh;
// the transaction's deltas are kept. A no-op on SQLite, whose one writer
// makes every read in a write transaction fresh.
func (c *counterRow) lock(ctx context.Context, tx *sqldb.Tx) error {
	if tx.Engine() != sqldb.Postgres {
		return nil
	}
	var uses, spent int64
	if err := tx.QueryRowContext(ctx, `SELECT uses, spent FROM promotions_counters WHERE id = $1 FOR UPDATE`, c.id).
		Scan(&uses, &spent); err != nil {
		return errs.E("promotions.counter", errs.Internal, err)
	}
	old := *c
	c.uses, c.spent = uses, spent
	tx.OnRollback(func() { c.uses, c.spent = old.uses, old.spent })
	return nil
}

// setLimits sets c's limits in the unit of tx, in memory and in the row
// (locked by this transaction), when what was used — counting the
// transaction's own changes — fits them; false when it does not.
func (c *counterRow) setLimits(ctx context.Context, tx *sqldb.Tx, maxUses, budget sql.NullInt64, currency string) (bool, error) {
	if err := c.lock(ctx, tx); err != nil {
		return false, err
	}
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

// changedTx records in tx that promotion after was written by the unit:
// the transaction's shared view of it follows (a later unit of the batch
// redeems the new version), and the active set is dropped from the cache
// of every process when tx commits.
func (s *Service) changedTx(ctx context.Context, tx *sqldb.Tx, after Promotion) error {
	c, err := s.counter(ctx, tx, after.ID)
	if err != nil {
		return err
	}
	old := *c
	c.version, c.status = after.Version, after.Status
	c.perCustomer = sql.NullInt64{}
	if l := after.Limits.PerCustomer; l != nil {
		c.perCustomer = sql.NullInt64{Int64: *l, Valid: true}
	}
	tx.OnRollback(func() { c.version, c.status, c.perCustomer = old.version, old.status, old.perCustomer })
	ch := s.changes(tx)
	*ch++
	tx.OnRollback(func() { *ch-- })
	return s.cache.ChangedTx(ctx, tx)
}

type changesKey struct{}

// changes counts the units of tx that wrote promotions (and were not
// rolled back): while there are any, the transaction reads the active set
// from its own rows, not from the cache.
func (s *Service) changes(tx *sqldb.Tx) *int {
	v, _ := tx.Local(changesKey{}, func() (any, error) { return new(int), nil })
	return v.(*int)
}

// recount makes c's row, and its customers' uses, count the promotion's
// live redemptions (the transaction's own pending ones written first): for
// a promotion given its first limit, whose uses were not counted until
// then. The caller holds the promotion's row (its change's UPDATE), so no
// batch redeeming it uncounted is still to commit.
func (s *Service) recount(ctx context.Context, tx *sqldb.Tx, c *counterRow) error {
	const op = "promotions.recount"
	if err := s.insertPending(ctx, tx, func(r redemptionRow) bool { return r.r.ID == c.id }); err != nil {
		return errs.E(op, err)
	}
	var uses, spent int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*), COALESCE(SUM(amount), 0) FROM promotions_redemptions
		WHERE promotion_id = $1 AND released_at IS NULL`, c.id).Scan(&uses, &spent); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE promotions_counters SET uses = $2, spent = $3 WHERE id = $1`,
		c.id, uses-c.dUses, spent-c.dSpent); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM promotions_customer_uses WHERE promotion_id = $1`, c.id); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO promotions_customer_uses (promotion_id, customer_id, uses)
		SELECT promotion_id, customer_id, count(*) FROM promotions_redemptions
		WHERE promotion_id = $1 AND released_at IS NULL AND customer_id <> '' GROUP BY promotion_id, customer_id`, c.id); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	old := *c
	c.uses, c.spent = uses-c.dUses, spent-c.dSpent
	tx.OnRollback(func() { c.uses, c.spent = old.uses, old.spent })
	return nil
}
