package orders

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
	"mercato/internal/pricing"
)

// CouponRequest is POST /api/v1/carts/{id}/coupons's body.
type CouponRequest struct {
	Code string `json:"code" maxlen:"64" doc:"Trimmed, case-insensitive."`
}

// ShippingMethods is GET /api/v1/carts/{id}/shipping-methods's answer.
type ShippingMethods struct {
	Currency        string                 `json:"currency"`
	ShippingVersion int64                  `json:"shipping_version" doc:"0: no rates table, the flat standard method."`
	Methods         []pricing.MethodOption `json:"methods" doc:"{method, price, zone} for this cart and address."`
}

func (s *Service) pricingRoutes() []web.Route {
	const tag = "orders"
	guest := "A guest sends the cart token as `X-Cart-Token`; a cart that is not the caller's is 404."
	return []web.Route{
		{Method: "POST", Path: "/api/v1/carts/{id}/coupons", Summary: "Enter a coupon code", Tag: tag, Access: web.Public,
			Description: guest + " A code that cannot apply now is 422 coupon_unknown, coupon_expired, coupon_not_applicable or coupon_exhausted and is not stored; at most 5 codes.",
			Request:     CouponRequest{}, Response: Cart{}, Handler: s.handleAddCoupon},
		{Method: "DELETE", Path: "/api/v1/carts/{id}/coupons/{code}", Summary: "Remove a coupon code", Tag: tag, Access: web.Public,
			Description: guest + " Removing a code not entered is not an error.", Response: Cart{}, Handler: s.handleRemoveCoupon},
		{Method: "GET", Path: "/api/v1/carts/{id}/shipping-methods", Summary: "The shipping methods for this cart and an address", Tag: tag,
			Access: web.Public, Query: []string{"country", "region", "postal_code"},
			Description: guest + " `country` (ISO 3166-1 alpha-2) is required; priced for the cart's discounted subtotal and weight.",
			Response:    ShippingMethods{}, Handler: s.handleShippingMethods},
		s.quoteRoute(),
	}
}

// AddCouponTx enters code on cart id: it is stored only when it applies to
// the cart now (the engine's coupon code otherwise, 422).
func (s *Service) AddCouponTx(ctx context.Context, tx *sqldb.Tx, caller Caller, id, code string) (Cart, error) {
	const op = "orders.AddCoupon"
	code = normCoupon(code)
	if code == "" || len(code) > MaxCouponLen {
		return Cart{}, errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "code", Message: "must be 1 to 64 characters"}})
	}
	c, err := loadCartTx(ctx, tx, caller, id)
	if err != nil {
		return Cart{}, err
	}
	if err := c.open(); err != nil {
		return Cart{}, err
	}
	for _, have := range c.coupons {
		if have == code {
			return s.viewCartTx(ctx, tx, c)
		}
	}
	if len(c.coupons) >= MaxCoupons {
		return Cart{}, errs.E(op, errs.Invalid, errs.CodeLimitExceeded, "a cart holds at most 5 coupon codes",
			[]errs.FieldError{{Field: "code", Message: "remove a code first"}})
	}
	c.coupons = append(c.coupons, code)
	out, err := s.viewCartTx(ctx, tx, c)
	if err != nil {
		return Cart{}, err
	}
	for _, co := range out.Coupons {
		if normCoupon(co.Code) == code && co.Outcome != pricing.CouponApplied {
			return Cart{}, errs.E(op, errs.Invalid, errs.Code(co.Outcome), "this coupon cannot apply to the cart",
				[]errs.FieldError{{Field: "code", Message: couponMessage(co.Outcome)}})
		}
	}
	if err := s.saveCoupons(ctx, tx, c); err != nil {
		return Cart{}, err
	}
	return out, nil
}

// checkoutCoupons is what a checkout (or its quote) applies: the codes
// entered on the cart, then those of the request's coupon_codes not among
// them, normalised as POST …/coupons does (trimmed, upper case, each once).
// from[i] is the index in coupon_codes of all[i], -1 for a cart's code; from
// is nil when the request gave none (the checkout as it always was).
type checkoutCoupons struct {
	all  []string
	from []int
}

// coupons combines cart c's codes with in's (in.validate has bounded and
// checked each); more than MaxCoupons in all is 422 limit_exceeded, the
// limit of a cart's coupon endpoint.
func (in CheckoutRequest) coupons(c *cartRow) (checkoutCoupons, error) {
	if len(in.CouponCodes) == 0 {
		return checkoutCoupons{all: c.coupons}, nil
	}
	out := checkoutCoupons{all: make([]string, 0, len(c.coupons)+len(in.CouponCodes)), from: make([]int, 0, len(c.coupons)+len(in.CouponCodes))}
	for _, code := range c.coupons {
		out.all, out.from = append(out.all, code), append(out.from, -1)
	}
	for i, code := range in.CouponCodes {
		if code = normCoupon(code); !slices.Contains(out.all, code) {
			out.all, out.from = append(out.all, code), append(out.from, i)
		}
	}
	if len(out.all) > MaxCoupons {
		return checkoutCoupons{}, errs.E("orders.Checkout", errs.Invalid, errs.CodeLimitExceeded, "a cart holds at most 5 coupon codes",
			[]errs.FieldError{{Field: "coupon_codes", Message: "at most 5 codes with those entered on the cart"}})
	}
	return out, nil
}

