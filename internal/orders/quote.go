package orders

import (
	"context"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/pricing"
)

// Quote is a priced cart: its lines with their breakdown and the totals.
// Every amount is in Currency; prices come from the Catalog, never from a
// client. Input is what the pricing engine's stages read (its Lines
// parallel to Lines); the stages fill in the rest.
type Quote struct {
	Currency       string
	ShippingMethod string
	Lines          []QuoteLine
	Subtotal       money.Money
	Discount       money.Money
	Shipping       money.Money
	Tax            money.Money
	Total          money.Money
	// TaxInclusive: the prices include Tax (Total does not add it).
	TaxInclusive     bool
	ShippingDiscount money.Money
	TaxRegion        string
	Promotions       []pricing.AppliedPromotion
	Coupons          []pricing.CouponOutcome
	// CouponErr is the engine's Invalid error for entered coupons that
	// cannot apply (coupon_unknown, coupon_expired, …); the quote is then
	// priced without them. Checkout refuses it; a cart's view shows it.
	CouponErr error

	Input pricing.Input

	discounted pricing.Discounted
	shipped    pricing.Shipped
	taxed      pricing.Taxed
}

// QuoteLine is one priced line and its share of each stage.
type QuoteLine struct {
	Variant
	Quantity int
	// Subtotal is Price × Quantity; Discount and Tax are this line's
	// shares; Total = Subtotal - Discount (+ Tax when prices exclude it).
	Subtotal, Discount, Tax, Total money.Money
	Discounts                      []pricing.LineDiscount
}

// Breakdown is a line's price breakdown as it is stored with an order.
type Breakdown struct {
	UnitPrice    int64          `json:"unit_price"`
	Quantity     int            `json:"quantity"`
	Subtotal     int64          `json:"subtotal"`
	Discount     int64          `json:"discount"`
	Discounts    []LineDiscount `json:"discounts,omitempty" doc:"Per promotion, with the version priced."`
	Tax          int64          `json:"tax"`
	TaxInclusive bool           `json:"tax_inclusive,omitempty"`
	Total        int64          `json:"total"`
	TaxClass     string         `json:"tax_class,omitempty"`
}

// LineDiscount is one promotion's share of a line's discount.
type LineDiscount struct {
	PromotionID string `json:"promotion_id"`
	Version     int64  `json:"version"`
	Amount      int64  `json:"amount"`
}

func (l QuoteLine) breakdown(inclusive bool) Breakdown {
	b := Breakdown{UnitPrice: l.Price.Amount(), Quantity: l.Quantity, Subtotal: l.Subtotal.Amount(),
		Discount: l.Discount.Amount(), Tax: l.Tax.Amount(), TaxInclusive: inclusive, Total: l.Total.Amount(), TaxClass: l.TaxClass}
	if len(l.Discounts) > 0 {
		b.Discounts = make([]LineDiscount, 0, len(l.Discounts))
	}
	for _, d := range l.Discounts {
		b.Discounts = append(b.Discounts, LineDiscount{PromotionID: d.PromotionID, Version: d.Version, Amount: d.Amount.Amount()})
	}
	return b
}

// Stage is one step of the quote: it reads and amends q. Stages run in
// order; an error stops the quote (an *errs.Error reaches the client).
type Stage interface {
	Apply(ctx context.Context, q *Quote) error
}

// StageFunc is a Stage as a function.
type StageFunc func(ctx context.Context, q *Quote) error

// Apply implements Stage.
func (f StageFunc) Apply(ctx context.Context, q *Quote) error { return f(ctx, q) }

// Pipeline is the quote's stages, in order.
type Pipeline []Stage

// DefaultPipeline is subtotal → the pricing engine's Discounts → Shipping
// (flat, the fallback while the input has no shipping table) → Tax →
// Totals.
func DefaultPipeline(flat FlatShipping) Pipeline {
	return Pipeline{StageFunc(Subtotal), StageFunc(Discounts), ShippingStage{Flat: flat}, StageFunc(Tax), StageFunc(Total)}
}

// Run prices lines (each a catalog variant and a quantity) through p with
// in: the currency, the method, the customer, the address, the coupons and
// the rule sets. in.Lines is built from lines.
func (p Pipeline) Run(ctx context.Context, in pricing.Input, lines []QuoteLine) (Quote, error) {
	cur := in.Currency
	in.Lines = make([]pricing.Line, len(lines))
	for i, l := range lines {
		in.Lines[i] = pricing.Line{SKU: l.SKU, ProductID: l.ProductID, CategoryIDs: l.CategoryIDs, Quantity: int64(l.Quantity),
			UnitPrice: l.Price, WeightGrams: l.WeightGrams, TaxClass: l.TaxClass}
	}
	zero := money.Zero(cur) // a value: one currency look-up for all
	q := Quote{Currency: cur, ShippingMethod: in.ShippingMethod, Lines: lines, Subtotal: zero,
		Discount: zero, Shipping: zero, ShippingDiscount: zero, Tax: zero, Total: zero, Input: in}
	for _, st := range p {
		if err := st.Apply(ctx, &q); err != nil {
			return Quote{}, err
		}
	}
	return q, nil
}

func moneyErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return errs.E(op, errs.Invalid, errs.Code("amount_out_of_range"), "the amounts of this cart are out of range", err)
}

