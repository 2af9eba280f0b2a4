package promotions

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/pricing"
)

// MaxCoupons is how many coupon codes one cart may enter.
const MaxCoupons = 10

// MaxOrderRef bounds an order reference.
const MaxOrderRef = 128

// CodePromotionChanged answers a redemption of a promotion version that is
// no longer the current active one: the cart must be priced again.
const CodePromotionChanged errs.Code = "promotion_changed"

// ActiveTx returns, read in tx, the promotions that may apply to a cart at
// now: every active automatic promotion whose window holds now, and the
// active promotions of the entered codes whatever their window (so that
// the engine can answer coupon_expired). A code that names no active
// promotion is left out, which the engine answers with coupon_unknown; of
// two codes of one promotion the first entered is kept. Each promotion has
// its remaining limits for customerID filled in: UsesLeft = min(total uses
// left, this customer's uses left) and BudgetLeft = budget − spent, nil
// when unlimited. A guest (customerID "") has no use left of a promotion
// limited per customer. One query; more than MaxCoupons codes is Invalid
// naming coupons. The result is sorted by ID.
func (s *Service) ActiveTx(ctx context.Context, tx *sqldb.Tx, now time.Time, codes []string, customerID string) ([]pricing.Promotion, error) {
	return s.active(ctx, tx, now, codes, customerID)
}

// Active is ActiveTx read from the database's reader, outside any unit: for
// a quote that commits nothing (a cart's price). Checkout calls ActiveTx.
func (s *Service) Active(ctx context.Context, now time.Time, codes []string, customerID string) ([]pricing.Promotion, error) {
	return s.active(ctx, s.db.Reader(), now, codes, customerID)
}

