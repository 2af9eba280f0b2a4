package promotions

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/pricing"
)

// activeSet is every active promotion as the quote needs it, kept whole in
// the process's cache (s.cache): the engine's form of its rule, its window
// and its limits. Its remaining uses and budget change with every checkout
// and are never cached: they are read from the counters (in a unit, once
// per batch) for the promotions that have limits.
type activeSet struct {
	byID   []cachedPromotion // sorted by ID
	ids    []string          // byID's IDs (searched without copying promotions)
	byCode map[string]int    // an active promotion's code → its index
}

type cachedPromotion struct {
	p         pricing.Promotion // Code "", no limits left filled in
	automatic bool
	starts    int64 // micros, 0: none
	ends      int64 // micros, 0: none
	hasLimits bool  // max uses, a budget or a per-customer limit
}

// loadActive reads the active set from the database's reader (committed
// state): two queries.
func (s *Service) loadActive(ctx context.Context) (*activeSet, error) {
	const op = "promotions.loadActive"
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT p.id, p.version, p.rule, p.automatic, p.starts_at, p.ends_at,
		p.per_customer IS NOT NULL OR c.max_uses IS NOT NULL OR c.budget IS NOT NULL
		FROM promotions_promotions p JOIN promotions_counters c ON c.id = p.id
		WHERE p.status = 'active' ORDER BY p.id`)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	set := &activeSet{byCode: map[string]int{}}
	index := map[string]int{}
	for rows.Next() {
		var (
			cp      cachedPromotion
			id      string
			version int64
			rule    string
		)
		if err := rows.Scan(&id, &version, &rule, &cp.automatic, &cp.starts, &cp.ends, &cp.hasLimits); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		var r Rule
		if err := json.Unmarshal([]byte(rule), &r); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		cp.p = r.pricing(id, version, "")
		index[id] = len(set.byID)
		set.byID = append(set.byID, cp)
		set.ids = append(set.ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	rows.Close()
	codes, err := s.db.Reader().QueryContext(ctx, `SELECT k.code, k.promotion_id FROM promotions_codes k
		JOIN promotions_promotions p ON p.id = k.promotion_id WHERE p.status = 'active'`)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	defer codes.Close()
	for codes.Next() {
		var code, id string
		if err := codes.Scan(&code, &id); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		if i, ok := index[id]; ok { // one made active between the two reads waits for its drop
			set.byCode[code] = i
		}
	}
	if err := codes.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	return set, nil
}

// ActiveTx returns the promotions that may apply to a cart at now, in the
// unit tx: every active automatic promotion whose window holds now, and the
// active promotions of the entered codes whatever their window (so that
// the engine can answer coupon_expired). A code that names no active
// promotion is left out, which the engine answers with coupon_unknown; of
// two codes of one promotion the first entered is kept. Each promotion has
// its remaining limits for customerID filled in: UsesLeft = min(total uses
// left, this customer's uses left) and BudgetLeft = budget − spent, nil
// when unlimited. A guest (customerID "") has no use left of a promotion
// limited per customer. More than MaxCoupons codes is Invalid naming
// coupons. The result is sorted by ID.
//
// The promotions come from the process's cache (no row read), their
// remaining limits from the rows the batch shares with RedeemTx (read once
// per batch, with the uses the batch's earlier units took); a unit of a
// transaction that changed promotions reads them from its own rows.
func (s *Service) ActiveTx(ctx context.Context, tx *sqldb.Tx, now time.Time, codes []string, customerID string) ([]pricing.Promotion, error) {
	const op = "promotions.Active"
	entered, err := enteredCodes(op, codes)
	if err != nil {
		return nil, err
	}
	if *s.changes(tx) > 0 {
		return s.activeRows(ctx, tx, now, entered, customerID)
	}
	set, err := s.cache.Get(func() (*activeSet, error) { return s.loadActive(ctx) })
	if err != nil {
		return nil, err
	}
	out := set.pick(now, entered)
	for i := range out {
		p := &out[i]
		if !set.byID[set.index(p.ID)].hasLimits {
			continue
		}
		c, err := s.counter(ctx, tx, p.ID)
		if errs.KindOf(err) == errs.NotFound {
			continue // gone since it was cached: the redemption says promotion_changed
		}
		if err != nil {
			return nil, err
		}
		if p.UsesLeft, err = s.usesLeft(ctx, tx, c, customerID); err != nil {
			return nil, err
		}
		if c.budget.Valid {
			m, err := money.New(max(c.budget.Int64-c.spent-c.dSpent, 0), c.currency)
			if err != nil {
				return nil, errs.E(op, errs.Internal, err)
			}
			p.BudgetLeft = &m
		}
	}
	return out, nil
}

// Active is ActiveTx outside any unit: for a quote that commits nothing (a
// cart's price). The promotions come from the cache; the limits of those
// that have some are read from the database's reader (one query).
func (s *Service) Active(ctx context.Context, now time.Time, codes []string, customerID string) ([]pricing.Promotion, error) {
	const op = "promotions.Active"
	entered, err := enteredCodes(op, codes)
	if err != nil {
		return nil, err
	}
	set, err := s.cache.Get(func() (*activeSet, error) { return s.loadActive(ctx) })
	if err != nil {
		return nil, err
	}
	out := set.pick(now, entered)
	var limited []string
	for _, p := range out {
		if set.byID[set.index(p.ID)].hasLimits {
			limited = append(limited, p.ID)
		}
	}
	if len(limited) == 0 {
		return out, nil
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT p.id, p.per_customer, c.uses, c.spent, c.max_uses, c.budget,
		c.currency, COALESCE(u.uses, 0)
		FROM promotions_promotions p JOIN promotions_counters c ON c.id = p.id
		LEFT JOIN promotions_customer_uses u ON u.promotion_id = p.id AND u.customer_id = $1
		WHERE p.id IN (`+sqldb.Placeholders(2, len(limited))+`)`, append([]any{customerID}, sqldb.Args(limited)...)...)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id                           string
			uses, spent, mine            int64
			perCustomer, maxUses, budget sql.NullInt64
			currency                     string
		)
		if err := rows.Scan(&id, &perCustomer, &uses, &spent, &maxUses, &budget, &currency, &mine); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		i := slices.IndexFunc(out, func(p pricing.Promotion) bool { return p.ID == id })
		if err := fillLimits(&out[i], customerID, uses, spent, mine, perCustomer, maxUses, budget, currency); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	return out, nil
}

