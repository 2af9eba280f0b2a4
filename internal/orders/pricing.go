package orders

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/pricing"
)

// Promotions is the promotions module as the quote and checkout use it:
// ActiveTx gives the promotions that may apply (automatic ones and those of
// the entered codes, with their remaining limits for the customer), and
// RedeemTx counts what a placed order applied against the limits with
// conditional writes (a limit hit is Conflict coupon_exhausted and fails
// the checkout unit whole).
type Promotions interface {
	ActiveTx(ctx context.Context, tx *sqldb.Tx, now time.Time, codes []string, customerID string) ([]pricing.Promotion, error)
	RedeemTx(ctx context.Context, tx *sqldb.Tx, orderRef, customerID string, applied []pricing.AppliedPromotion) error
}

// Rates gives the current shipping and tax tables, read in tx. A table
// never saved has Version 0 and no entries: the quote then keeps the flat
// standard shipping and charges no tax. ShippingCurrency is the shipping
// table's currency; a cart in another one ships at the flat rate.
type Rates interface {
	TablesTx(ctx context.Context, tx *sqldb.Tx) (RateTables, error)
}

// TableCurrency is the currency of a shipping table's prices ("" for a
// table without zones): every price of a valid table is in one currency.
func TableCurrency(t pricing.ShippingTable) string {
	for _, z := range t.Zones {
		for _, r := range z.Rates {
			if r.Price != nil {
				return r.Price.Currency()
			}
			for _, b := range r.Brackets {
				return b.Price.Currency()
			}
			if r.FreeFrom != nil {
				return r.FreeFrom.Currency()
			}
		}
	}
	return ""
}

// RateTables are the rate tables a quote is priced with.
type RateTables struct {
	Shipping         pricing.ShippingTable
	ShippingCurrency string
	Tax              pricing.TaxTable
}

// MaxCoupons is how many coupon codes a cart holds; MaxCouponLen bounds one.
const (
	MaxCoupons   = 5
	MaxCouponLen = 64
)

// PricedWith is what an order was priced and checked with: the promotions
// applied (ID, version, code, amounts), the versions of the rate tables and
// region rules, and the tax facts a document shows.
type PricedWith struct {
	Promotions       []AppliedPromotion `json:"promotions"`
	Coupons          []string           `json:"coupons,omitempty"`
	ShippingVersion  int64              `json:"shipping_version"`
	TaxVersion       int64              `json:"tax_version"`
	RulesVersion     int64              `json:"rules_version" doc:"The region rules (compliance) version checked."`
	TaxRegion        string             `json:"tax_region,omitempty"`
	TaxInclusive     bool               `json:"tax_inclusive"`
	ShippingDiscount int64              `json:"shipping_discount"`
	TaxIncluded      int64              `json:"tax_included" doc:"With tax_inclusive: the tax inside the prices (the document's tax)."`
}

// AppliedPromotion is one promotion an order applied.
type AppliedPromotion struct {
	ID       string `json:"id"`
	Version  int64  `json:"version"`
	Code     string `json:"code,omitempty"`
	Amount   int64  `json:"amount"`
	Shipping int64  `json:"shipping"`
}

func pricedWith(q Quote, coupons []string) PricedWith {
	p := PricedWith{Promotions: []AppliedPromotion{}, Coupons: coupons, ShippingVersion: q.Input.Shipping.Version,
		TaxVersion: q.Input.Tax.Version, TaxRegion: q.TaxRegion, TaxInclusive: q.TaxInclusive,
		ShippingDiscount: q.ShippingDiscount.Amount()}
	if q.TaxInclusive {
		p.TaxIncluded = q.Tax.Amount()
	}
	for _, a := range q.Promotions {
		p.Promotions = append(p.Promotions, AppliedPromotion{ID: a.ID, Version: a.Version, Code: a.Code,
			Amount: a.Amount.Amount(), Shipping: a.Shipping.Amount()})
	}
	return p
}

// quoteArgs is what a quote is asked for beyond the cart's lines.
type quoteArgs struct {
	caller  Caller
	method  string
	address *Address // nil: none known (no tax, no zone)
	coupons []string
}

// inputTx builds the engine's input for cart c in tx: the customer's facts,
// the channel, the address, the method, the coupons, the promotions and the
// rate tables.
func (s *Service) inputTx(ctx context.Context, tx *sqldb.Tx, c *cartRow, cur string, a quoteArgs) (pricing.Input, error) {
	const op = "orders.quote"
	in := pricing.Input{Currency: cur, Channel: a.caller.Channel, ShippingMethod: a.method, Coupons: a.coupons, Now: tx.Now,
		Customer: pricing.Customer{ID: c.customerID}}
	if a.address != nil {
		in.Address = pricing.Address{Country: a.address.Country, Region: a.address.Region, PostalCode: a.address.PostalCode}
	}
	if s.promos != nil {
		ps, err := s.promos.ActiveTx(ctx, tx, tx.Now, a.coupons, c.customerID)
		if err != nil {
			return pricing.Input{}, errs.E(op, err)
		}
		in.Promotions = ps
		if c.customerID != "" && slices.ContainsFunc(ps, func(p pricing.Promotion) bool { return p.FirstOrderOnly }) {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM orders_orders WHERE customer_id = $1
				AND status NOT IN ('cancelled', 'expired')`, c.customerID).Scan(&n); err != nil {
				return pricing.Input{}, errs.E(op, errs.Internal, err)
			}
			in.Customer.FirstOrder = n == 0
		}
	}
	if s.rates != nil {
		t, err := s.rates.TablesTx(ctx, tx)
		if err != nil {
			return pricing.Input{}, errs.E(op, err)
		}
		if t.ShippingCurrency == cur {
			in.Shipping = t.Shipping
		}
		in.Tax = t.Tax
	}
	return in, nil
}

// normCoupon is a code as carts store it: trimmed, upper case.
func normCoupon(code string) string { return strings.ToUpper(strings.TrimSpace(code)) }

// decodeCoupons reads a cart's stored codes.
func decodeCoupons(raw string) []string {
	var cs []string
	if raw != "" {
		json.Unmarshal([]byte(raw), &cs)
	}
	return cs
}

// applyPricing sets the document fields an order derives from its stored
// pricing record and identity (store.go's scanOrder calls it).
func (o *Order) applyPricing(rec, identity *string) error {
	if rec != nil && *rec != "" {
		var p PricedWith
		if err := json.Unmarshal([]byte(*rec), &p); err != nil {
			return err
		}
		o.PricedWith = &p
		if p.TaxInclusive {
			o.Tax = money.MustNew(p.TaxIncluded, o.Currency)
		}
	}
	if identity != nil && *identity != "" {
		var id StoredIdentity
		if err := json.Unmarshal([]byte(*identity), &id); err != nil {
			return err
		}
		o.Identity = &id
	}
	return nil
}
