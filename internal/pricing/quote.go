package pricing

import (
	"fmt"
	"strconv"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
)

// The bounds of a cart the engine prices. They keep every intermediate sum
// of quantities and weights within int64.
const (
	MaxLines       = 1000
	MaxQuantity    = 1_000_000
	MaxWeightGrams = 1_000_000_000 // per unit: a thousand tonnes
)

// Quote prices in: Discounts, then Shipping, then Tax, then the totals
// (the package documentation has the rules). The error is an *errs.Error:
// Invalid for bad input or rule sets, naming the fields. When only entered
// coupons cannot apply, the error is Invalid with the first failing
// coupon's code (coupon_unknown, coupon_expired, coupon_not_applicable,
// coupon_exhausted) and one field error per failing coupon, and the Quote
// returned with it is the cart priced without those coupons, their
// outcomes in Coupons, so a caller may show both.
func Quote(in Input) (Quotation, error) {
	const op = "pricing.Quote"
	d, err := Discounts(in)
	if err != nil {
		return Quotation{}, errs.E(op, err)
	}
	s, err := Shipping(in, d)
	if err != nil {
		return Quotation{}, errs.E(op, err)
	}
	t, err := Tax(in, d, s)
	if err != nil {
		return Quotation{}, errs.E(op, err)
	}
	q, err := Totals(in, d, s, t)
	if err != nil {
		return Quotation{}, errs.E(op, err)
	}
	if d.CouponErr != nil {
		return q, errs.E(op, d.CouponErr)
	}
	return q, nil
}

// Totals is the last stage: it assembles the quote from the outcomes of
// the others and works out the line and order totals.
func Totals(in Input, d Discounted, s Shipped, t Taxed) (Quotation, error) {
	const op = "pricing.Totals"
	cur := in.Currency
	q := Quotation{
		Currency: cur, Lines: make([]LineQuote, len(in.Lines)), Subtotal: d.Subtotal, Discount: d.Total,
		ShippingMethod: s.Method, ShippingZone: s.Zone, ShippingDiscount: s.Discount, Shipping: s.Charged,
		ShippingTax: t.Shipping, Tax: t.Total, TaxInclusive: t.Inclusive, TaxRegion: t.Region,
		Promotions: append([]AppliedPromotion{}, d.Applied...), ShippingVersion: in.Shipping.Version,
		TaxVersion: in.Tax.Version, Coupons: append([]CouponOutcome{}, d.Coupons...),
	}
	if d.FreeShipping >= 0 {
		q.Promotions[d.FreeShipping].Shipping = s.Discount
	}
	for i, l := range in.Lines {
		lq := LineQuote{SKU: l.SKU, Subtotal: d.Subtotals[i], Discounts: d.Lines[i], Discount: d.PerLine[i],
			Tax: t.Lines[i]}
		if lq.Discounts == nil {
			lq.Discounts = []LineDiscount{}
		}
		total, err := lq.Subtotal.Sub(lq.Discount)
		if err == nil && !t.Inclusive {
			total, err = total.Add(lq.Tax)
		}
		if err != nil {
			return Quotation{}, errs.E(op, err)
		}
		lq.Total = total
		q.Lines[i] = lq
	}
	total, err := d.Subtotal.Sub(d.Total)
	if err == nil {
		total, err = total.Add(s.Charged)
	}
	if err == nil && !t.Inclusive {
		total, err = total.Add(t.Total)
	}
	if err != nil {
		return Quotation{}, errs.E(op, err)
	}
	q.Total = total
	return q, nil
}

// lineSubtotals validates the currency and the lines and returns each
// line's unit price × quantity and their sum.
func lineSubtotals(in *Input) ([]money.Money, money.Money, error) {
	const op = "pricing.lines"
	if _, ok := money.Exponent(in.Currency); !ok {
		return nil, money.Money{}, errs.E(op, errs.Invalid, "unknown currency",
			[]errs.FieldError{{Field: "currency", Message: "must be an ISO 4217 currency code"}})
	}
	var v problems
	if len(in.Lines) > MaxLines { // the message formatted only then: every quote checks
		v.Add("lines", fmt.Sprintf("must hold at most %d lines", MaxLines))
	}
	if err := v.Err(op); err != nil {
		return nil, money.Money{}, err
	}
	list := root("")
	for i, l := range in.Lines {
		f := list.at("lines", i)
		v.check(l.SKU != "", &f, ".sku", "is required")
		v.check(l.Quantity >= 1 && l.Quantity <= MaxQuantity, &f, ".quantity", "must be from 1 to 1000000")
		if l.UnitPrice.Currency() != in.Currency {
			v.Add(f.String()+".unit_price", "must be in "+in.Currency)
		}
		v.check(!l.UnitPrice.IsNegative(), &f, ".unit_price", "must not be negative")
		v.check(l.WeightGrams >= 0 && l.WeightGrams <= MaxWeightGrams, &f, ".weight_grams", "must be from 0 to 1000000000")
	}
	if err := v.Err(op); err != nil {
		return nil, money.Money{}, err
	}
	subs := make([]money.Money, len(in.Lines))
	total := money.Zero(in.Currency)
	for i, l := range in.Lines {
		m, err := l.UnitPrice.Mul(l.Quantity)
		if err == nil {
			total, err = total.Add(m)
		}
		if err != nil {
			return nil, money.Money{}, errs.E(op, errs.Invalid, "the cart's amounts are out of range",
				[]errs.FieldError{{Field: fmt.Sprintf("lines[%d]", i), Message: "takes the subtotal out of range"}}, err)
		}
		subs[i] = m
	}
	return subs, total, nil
}

// path names a field of the input for an error, built only when a check
// fails: validating a valid rule set, which every quote does, formats
// nothing. A path is a parent, a member name and an index (-1 for none):
// path{&zones3, ".rates", 1} is "shipping.zones[3].rates[1]".
type path struct {
	parent *path
	name   string
	index  int
}

// root is a top-level member or list ("promotions", "tax.regions").
func root(name string) path { return path{name: name, index: -1} }

// at is element i of the list p names.
func (p *path) at(name string, i int) path { return path{parent: p, name: name, index: i} }

func (p path) String() string {
	s := p.name
	if p.index >= 0 {
		s += "[" + strconv.Itoa(p.index) + "]"
	}
	if p.parent != nil {
		s = p.parent.String() + s
	}
	return s
}

// problems collects field errors against paths.
type problems struct{ errs.Validation }

// check records msg for the member sub of p (sub "" for p itself) unless
// ok.
func (v *problems) check(ok bool, p *path, sub, msg string) {
	if !ok {
		v.Add(p.String()+sub, msg)
	}
}

// amounts makes amounts in one currency: money.New looks the currency up
// in its table on every call, which a quote's many amounts — all in the
// cart's currency, checked once by lineSubtotals — need not.
type amounts struct{ one money.Money }

// amountsIn is the amounts of cur, a currency money knows.
func amountsIn(cur string) amounts { return amounts{money.MustNew(1, cur)} }

// of is v in the currency; like money.MustNew it panics on the one int64
// that is no amount (the engine's amounts are bounded far below it).
func (a amounts) of(v int64) money.Money {
	m, err := a.one.Mul(v)
	if err != nil {
		panic(err)
	}
	return m
}