// Subtotal prices each line (unit price × quantity) and sums them. A line
// in another currency than the quote's is 422 currency_mismatch.
func Subtotal(_ context.Context, q *Quote) error {
	const op = "orders.Subtotal"
	zero := money.Zero(q.Currency)
	sum := zero
	for i := range q.Lines {
		l := &q.Lines[i]
		if l.Price.Currency() != q.Currency {
			return errs.E(op, errs.Invalid, errs.Code("currency_mismatch"), "a cart holds prices of one currency only",
				[]errs.FieldError{{Field: "sku", Message: l.SKU + " is priced in " + l.Price.Currency() + ", the cart in " + q.Currency}})
		}
		sub, err := l.Price.Mul(int64(l.Quantity))
		if err != nil {
			return moneyErr(op, err)
		}
		l.Subtotal, l.Discount, l.Tax, l.Total = sub, zero, zero, sub
		if sum, err = sum.Add(sub); err != nil {
			return moneyErr(op, err)
		}
	}
	q.Subtotal = sum
	return nil
}

// Discounts is the engine's discount stage (pricing.Discounts): the
// promotions of q.Input that apply, each line's share. Coupons that cannot
// apply are kept in q.CouponErr, not returned.
func Discounts(_ context.Context, q *Quote) error {
	d, err := pricing.Discounts(q.Input)
	if err != nil {
		return errs.E("orders.Discounts", err)
	}
	q.discounted = d
	q.Discount, q.Promotions, q.Coupons, q.CouponErr = d.Total, d.Applied, d.Coupons, d.CouponErr
	for i := range q.Lines {
		q.Lines[i].Discount, q.Lines[i].Discounts = d.PerLine[i], d.Lines[i]
	}
	return nil
}

// ShippingStage prices the chosen method with the engine's Shipping stage
// over q.Input.Shipping; while that table has no zones, Flat prices the
// one flat method (a free-shipping promotion waives it too).
type ShippingStage struct{ Flat FlatShipping }

// Apply implements Stage.
func (st ShippingStage) Apply(ctx context.Context, q *Quote) error {
	const op = "orders.Shipping"
	if len(q.Input.Shipping.Zones) > 0 {
		s, err := pricing.Shipping(q.Input, q.discounted)
		if err != nil {
			return errs.E(op, err)
		}
		q.shipped, q.Shipping, q.ShippingDiscount = s, s.Charged, s.Discount
		return nil
	}
	price, err := st.Flat.price(q)
	if err != nil {
		return err
	}
	s := pricing.Shipped{Method: q.ShippingMethod, Price: price, Discount: money.Zero(q.Currency), Charged: price}
	if d := q.discounted; d.FreeShipping >= 0 && d.FreeShipping < len(d.Applied) && price.Amount() > 0 {
		off := price.Amount()
		for _, p := range q.Input.Promotions {
			if p.ID == d.Applied[d.FreeShipping].ID && p.BudgetLeft != nil {
				off = min(off, p.BudgetLeft.Amount())
			}
		}
		s.Discount, s.Charged = money.MustNew(off, q.Currency), money.MustNew(price.Amount()-off, q.Currency)
	}
	q.shipped, q.Shipping, q.ShippingDiscount = s, s.Charged, s.Discount
	return nil
}

// Tax is the engine's tax stage (pricing.Tax) over q.Input.Tax: an
// address in no region of it (or no table) is not taxed.
func Tax(_ context.Context, q *Quote) error {
	t, err := pricing.Tax(q.Input, q.discounted, q.shipped)
	if err != nil {
		return errs.E("orders.Tax", err)
	}
	q.taxed, q.Tax, q.TaxInclusive, q.TaxRegion = t, t.Total, t.Inclusive, t.Region
	for i := range q.Lines {
		q.Lines[i].Tax = t.Lines[i]
	}
	return nil
}

// Total is the engine's Totals stage: each line's total and the order's.
func Total(_ context.Context, q *Quote) error {
	const op = "orders.Total"
	res, err := pricing.Totals(q.Input, q.discounted, q.shipped, q.taxed)
	if err != nil {
		return moneyErr(op, err)
	}
	for i := range q.Lines {
		q.Lines[i].Total = res.Lines[i].Total
	}
	q.Total, q.Promotions = res.Total, res.Promotions
	return nil
}

// FlatShipping is one flat-rate method: Amount minor units, free when the
// subtotal after discounts reaches FreeOver (never when FreeOver < 0). An
// empty quote, or one with no method chosen, ships for nothing.
type FlatShipping struct {
	Method   string
	Amount   int64
	FreeOver int64
}

// price is f's price for q. A quote asking for another method is 422.
func (f FlatShipping) price(q *Quote) (money.Money, error) {
	const op = "orders.FlatShipping"
	if q.ShippingMethod == "" {
		return money.Zero(q.Currency), nil
	}
	if q.ShippingMethod != f.Method {
		return money.Money{}, errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "shipping_method", Message: "must be " + f.Method}})
	}
	goods := q.Subtotal.Amount() - q.Discount.Amount()
	if len(q.Lines) == 0 || f.FreeOver >= 0 && goods >= f.FreeOver {
		return money.Zero(q.Currency), nil
	}
	m, err := money.New(f.Amount, q.Currency)
	if err != nil {
		return money.Money{}, errs.E(op, errs.Internal, err)
	}
	return m, nil
}