// rowsQueryer is what active reads through: the unit's transaction or the
// reader.
type rowsQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Service) active(ctx context.Context, q rowsQueryer, now time.Time, codes []string, customerID string) ([]pricing.Promotion, error) {
	const op = "promotions.Active"
	if len(codes) > MaxCoupons {
		return nil, errs.E(op, errs.Invalid, errs.CodeValidation, "too many coupons",
			[]errs.FieldError{{Field: "coupons", Message: "must hold at most " + strconv.Itoa(MaxCoupons) + " codes"}})
	}
	entered := []string{""} // no code is "": the list is never empty
	for _, c := range codes {
		if c = normCode(c); validCode(c) && len(c) <= MaxCodeLen && !slices.Contains(entered, c) {
			entered = append(entered, c)
		}
	}
	args := append([]any{sqldb.Micros(now), customerID}, sqldb.Args(entered)...)
	rows, err := q.QueryContext(ctx, `SELECT p.id, p.version, p.rule, p.per_customer, c.uses, c.spent, c.max_uses,
		c.budget, c.currency, COALESCE(u.uses, 0), COALESCE(k.code, '')
		FROM promotions_promotions p
		JOIN promotions_counters c ON c.id = p.id
		LEFT JOIN promotions_customer_uses u ON u.promotion_id = p.id AND u.customer_id = $2
		LEFT JOIN promotions_codes k ON k.promotion_id = p.id AND k.code IN (`+sqldb.Placeholders(3, len(entered))+`)
		WHERE p.status = 'active' AND (k.code IS NOT NULL OR
			(p.automatic AND p.starts_at <= $1 AND (p.ends_at = 0 OR p.ends_at > $1)))
		ORDER BY p.id`, args...)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	var out []pricing.Promotion
	for rows.Next() {
		var (
			id, rule, currency, code     string
			version, uses, spent, mine   int64
			perCustomer, maxUses, budget sql.NullInt64
		)
		if err := rows.Scan(&id, &version, &rule, &perCustomer, &uses, &spent, &maxUses, &budget, &currency, &mine, &code); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		if n := len(out); n > 0 && out[n-1].ID == id {
			// A second entered code of the same promotion: keep the first entered.
			if slices.Index(entered, code) < slices.Index(entered, out[n-1].Code) {
				out[n-1].Code = code
			}
			continue
		}
		var r Rule
		if err := json.Unmarshal([]byte(rule), &r); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		p := r.pricing(id, version, code)
		var left *int64
		if maxUses.Valid {
			n := max(maxUses.Int64-uses, 0)
			left = &n
		}
		if perCustomer.Valid {
			n := int64(0)
			if customerID != "" {
				n = max(perCustomer.Int64-mine, 0)
			}
			if left == nil || n < *left {
				left = &n
			}
		}
		p.UsesLeft = left
		if budget.Valid {
			m, err := money.New(max(budget.Int64-spent, 0), currency)
			if err != nil {
				return nil, errs.E(op, errs.Internal, err)
			}
			p.BudgetLeft = &m
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	return out, nil
}

// redemption is one applied promotion as RedeemTx records it.
type redemption struct {
	pricing.AppliedPromotion
	spent    int64
	currency string
}

// RedeemTx records, inside the checkout's unit tx, the redemption by the
// order orderRef of each applied promotion (as the quote priced it, with
// its version) and counts it against the promotion's limits with
// conditional writes, promotions in ID order:
//   - the total uses and the budget: the promotion's counter row, read
//     locked once per transaction, decides each unit on its own; one
//     conditional UPDATE per transaction (counterRow) writes the sum and
//     matches nothing — the batch runs again — if a limit would be
//     exceeded after all;
//   - the customer's uses: one upsert of their counter that matches
//     nothing at the per-customer limit (a guest cannot redeem a promotion
//     limited per customer).
//
// A limit hit is Conflict coupon_exhausted; a promotion that is no longer
// active at that version is Conflict promotion_changed; an order that
// redeemed the promotion already (unreleased) is Conflict already_redeemed;
// a bad orderRef or amount is Invalid. On any error the unit must fail
// whole (the checkout's does): nothing of it then remains. No applied
// promotion is a no-op.
func (s *Service) RedeemTx(ctx context.Context, tx *sqldb.Tx, orderRef, customerID string, applied []pricing.AppliedPromotion) error {
	const op = "promotions.Redeem"
	if len(applied) == 0 {
		return nil
	}
	if orderRef == "" || len(orderRef) > MaxOrderRef {
		return errs.E(op, errs.Invalid, errs.CodeValidation, "bad order reference",
			[]errs.FieldError{{Field: "order_ref", Message: "must be 1 to " + strconv.Itoa(MaxOrderRef) + " bytes"}})
	}
	rs := make([]redemption, len(applied))
	for i, a := range applied {
		r, err := newRedemption(op, a)
		if err != nil {
			return err
		}
		rs[i] = r
	}
	slices.SortFunc(rs, func(a, b redemption) int { return cmp.Compare(a.ID, b.ID) })
	for i := 1; i < len(rs); i++ {
		if rs[i].ID == rs[i-1].ID {
			return errs.E(op, errs.Invalid, errs.CodeValidation, "a promotion applied twice",
				[]errs.FieldError{{Field: "promotions", Message: "lists " + rs[i].ID + " twice"}})
		}
	}
	perCustomer := make([]sql.NullInt64, len(rs))
	for i, r := range rs {
		var version int64
		var status string
		err := tx.QueryRowContext(ctx, `SELECT version, status, per_customer FROM promotions_promotions WHERE id = $1`,
			r.ID).Scan(&version, &status, &perCustomer[i])
		if errors.Is(err, sql.ErrNoRows) || err == nil && (version != r.Version || status != StatusActive) {
			return errs.E(op, errs.Conflict, CodePromotionChanged, "promotion "+r.ID+" changed since the cart was priced")
		}
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		if perCustomer[i].Valid && customerID == "" {
			return exhausted(op, r)
		}
	}
	for _, r := range rs {
		c, err := s.counter(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if !c.take(tx, r.spent, r.currency) {
			return exhausted(op, r)
		}
	}
	if customerID != "" {
		for i, r := range rs {
			// Counted also without a per-customer limit, so that one set later
			// holds the uses made before it.
			limit := any(nil)
			if perCustomer[i].Valid {
				limit = perCustomer[i].Int64
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO promotions_customer_uses (promotion_id, customer_id, uses)
				VALUES ($1, $2, 1) ON CONFLICT (promotion_id, customer_id)
				DO UPDATE SET uses = promotions_customer_uses.uses + 1
				WHERE promotions_customer_uses.uses < COALESCE($3, promotions_customer_uses.uses + 1)`,
				r.ID, customerID, limit)
			if err := oneRow(op, res, err); err != nil {
				if errs.KindOf(err) == errs.Conflict {
					return exhausted(op, r)
				}
				return err
			}
		}
	}
	for _, r := range rs {
		id, err := uuid.NewV7()
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO promotions_redemptions
			(id, order_ref, promotion_id, version, code, customer_id, amount, currency, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			id.String(), orderRef, r.ID, r.Version, normCode(r.Code), customerID, r.spent, r.currency, sqldb.Micros(tx.Now))
		if sqldb.IsUniqueViolation(err) {
			return errs.E(op, errs.Conflict, errs.Code("already_redeemed"), "order "+orderRef+" redeemed promotion "+r.ID+" already")
		}
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
	}
	return nil
}

// newRedemption checks a and works out the discount it spends.
func newRedemption(op string, a pricing.AppliedPromotion) (redemption, error) {
	bad := func(msg string) error {
		return errs.E(op, errs.Invalid, errs.CodeValidation, "bad applied promotion",
			[]errs.FieldError{{Field: "promotions", Message: msg}})
	}
	if a.ID == "" || len(a.ID) > 64 || a.Version < 1 {
		return redemption{}, bad("a promotion needs an id and a version")
	}
	r := redemption{AppliedPromotion: a}
	for _, m := range []money.Money{a.Amount, a.Shipping} {
		if m.IsNegative() {
			return redemption{}, bad(a.ID + ": a discount is negative")
		}
		if m.Currency() != "" && r.currency != "" && m.Currency() != r.currency {
			return redemption{}, bad(a.ID + ": the discounts are in two currencies")
		}
		if m.Currency() != "" {
			r.currency = m.Currency()
		}
		r.spent += m.Amount()
	}
	return r, nil
}

// exhausted is the error of a limit hit by r.
func exhausted(op string, r redemption) error {
	msg := "promotion " + r.ID + " has no use or budget left"
	if r.Code != "" {
		msg = "coupon " + normCode(r.Code) + " has no use or budget left"
	}
	return errs.E(op, errs.Conflict, errs.Code(pricing.CouponExhausted), msg)
}

// oneRow checks that a conditional write matched one row: Conflict when it
// matched none.
func oneRow(op string, res sql.Result, err error) error {
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if n == 0 {
		return errs.E(op, errs.Conflict, "no row matched")
	}
	return nil
}

// ReleaseTx gives back, in tx, the redemptions of the order orderRef (an
// unpaid order that was cancelled or expired): each is marked released and
// its use and discount are taken off the promotion's counter and the
// customer's. Idempotent: an order without unreleased redemptions (none,
// or released already) is a no-op. Invalid for a bad orderRef.
func (s *Service) ReleaseTx(ctx context.Context, tx *sqldb.Tx, orderRef string) error {
	const op = "promotions.Release"
	if orderRef == "" || len(orderRef) > MaxOrderRef {
		return errs.E(op, errs.Invalid, errs.CodeValidation, "bad order reference",
			[]errs.FieldError{{Field: "order_ref", Message: "must be 1 to " + strconv.Itoa(MaxOrderRef) + " bytes"}})
	}
	rows, err := tx.QueryContext(ctx, `UPDATE promotions_redemptions SET released_at = $2
		WHERE order_ref = $1 AND released_at IS NULL RETURNING promotion_id, customer_id, amount`,
		orderRef, sqldb.Micros(tx.Now))
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	type released struct {
		promotion, customer string
		amount              int64
	}
	var all []released
	for rows.Next() {
		var r released
		if err := rows.Scan(&r.promotion, &r.customer, &r.amount); err != nil {
			rows.Close()
			return errs.E(op, errs.Internal, err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	slices.SortFunc(all, func(a, b released) int { return cmp.Compare(a.promotion, b.promotion) })
	for _, r := range all {
		c, err := s.counter(ctx, tx, r.promotion)
		if err != nil {
			return err
		}
		c.add(tx, -1, -r.amount)
	}
	for _, r := range all {
		if r.customer == "" {
			continue // a guest's, or erased
		}
		if _, err := tx.ExecContext(ctx, `UPDATE promotions_customer_uses SET uses = uses - 1
			WHERE promotion_id = $1 AND customer_id = $2 AND uses >= 1`, r.promotion, r.customer); err != nil {
			return errs.E(op, errs.Internal, err)
		}
	}
	return nil
}

// Release is ReleaseTx as one unit of the write path.
func (s *Service) Release(ctx context.Context, orderRef string) error {
	return s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.ReleaseTx(ctx, tx, orderRef) })
}

// Redeem is RedeemTx as one unit of the write path (tests, tools; the
// checkout calls RedeemTx in its own unit).
func (s *Service) Redeem(ctx context.Context, orderRef, customerID string, applied []pricing.AppliedPromotion) error {
	return s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.RedeemTx(ctx, tx, orderRef, customerID, applied) })
}
