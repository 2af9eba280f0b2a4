package orders

import (
	"context"
	"net/http"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
	"mercato/internal/pricing"
)

// QuoteAnswer is POST /api/v1/carts/{id}/quote's answer: the cart priced
// as checkout would price it for an address and method, checked against
// the region rules, nothing written.
type QuoteAnswer struct {
	CartID         string                  `json:"cart_id"`
	Currency       string                  `json:"currency"`
	ShippingMethod string                  `json:"shipping_method"`
	Lines          []QuotedLine            `json:"lines"`
	Subtotal       money.Money             `json:"subtotal"`
	Discount       money.Money             `json:"discount"`
	Shipping       money.Money             `json:"shipping"`
	Tax            money.Money             `json:"tax"`
	Total          money.Money             `json:"total"`
	Coupons        []pricing.CouponOutcome `json:"coupons"`
	PricedWith     PricedWith              `json:"priced_with"`
}

// QuotedLine is one line of a QuoteAnswer.
type QuotedLine struct {
	SKU       string    `json:"sku"`
	Title     string    `json:"title"`
	Breakdown Breakdown `json:"breakdown"`
}

func (s *Service) quoteRoute() web.Route {
	return web.Route{Method: "POST", Path: "/api/v1/carts/{id}/quote", Summary: "Price a cart for an address", Tag: "orders",
		Access: web.Public, Request: CheckoutRequest{}, Response: QuoteAnswer{}, Handler: s.handleQuote,
		Description: "The checkout's body; the answer is what checkout would charge, with the region rules checked " +
			"(422 region_restricted, limit_exceeded, identity_required; coupons that cannot apply: their 422 code). Nothing is written."}
}

// QuoteTx prices cart id for in as CheckoutTx would (every line must be
// sellable, the coupons must apply) and checks the region rules; nothing is
// written and nothing reserved.
func (s *Service) QuoteTx(ctx context.Context, tx *sqldb.Tx, caller Caller, id string, in CheckoutRequest) (QuoteAnswer, error) {
	const op = "orders.Quote"
	if err := in.validate(); err != nil {
		return QuoteAnswer{}, err
	}
	if in.ShippingMethod == "" {
		in.ShippingMethod = "standard"
	}
	c, err := loadCartTx(ctx, tx, caller, id)
	if err != nil {
		return QuoteAnswer{}, err
	}
	if err := c.open(); err != nil {
		return QuoteAnswer{}, err
	}
	codes, err := in.coupons(c)
	if err != nil {
		return QuoteAnswer{}, err
	}
	q, err := s.strictQuoteTx(ctx, tx, c, quoteArgs{caller: caller, method: in.ShippingMethod, address: in.ShippingAddress, coupons: codes.all})
	if err != nil {
		return QuoteAnswer{}, err
	}
	if err := codes.refused(op, q); err != nil {
		return QuoteAnswer{}, err
	}
	out := QuoteAnswer{CartID: c.id, Currency: q.Currency, ShippingMethod: q.ShippingMethod, Lines: []QuotedLine{},
		Subtotal: q.Subtotal, Discount: q.Discount, Shipping: q.Shipping, Tax: q.Tax, Total: q.Total,
		Coupons: q.Coupons, PricedWith: pricedWith(q, codes.all)}
	if out.Coupons == nil {
		out.Coupons = []pricing.CouponOutcome{}
	}
	if s.rules != nil {
		v, err := s.rules.CheckTx(ctx, tx, regionCheck(c, q, in.ShippingAddress, in.Identity != nil))
		if err != nil {
			return QuoteAnswer{}, errs.E(op, err)
		}
		out.PricedWith.RulesVersion = v
	}
	for _, l := range q.Lines {
		out.Lines = append(out.Lines, QuotedLine{SKU: l.SKU, Title: l.Title, Breakdown: l.breakdown(q.TaxInclusive)})
	}
	return out, nil
}

func (s *Service) handleQuote(w http.ResponseWriter, r *http.Request) {
	var in CheckoutRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	c := callerOf(r)
	s.view(w, r, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return s.QuoteTx(ctx, tx, c, r.PathValue("id"), in)
	})
}