// enteredCodes normalises a cart's codes: "" first (no code is "", so the
// list is never empty), then each valid code once, in the order entered.
func enteredCodes(op string, codes []string) ([]string, error) {
	if len(codes) > MaxCoupons {
		return nil, errs.E(op, errs.Invalid, errs.CodeValidation, "too many coupons",
			[]errs.FieldError{{Field: "coupons", Message: "must hold at most " + strconv.Itoa(MaxCoupons) + " codes"}})
	}
	entered := []string{""}
	for _, c := range codes {
		if c = normCode(c); validCode(c) && len(c) <= MaxCodeLen && !slices.Contains(entered, c) {
			entered = append(entered, c)
		}
	}
	return entered, nil
}

func (a *activeSet) index(id string) int {
	i, _ := slices.BinarySearch(a.ids, id)
	return i
}

// pick is what applies at now to a cart that entered codes: the automatic
// promotions whose window holds now and those of the codes (the first
// entered of a promotion's codes), sorted by ID, without limits filled in.
func (a *activeSet) pick(now time.Time, entered []string) []pricing.Promotion {
	at := sqldb.Micros(now)
	// The entered codes' promotions (at most MaxCoupons): a scan beats a map.
	type coded struct {
		i    int
		code string
	}
	var byCode [MaxCoupons]coded
	codes := byCode[:0]
	for _, c := range entered[1:] {
		if i, ok := a.byCode[c]; ok && !slices.ContainsFunc(codes, func(k coded) bool { return k.i == i }) {
			codes = append(codes, coded{i, c})
		}
	}
	codeOf := func(i int) (string, bool) {
		for _, k := range codes {
			if k.i == i {
				return k.code, true
			}
		}
		return "", false
	}
	applies := func(i int) bool {
		cp := &a.byID[i]
		_, ok := codeOf(i)
		return ok || cp.automatic && cp.starts <= at && (cp.ends == 0 || cp.ends > at)
	}
	n := 0
	for i := range a.byID {
		if applies(i) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]pricing.Promotion, 0, n) // one allocation per quote
	for i := range a.byID {
		if applies(i) {
			p := a.byID[i].p
			p.Code, _ = codeOf(i)
			out = append(out, p)
		}
	}
	return out
}

// fillLimits sets p's remaining limits for customerID from its counter
// and the customer's uses.
func fillLimits(p *pricing.Promotion, customerID string, uses, spent, mine int64, perCustomer, maxUses, budget sql.NullInt64, currency string) error {
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
			return err
		}
		p.BudgetLeft = &m
	}
	return nil
}

// activeRows is ActiveTx read from tx's own rows (one query): for a
// transaction that changed promotions, which the cache does not show yet.
func (s *Service) activeRows(ctx context.Context, tx *sqldb.Tx, now time.Time, entered []string, customerID string) ([]pricing.Promotion, error) {
	const op = "promotions.Active"
	args := append([]any{sqldb.Micros(now), customerID}, sqldb.Args(entered)...)
	rows, err := tx.QueryContext(ctx, `SELECT p.id, p.version, p.rule, p.per_customer, c.uses, c.spent, c.max_uses,
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
		if err := fillLimits(&p, customerID, uses, spent, mine, perCustomer, maxUses, budget, currency); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	return out, nil
}