// refused is q's coupon error (nil when every code applies): the engine's
// code (coupon_unknown, coupon_expired, coupon_not_applicable,
// coupon_exhausted: the first refused), each refused code named by its
// field, coupon_codes.i for the request's and coupons[i] for the cart's.
func (cc checkoutCoupons) refused(op string, q Quote) error {
	if q.CouponErr == nil {
		return nil
	}
	if cc.from == nil {
		return errs.E(op, q.CouponErr)
	}
	var fields []errs.FieldError
	for i, co := range q.Coupons {
		if co.Outcome == pricing.CouponApplied {
			continue
		}
		field := "coupons[" + strconv.Itoa(i) + "]"
		if i < len(cc.from) && cc.from[i] >= 0 {
			field = "coupon_codes." + strconv.Itoa(cc.from[i])
		}
		fields = append(fields, errs.FieldError{Field: field, Message: co.Outcome + ": " + couponMessage(co.Outcome)})
	}
	return errs.E(op, errs.Invalid, errs.CodeOf(q.CouponErr), "a coupon entered cannot apply", fields)
}

func couponMessage(outcome string) string {
	switch outcome {
	case pricing.CouponUnknown:
		return "no such coupon"
	case pricing.CouponExpired:
		return "this coupon has expired"
	case pricing.CouponExhausted:
		return "this coupon has no uses left"
	}
	return "this coupon does not apply to this cart"
}

// RemoveCouponTx removes code from cart id.
func (s *Service) RemoveCouponTx(ctx context.Context, tx *sqldb.Tx, caller Caller, id, code string) (Cart, error) {
	c, err := loadCartTx(ctx, tx, caller, id)
	if err != nil {
		return Cart{}, err
	}
	if err := c.open(); err != nil {
		return Cart{}, err
	}
	code = normCoupon(code)
	kept := []string{}
	for _, have := range c.coupons {
		if have != code {
			kept = append(kept, have)
		}
	}
	if len(kept) != len(c.coupons) {
		c.coupons = kept
		if err := s.saveCoupons(ctx, tx, c); err != nil {
			return Cart{}, err
		}
	}
	return s.viewCartTx(ctx, tx, c)
}

func (s *Service) saveCoupons(ctx context.Context, tx *sqldb.Tx, c *cartRow) error {
	if c.coupons == nil {
		c.coupons = []string{}
	}
	b, _ := json.Marshal(c.coupons)
	if _, err := tx.ExecContext(ctx, `UPDATE orders_carts SET coupons = $1, updated_at = $2 WHERE id = $3 AND status = 'open'`,
		string(b), sqldb.Micros(tx.Now), c.id); err != nil {
		return errs.E("orders.coupons", errs.Internal, err)
	}
	c.updatedAt = tx.Now
	return nil
}

// ShippingMethodsTx lists the methods addr can have for cart id, priced for
// the cart's discounted subtotal and weight.
func (s *Service) ShippingMethodsTx(ctx context.Context, tx *sqldb.Tx, caller Caller, id string, addr Address) (ShippingMethods, error) {
	const op = "orders.ShippingMethods"
	var v errs.Validation
	v.Check(len(addr.Country) == 2 && strings.ToUpper(addr.Country) == addr.Country, "country", "must be an ISO 3166-1 alpha-2 code in upper case")
	v.Check(len(addr.Region) <= 100 && len(addr.PostalCode) <= 20, "region", "is too long")
	if err := v.Err(op); err != nil {
		return ShippingMethods{}, err
	}
	c, err := loadCartTx(ctx, tx, caller, id)
	if err != nil {
		return ShippingMethods{}, err
	}
	view, err := s.viewCartTx(ctx, tx, c)
	if err != nil {
		return ShippingMethods{}, err
	}
	in, err := s.inputTx(ctx, tx, c, view.Currency, quoteArgs{caller: caller, address: &addr})
	if err != nil {
		return ShippingMethods{}, err
	}
	net, err := view.Subtotal.Sub(view.Discount)
	if err != nil {
		return ShippingMethods{}, moneyErr(op, err)
	}
	out := ShippingMethods{Currency: view.Currency, ShippingVersion: in.Shipping.Version, Methods: []pricing.MethodOption{}}
	if len(in.Shipping.Zones) == 0 {
		q := Quote{Currency: view.Currency, ShippingMethod: "standard", Subtotal: view.Subtotal, Discount: view.Discount}
		if view.ItemCount > 0 {
			q.Lines = []QuoteLine{{}}
		}
		p, err := s.flat.price(&q)
		if err != nil {
			return ShippingMethods{}, err
		}
		out.Methods = append(out.Methods, pricing.MethodOption{Method: "standard", Price: p})
		return out, nil
	}
	var grams int64
	vars, err := s.catalog.VariantsTx(ctx, tx, skusOf(c))
	if err != nil {
		return ShippingMethods{}, errs.E(op, err)
	}
	for _, l := range c.lines {
		grams += vars[l.SKU].WeightGrams * int64(l.Quantity)
	}
	out.Methods = append(out.Methods, in.Shipping.Methods(pricing.Cart{Subtotal: net, WeightGrams: grams}, in.Address)...)
	return out, nil
}

func skusOf(c *cartRow) []string {
	out := make([]string, len(c.lines))
	for i, l := range c.lines {
		out[i] = l.SKU
	}
	return out
}

func (s *Service) handleAddCoupon(w http.ResponseWriter, r *http.Request) {
	var in CouponRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	c := callerOf(r)
	s.run(w, r, http.StatusOK, c, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return s.AddCouponTx(ctx, tx, c, r.PathValue("id"), in.Code)
	})
}

func (s *Service) handleRemoveCoupon(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	s.do(w, r, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return s.RemoveCouponTx(ctx, tx, c, r.PathValue("id"), r.PathValue("code"))
	})
}

func (s *Service) handleShippingMethods(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	q := r.URL.Query()
	addr := Address{Country: q.Get("country"), Region: q.Get("region"), PostalCode: q.Get("postal_code")}
	s.view(w, r, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return s.ShippingMethodsTx(ctx, tx, c, r.PathValue("id"), addr)
	})
}
