package orders

import (
	"context"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
)

// Quote is a priced cart: its lines with their breakdown and the totals.
// Every amount is in Currency; prices come from the Catalog, never from a
// client.
type Quote struct {
	Currency       string
	ShippingMethod string
	Lines          []QuoteLine
	Subtotal       money.Money
	Discount       money.Money
	Shipping       money.Money
	Tax            money.Money
	Total          money.Money
}

// QuoteLine is one priced line and its share of each stage.
type QuoteLine struct {
	Variant
	Quantity int
	// Subtotal is Price × Quantity; Discount and Tax are this line's
	// shares; Total = Subtotal - Discount + Tax.
	Subtotal, Discount, Tax, Total money.Money
}

// Breakdown is a line's price breakdown as it is stored with an order.
type Breakdown struct {
	UnitPrice int64  `json:"unit_price"`
	Quantity  int    `json:"quantity"`
	Subtotal  int64  `json:"subtotal"`
	Discount  int64  `json:"discount"`
	Tax       int64  `json:"tax"`
	Total     int64  `json:"total"`
	TaxClass  string `json:"tax_class,omitempty"`
}

func (l QuoteLine) breakdown() Breakdown {
	return Breakdown{UnitPrice: l.Price.Amount(), Quantity: l.Quantity, Subtotal: l.Subtotal.Amount(),
		Discount: l.Discount.Amount(), Tax: l.Tax.Amount(), Total: l.Total.Amount(), TaxClass: l.TaxClass}
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

// DefaultPipeline is subtotal → discounts (none yet) → shipping → tax
// (zero) → total.
func DefaultPipeline(shipping Stage) Pipeline {
	return Pipeline{StageFunc(Subtotal), StageFunc(NoDiscounts), shipping, StageFunc(ZeroTax), StageFunc(Total)}
}

// Run prices lines (each a catalog variant and a quantity, in currency)
// through p.
func (p Pipeline) Run(ctx context.Context, currency, method string, lines []QuoteLine) (Quote, error) {
	q := Quote{Currency: currency, ShippingMethod: method, Lines: lines, Subtotal: money.Zero(currency),
		Discount: money.Zero(currency), Shipping: money.Zero(currency), Tax: money.Zero(currency), Total: money.Zero(currency)}
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
	sum := money.Zero(q.Currency)
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
		l.Subtotal, l.Discount, l.Tax, l.Total = sub, money.Zero(q.Currency), money.Zero(q.Currency), sub
		if sum, err = sum.Add(sub); err != nil {
			return moneyErr(op, err)
		}
	}
	q.Subtotal = sum
	return nil
}

// NoDiscounts is the discount stage until promotions plug in: nothing off.
func NoDiscounts(_ context.Context, q *Quote) error {
	q.Discount = money.Zero(q.Currency)
	return nil
}

// ZeroTax is the tax stage until tax rules plug in: no tax.
func ZeroTax(_ context.Context, q *Quote) error {
	q.Tax = money.Zero(q.Currency)
	return nil
}

// Total sums the stages: subtotal - discount + shipping + tax, and each
// line's total.
func Total(_ context.Context, q *Quote) error {
	const op = "orders.Total"
	t, err := q.Subtotal.Sub(q.Discount)
	if err == nil {
		t, err = t.Add(q.Shipping)
	}
	if err == nil {
		t, err = t.Add(q.Tax)
	}
	if err != nil {
		return moneyErr(op, err)
	}
	for i := range q.Lines {
		l := &q.Lines[i]
		lt, err := l.Subtotal.Sub(l.Discount)
		if err == nil {
			lt, err = lt.Add(l.Tax)
		}
		if err != nil {
			return moneyErr(op, err)
		}
		l.Total = lt
	}
	q.Total = t
	return nil
}

// FlatShipping is one flat-rate method: Amount minor units, free when the
// subtotal after discounts reaches FreeOver (never when FreeOver < 0). An
// empty quote ships for nothing.
type FlatShipping struct {
	Method   string
	Amount   int64
	FreeOver int64
}

// Apply implements Stage. A quote asking for another method is 422.
func (f FlatShipping) Apply(_ context.Context, q *Quote) error {
	const op = "orders.FlatShipping"
	if q.ShippingMethod != f.Method {
		return errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "shipping_method", Message: "must be " + f.Method}})
	}
	goods := q.Subtotal.Amount() - q.Discount.Amount()
	if len(q.Lines) == 0 || f.FreeOver >= 0 && goods >= f.FreeOver {
		q.Shipping = money.Zero(q.Currency)
		return nil
	}
	m, err := money.New(f.Amount, q.Currency)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	q.Shipping = m
	return nil
}
