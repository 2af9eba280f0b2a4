package promotions

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strconv"

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

// redemption is one applied promotion as RedeemTx records it.
type redemption struct {
	pricing.AppliedPromotion
	spent    int64
	currency string
}

// RedeemTx records, inside the checkout's unit tx, the redemption by the
// order orderRef of each applied promotion (as the quote priced it, with
// its version) and counts it against the promotion's limits with
// conditional writes, promotions in ID order. The units of one batch
// share each promotion's row (counterRow: its version, status, counts and
// limits, read once per batch) and each customer's uses of it (usesRow):
// each unit decides on its own from them plus what the units before it
// took; the batch's flush then writes one conditional UPDATE of the
// counter per promotion and one upsert of its customers' uses, which match
// nothing — the batch runs again, reading afresh — if a limit would be
// exceeded after all (a guest cannot redeem a promotion limited per
// customer).
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
	for _, r := range rs {
		c, err := s.counter(ctx, tx, r.ID)
		if errs.KindOf(err) == errs.NotFound || err == nil && (c.version != r.Version || c.status != StatusActive) {
			return errs.E(op, errs.Conflict, CodePromotionChanged, "promotion "+r.ID+" changed since the cart was priced")
		}
		if err != nil {
			return err
		}
		if ok, err := s.take(ctx, tx, c, customerID, r.spent, r.currency); err != nil {
			return err
		} else if !ok {
			return exhausted(op, r)
		}
	}
	p := s.pending(tx)
	for _, r := range rs {
		id, err := uuid.NewV7()
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		row := redemptionRow{id: id.String(), orderRef: orderRef, r: r, customer: customerID, at: sqldb.Micros(tx.Now)}
		key := liveKey{orderRef, r.ID}
		switch {
		case p.live[key]:
			return redeemedAlready(op, key)
		case s.redeemed.take(key):
			// A flush found this order's redemption committed already: the
			// unit inserts its row now and learns it from the index.
			if err := insertRedemptions(ctx, tx, []redemptionRow{row}); sqldb.IsUniqueViolation(err) {
				return redeemedAlready(op, key)
			} else if err != nil {
				return errs.E(op, errs.Internal, err)
			}
			continue
		}
		p.add(tx, row)
	}
	return nil
}

func redeemedAlready(op string, k liveKey) error {
	return errs.E(op, errs.Conflict, errs.Code("already_redeemed"), "order "+k.orderRef+" redeemed promotion "+k.promotion+" already")
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
	if err := s.insertPending(ctx, tx, func(r redemptionRow) bool { return r.orderRef == orderRef }); err != nil {
		return errs.E(op, err)
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
		if c.counted() { // else its live redemptions are its uses
			c.add(tx, -1, -r.amount)
		}
	}
	for _, r := range all {
		if r.customer == "" {
			continue // a guest's, or erased
		}
		if c, err := s.counter(ctx, tx, r.promotion); err != nil {
			return err
		} else if !c.counted() {
			continue
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
