package pricing

import (
	"time"

	"mercato/internal/money"
)

// Line is one cart line as the catalog prices it: the unit price is the
// server's (never the client's), the weight is per unit.
type Line struct {
	SKU         string      `json:"sku"`
	ProductID   string      `json:"product_id"`
	CategoryIDs []string    `json:"category_ids,omitempty"`
	Quantity    int64       `json:"quantity"`
	UnitPrice   money.Money `json:"unit_price"`
	WeightGrams int64       `json:"weight_grams"` // per unit, ≥ 0
	TaxClass    string      `json:"tax_class"`    // "" is DefaultTaxClass
}

// Customer is what the promotions' conditions may ask about the buyer.
type Customer struct {
	ID         string   `json:"id,omitempty"` // "" for a guest
	Groups     []string `json:"groups,omitempty"`
	FirstOrder bool     `json:"first_order"`
}

// Address is where the order ships to and is taxed. Country is an ISO 3166
// alpha-2 code, Region a subdivision code ("" when none is known).
type Address struct {
	Country    string `json:"country"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
}

// Input is everything a quote is computed from: the engine reads no clock,
// no database and no configuration beyond it, so one Input always gives the
// same Quote.
type Input struct {
	Currency       string    `json:"currency"` // the cart's currency; every line is priced in it
	Lines          []Line    `json:"lines"`
	Customer       Customer  `json:"customer"`
	Channel        string    `json:"channel,omitempty"`
	Address        Address   `json:"address"`
	ShippingMethod string    `json:"shipping_method,omitempty"` // "" while none is chosen: no shipping charged
	Coupons        []string  `json:"coupons,omitempty"`
	Now            time.Time `json:"now"`

	Promotions []Promotion   `json:"promotions,omitempty"`
	Shipping   ShippingTable `json:"shipping"`
	Tax        TaxTable      `json:"tax"`
}

// LineDiscount is one promotion's share of the discount on one line.
type LineDiscount struct {
	PromotionID string      `json:"promotion_id"`
	Version     int64       `json:"version"`
	Amount      money.Money `json:"amount"`
}

// LineQuote is one line of a quote. Total is Subtotal − Discount + Tax when
// prices exclude tax and Subtotal − Discount when they include it (Tax is
// then the part of the total that is tax).
type LineQuote struct {
	SKU       string         `json:"sku"`
	Subtotal  money.Money    `json:"subtotal"`
	Discounts []LineDiscount `json:"discounts"`
	Discount  money.Money    `json:"discount"`
	Tax       money.Money    `json:"tax"`
	Total     money.Money    `json:"total"`
}

// AppliedPromotion is a promotion the quote applied, with the version that
// was priced and the discount it gave (Amount on the lines, Shipping on the
// shipping price).
type AppliedPromotion struct {
	ID       string      `json:"id"`
	Version  int64       `json:"version"`
	Code     string      `json:"code,omitempty"`
	Amount   money.Money `json:"amount"`
	Shipping money.Money `json:"shipping"`
}

// The coupon outcomes. All but CouponApplied are also the stable error codes
// of the Invalid error Quote returns when an entered coupon cannot apply.
const (
	CouponApplied       = "applied"
	CouponUnknown       = "coupon_unknown"
	CouponExpired       = "coupon_expired"
	CouponNotApplicable = "coupon_not_applicable"
	CouponExhausted     = "coupon_exhausted"
)

// CouponOutcome is what became of one entered coupon code.
type CouponOutcome struct {
	Code        string `json:"code"`
	Outcome     string `json:"outcome"`
	PromotionID string `json:"promotion_id,omitempty"`
}

// Quotation is the priced cart, what Quote returns (a type cannot share the
// function's name). Invariants, property-tested:
//
//	Σ lines' Discount = Discount;  Σ lines' Tax + ShippingTax = Tax
//	exclusive: Total = Subtotal − Discount + Shipping + Tax
//	inclusive: Total = Subtotal − Discount + Shipping (Tax is inside it)
//
// Shipping is what is charged for shipping after ShippingDiscount (a
// free-shipping promotion) was taken off the method's price.
type Quotation struct {
	Currency         string             `json:"currency"`
	Lines            []LineQuote        `json:"lines"`
	Subtotal         money.Money        `json:"subtotal"`
	Discount         money.Money        `json:"discount"`
	ShippingMethod   string             `json:"shipping_method,omitempty"`
	ShippingZone     string             `json:"shipping_zone,omitempty"`
	ShippingDiscount money.Money        `json:"shipping_discount"`
	Shipping         money.Money        `json:"shipping"`
	ShippingTax      money.Money        `json:"shipping_tax"`
	Tax              money.Money        `json:"tax"`
	TaxInclusive     bool               `json:"tax_inclusive"`
	Total            money.Money        `json:"total"`
	Promotions       []AppliedPromotion `json:"promotions"`
	ShippingVersion  int64              `json:"shipping_version"`
	TaxVersion       int64              `json:"tax_version"`
	TaxRegion        string             `json:"tax_region,omitempty"` // "FR" or "US-CA"; "" when no region matched
	Coupons          []CouponOutcome    `json:"coupons"`
}
