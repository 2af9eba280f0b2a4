package pricing

import (
	"cmp"
	"fmt"
	"slices"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
)

// Discounted is the outcome of the Discounts stage.
type Discounted struct {
	Subtotals []money.Money    // per line: unit price × quantity
	Subtotal  money.Money      // Σ Subtotals
	Lines     [][]LineDiscount // per line, in the order the promotions applied
	PerLine   []money.Money    // per line: Σ Lines[i]
	Total     money.Money      // Σ PerLine
	Applied   []AppliedPromotion
	// FreeShipping is the index in Applied of the free-shipping promotion
	// the Shipping stage honours, or -1.
	FreeShipping int
	Coupons      []CouponOutcome
	// CouponErr is the Invalid error reporting the coupons that cannot
	// apply (nil when every entered coupon applied). The discounts are
	// computed as if those coupons had not been entered.
	CouponErr error

	// slots is how many promotions may still apply (each line's share of
	// lineBuf); lineBuf backs every line's Lines in one allocation.
	slots   int
	lineBuf []LineDiscount
	am      amounts // the cart's currency
}

// net is line i's amount after its discounts.
func (d *Discounted) net(i int) int64 { return d.Subtotals[i].Amount() - d.PerLine[i].Amount() }

// candidate is a promotion whose window, limits and conditions hold.
type candidate struct {
	p      *Promotion
	status string // CouponApplied once applied, else why not
}

// Discounts is the discount stage: it validates the lines and the
// promotions, decides which promotions apply (package documentation:
// exclusivity, priority, limits) and allocates their discounts to the lines.
// The error is Invalid for bad lines or promotions; a coupon that cannot
// apply is not an error of the stage but reported in CouponErr.
func Discounts(in Input) (Discounted, error) {
	const op = "pricing.Discounts"
	subs, subtotal, err := lineSubtotals(&in)
	if err != nil {
		return Discounted{}, errs.E(op, err)
	}
	if err := ValidatePromotions(in.Promotions); err != nil {
		return Discounted{}, errs.E(op, err)
	}
	cur := in.Currency
	am := amountsIn(cur)
	d := Discounted{
		Subtotals: subs, Subtotal: subtotal, Lines: make([][]LineDiscount, len(in.Lines)),
		PerLine: make([]money.Money, len(in.Lines)), Total: am.of(0), FreeShipping: -1, am: am,
	}
	for i := range d.PerLine {
		d.PerLine[i] = am.of(0)
	}

	entered := map[string]bool{}
	var codes []string
	for _, c := range in.Coupons {
		if n := normCode(c); n != "" && !entered[n] {
			entered[n] = true
			codes = append(codes, n)
		}
	}

	byCode := map[string]*candidate{}
	var excl, comb []*candidate
	for i := range in.Promotions {
		p := &in.Promotions[i]
		code := normCode(p.Code)
		if code != "" && !entered[code] {
			continue // a coupon promotion whose code was not entered
		}
		c := &candidate{p: p}
		switch {
		case p.window(in.Now) != "":
			c.status = p.window(in.Now)
		case p.exhausted(cur):
			c.status = CouponExhausted
		default:
			c.status = p.eligible(&in, subtotal)
		}
		if code != "" {
			byCode[code] = c
		}
		if c.status != "" {
			continue
		}
		c.status = CouponNotApplicable // until it applies
		if p.Exclusive {
			excl = append(excl, c)
		} else {
			comb = append(comb, c)
		}
	}
	byPriority := func(a, b *candidate) int {
		if a.p.Priority != b.p.Priority {
			return cmp.Compare(b.p.Priority, a.p.Priority)
		}
		return cmp.Compare(a.p.ID, b.p.ID)
	}
	slices.SortFunc(excl, byPriority)
	slices.SortFunc(comb, byPriority)

	// Scratch for compute: the parts of the candidate at hand, the winner's
	// (exclusive ones) and the weights, one allocation for the quote.
	n := len(in.Lines)
	scratch := make([]int64, 3*n)
	parts, best, weights := scratch[:n:n], scratch[n:2*n:2*n], scratch[2*n:]
	// An exclusive promotion that gives something wins alone: the highest
	// priority, then the larger discount, then the smaller ID.
	var winner *candidate
	var winnerTotal int64
	for _, c := range excl {
		total := compute(c.p, &in, &d, parts, weights)
		if total == 0 && c.p.Kind != FreeShipping {
			continue
		}
		if winner == nil || (c.p.Priority == winner.p.Priority && total > winnerTotal) {
			winner, winnerTotal = c, total
			copy(best, parts)
		}
	}
	if winner != nil {
		d.slots = 1
		d.apply(winner, best)
	} else {
		d.slots = len(comb)
		for _, c := range comb {
			if c.p.Kind == FreeShipping {
				if d.FreeShipping < 0 {
					d.apply(c, nil)
				}
				continue
			}
			if total := compute(c.p, &in, &d, parts, weights); total > 0 {
				d.apply(c, parts)
			}
		}
	}

	var v errs.Validation
	var first string
	for i, code := range codes {
		out := CouponOutcome{Code: code, Outcome: CouponUnknown}
		if c := byCode[code]; c != nil {
			out.Outcome, out.PromotionID = c.status, c.p.ID
		}
		d.Coupons = append(d.Coupons, out)
		if out.Outcome != CouponApplied {
			if first == "" {
				first = out.Outcome
			}
			v.Add(fmt.Sprintf("coupons[%d]", i), out.Outcome+": "+couponMessages[out.Outcome])
		}
	}
	if first != "" {
		d.CouponErr = errs.E(op, errs.Invalid, errs.Code(first), "a coupon entered cannot apply", v.Fields)
	}
	return d, nil
}

