package promotions

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// The redemption rows of a transaction are written by its flush, all in
// one multi-row INSERT (a checkout with a coupon then costs the write path
// no statement of its own for its redemption, like the outbox's rows):
// RedeemTx adds each unit's rows to the transaction's pending set (taken
// back if the unit fails) and refuses a second live redemption of one
// promotion by one order within the transaction. A live redemption
// committed earlier (an order redeeming again, which checkout never does:
// its orders are new) cannot be seen before the INSERT: the flush's INSERT
// skips such a row (ON CONFLICT … DO NOTHING on the live index), remembers
// it in the service's redeemed set and fails the batch with
// sqldb.ErrConflict; the batch runs again, and the unit that redeems it
// then inserts its row at once and gets already_redeemed from the unique
// index, alone. ReleaseTx and EraseTx first insert the pending rows they
// concern, so that they see them.

// liveKey is a live redemption: at most one per order and promotion.
type liveKey struct{ orderRef, promotion string }

// redemptionRow is one row of promotions_redemptions to insert.
type redemptionRow struct {
	id, orderRef string
	r            redemption
	customer     string
	at           int64 // micros
}

// add makes row pending in tx's unit (taken back if the unit fails).
func (p *pending) add(tx *sqldb.Tx, row redemptionRow) {
	key := liveKey{row.orderRef, row.r.ID}
	p.redemptions = append(p.redemptions, row)
	p.live[key] = true
	tx.OnRollback(func() {
		p.redemptions = slices.DeleteFunc(p.redemptions, func(x redemptionRow) bool { return x.id == row.id })
		delete(p.live, key)
	})
}

// rowsPerInsert is the most rows one INSERT writes: a transaction's rows
// go in statements of 8, 4, 2 and 1 rows, so that four statement texts are
// ever prepared (each connection keeps them) and none binds more than 72
// parameters (SQLite looks a parameter up by its name: binding n costs
// n²).
const rowsPerInsert = 8

// flushRedemptions inserts p's pending redemptions; a row skipped because
// its order's redemption is live already is remembered in s.redeemed and
// fails the batch with sqldb.ErrConflict (it runs again).
func (s *Service) flushRedemptions(ctx context.Context, tx *sqldb.Tx, p *pending) error {
	const op = "promotions.flush"
	for rows := p.redemptions; len(rows) > 0; {
		n := rowsPerInsert
		for n > len(rows) {
			n /= 2
		}
		q, args := redemptionsInsert(rows[:n], ` ON CONFLICT (order_ref, promotion_id) WHERE released_at IS NULL DO NOTHING`)
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		if got, err := res.RowsAffected(); err != nil {
			return errs.E(op, errs.Internal, err)
		} else if got != int64(n) {
			if err := s.rememberRedeemed(ctx, tx, rows[:n]); err != nil {
				return err
			}
			return fmt.Errorf("promotions: %d redemptions of orders that redeemed already: %w", int64(n)-got, sqldb.ErrConflict)
		}
		rows = rows[n:]
	}
	return nil
}

// rememberRedeemed adds to s.redeemed the rows of an INSERT that skipped
// some: those not written.
func (s *Service) rememberRedeemed(ctx context.Context, tx *sqldb.Tx, rows []redemptionRow) error {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.id
	}
	res, err := tx.QueryContext(ctx, `SELECT id FROM promotions_redemptions WHERE id IN (`+sqldb.Placeholders(1, len(ids))+`)`,
		sqldb.Args(ids)...)
	if err != nil {
		return errs.E("promotions.flush", errs.Internal, err)
	}
	defer res.Close()
	written := map[string]bool{}
	for res.Next() {
		var id string
		if err := res.Scan(&id); err != nil {
			return errs.E("promotions.flush", errs.Internal, err)
		}
		written[id] = true
	}
	if err := res.Err(); err != nil {
		return errs.E("promotions.flush", errs.Internal, err)
	}
	for _, r := range rows {
		if !written[r.id] {
			s.redeemed.add(liveKey{r.orderRef, r.r.ID})
		}
	}
	return nil
}

// insertPending inserts at once (one statement) the pending redemptions
// of tx that match, and drops them from the flush's rows.
func (s *Service) insertPending(ctx context.Context, tx *sqldb.Tx, match func(redemptionRow) bool) error {
	p := s.pending(tx)
	var now []redemptionRow
	for _, r := range p.redemptions {
		if match(r) {
			now = append(now, r)
		}
	}
	if len(now) == 0 {
		return nil
	}
	if err := insertRedemptions(ctx, tx, now); err != nil {
		return errs.E("promotions.insertPending", errs.Internal, err)
	}
	old := slices.Clone(p.redemptions)
	p.redemptions = slices.DeleteFunc(p.redemptions, match)
	tx.OnRollback(func() { p.redemptions = old })
	return nil
}

// redemptionsInsert is the INSERT of rows; tail is what follows the
// VALUES.
func redemptionsInsert(rows []redemptionRow, tail string) (string, []any) {
	var b strings.Builder
	b.WriteString(`INSERT INTO promotions_redemptions
		(id, order_ref, promotion_id, version, code, customer_id, amount, currency, created_at) VALUES `)
	args := make([]any, 0, 9*len(rows))
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + sqldb.Placeholders(9*i+1, 9) + ")")
		args = append(args, r.id, r.orderRef, r.r.ID, r.r.Version, normCode(r.r.Code), r.customer, r.r.spent, r.r.currency, r.at)
	}
	b.WriteString(tail)
	return b.String(), args
}

// insertRedemptions inserts rows; a live one that exists is a unique
// violation.
func insertRedemptions(ctx context.Context, tx *sqldb.Tx, rows []redemptionRow) error {
	q, args := redemptionsInsert(rows, "")
	_, err := tx.ExecContext(ctx, q, args...)
	return err
}

// redeemedSet is the live redemptions a flush found committed already,
// until the unit that redeems one again runs (safe for concurrent use).
// Bounded: past maxRedeemed it starts afresh (a batch that conflicts again
// remembers its rows again).
type redeemedSet struct {
	mu sync.Mutex
	m  map[liveKey]bool // guarded by mu
}

const maxRedeemed = 1024

func (r *redeemedSet) add(k liveKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil || len(r.m) >= maxRedeemed {
		r.m = map[liveKey]bool{}
	}
	r.m[k] = true
}

// take reports whether k is in the set, and removes it.
func (r *redeemedSet) take(k liveKey) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.m[k] {
		return false
	}
	delete(r.m, k)
	return true
}