var couponMessages = map[string]string{
	CouponUnknown:       "no promotion has this code",
	CouponExpired:       "the promotion has ended",
	CouponNotApplicable: "the promotion does not apply to this cart",
	CouponExhausted:     "the promotion has no uses or budget left",
}

// apply records c's discount parts (per line, in minor units; nil for none).
func (d *Discounted) apply(c *candidate, parts []int64) {
	c.status = CouponApplied
	total := d.am.of(0)
	if d.Applied == nil {
		d.Applied = make([]AppliedPromotion, 0, max(d.slots, 1))
	}
	for i, a := range parts {
		if a == 0 {
			continue
		}
		m := d.am.of(a)
		if d.Lines[i] == nil && d.slots > 0 {
			// A line's first discount: its share of one buffer for all
			// lines, room for every promotion that may still apply.
			if d.lineBuf == nil {
				d.lineBuf = make([]LineDiscount, len(d.Lines)*d.slots)
			}
			d.Lines[i] = d.lineBuf[i*d.slots : i*d.slots : (i+1)*d.slots]
		}
		d.Lines[i] = append(d.Lines[i], LineDiscount{PromotionID: c.p.ID, Version: c.p.Version, Amount: m})
		// Neither sum can overflow: each stays at most a subtotal.
		d.PerLine[i], _ = d.PerLine[i].Add(m)
		d.Total, _ = d.Total.Add(m)
		total, _ = total.Add(m)
	}
	if c.p.Kind == FreeShipping {
		d.FreeShipping = len(d.Applied)
	}
	d.Applied = append(d.Applied, AppliedPromotion{ID: c.p.ID, Version: c.p.Version, Code: normCode(c.p.Code),
		Amount: total, Shipping: d.am.of(0)})
}

// compute fills parts with what p takes off each line's remaining amount,
// in minor units, within its remaining budget, and returns their sum; it
// changes nothing else. parts and weights (scratch) have one element per
// line.
func compute(p *Promotion, in *Input, d *Discounted, parts, weights []int64) int64 {
	clear(parts)
	switch p.Kind {
	case Percentage, Fixed:
		var w int64
		for i, l := range in.Lines {
			weights[i] = 0
			if p.AppliesTo.Matches(l) {
				weights[i] = d.net(i)
				w += weights[i]
			}
		}
		if w == 0 {
			return 0
		}
		var off int64
		if p.Kind == Percentage {
			m, err := d.am.of(w).Percent(p.PercentBP, money.HalfEven)
			if err != nil {
				return 0 // cannot happen: the result is at most w
			}
			off = m.Amount()
		} else {
			off = min(p.Amount.Amount(), w)
		}
		if b := p.BudgetLeft; b != nil {
			off = min(off, b.Amount())
		}
		for i, m := range d.am.of(off).Allocate(weights) {
			parts[i] = m.Amount()
		}
	case BuyXGetY:
		bxgy(p, in, d, parts)
		if b := p.BudgetLeft; b != nil && sum(parts) > b.Amount() {
			for i, m := range b.Allocate(parts) {
				parts[i] = m.Amount()
			}
		}
	}
	return sum(parts)
}

// bxgy fills parts with a buy-X-get-Y discount. Units in both sets may
// count as bought or as discounted; the rule repeats as often as the units
// allow (up to MaxUses), and the discounted units are the cheapest the
// bought ones leave over.
func bxgy(p *Promotion, in *Input, d *Discounted, parts []int64) {
	r := p.BXGY
	var onlyBuy, onlyGet, both int64
	var gets []int
	for i, l := range in.Lines {
		b, g := r.BuySet.Matches(l), r.GetSet.Matches(l)
		switch {
		case b && g:
			both += l.Quantity
		case b:
			onlyBuy += l.Quantity
		case g:
			onlyGet += l.Quantity
		}
		if g {
			gets = append(gets, i)
		}
	}
	// n uses need n×Buy units from onlyBuy∪both and n×Get from onlyGet∪both,
	// all distinct. Quantities are bounded (MaxQuantity), so no overflow.
	n := min((onlyBuy+both)/r.Buy, (onlyGet+both)/r.Get, (onlyBuy+onlyGet+both)/(r.Buy+r.Get))
	if r.MaxUses > 0 {
		n = min(n, r.MaxUses)
	}
	if n <= 0 {
		return
	}
	need := n * r.Get
	fromBoth := onlyBuy + both - n*r.Buy // units of both that may be discounted
	slices.SortStableFunc(gets, func(a, b int) int {
		return cmp.Compare(in.Lines[a].UnitPrice.Amount(), in.Lines[b].UnitPrice.Amount())
	})
	for _, i := range gets {
		if need == 0 {
			break
		}
		take := min(in.Lines[i].Quantity, need)
		if r.BuySet.Matches(in.Lines[i]) {
			take = min(take, fromBoth)
			fromBoth -= take
		}
		need -= take
		if take == 0 {
			continue
		}
		full := in.Lines[i].UnitPrice.Amount() * take // at most the line's subtotal
		off, err := d.am.of(full).Percent(p.PercentBP, money.HalfEven)
		if err == nil {
			parts[i] = min(off.Amount(), d.net(i))
		}
	}
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}
