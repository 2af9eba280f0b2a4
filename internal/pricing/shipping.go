package pricing

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
)

// The shipping methods.
const (
	MethodStandard = "standard"
	MethodExpress  = "express"
	MethodPickup   = "pickup"
)

// CodeShippingUnavailable is the stable code of the Invalid error for a
// chosen shipping method that the address cannot have.
const CodeShippingUnavailable errs.Code = "shipping_unavailable"

// RateKind is how a rate's price is found.
type RateKind string

// The rate kinds.
const (
	RateFlat     RateKind = "flat"     // Price
	RateWeight   RateKind = "weight"   // the bracket holding the cart's weight in grams
	RateSubtotal RateKind = "subtotal" // the bracket holding the discounted subtotal in minor units
)

// Bracket prices the values From ≤ x < To (To 0: no upper bound).
type Bracket struct {
	From  int64       `json:"from"`
	To    int64       `json:"to,omitempty"`
	Price money.Money `json:"price"`
}

func (b Bracket) holds(x int64) bool { return b.From <= x && (b.To == 0 || x < b.To) }

// Rate is the price of one method in one zone. A cart whose weight or
// subtotal no bracket holds cannot have the method.
type Rate struct {
	Method   string       `json:"method"`
	Kind     RateKind     `json:"kind"`
	Price    *money.Money `json:"price,omitempty"` // RateFlat
	Brackets []Bracket    `json:"brackets,omitempty"`
	// FreeFrom: a discounted subtotal of at least this ships free.
	FreeFrom *money.Money `json:"free_from,omitempty"`
}

// Area is a country, or one region of it when Region is set.
type Area struct {
	Country string `json:"country"`
	Region  string `json:"region,omitempty"`
}

func (a Area) String() string {
	if a.Region == "" {
		return a.Country
	}
	return a.Country + "-" + a.Region
}

// Zone is a set of areas sharing rates. Zones do not overlap (Validate).
type Zone struct {
	ID    string `json:"id"`
	Areas []Area `json:"areas"`
	Rates []Rate `json:"rates"`
}

// ShippingTable is a version of the shipping zones and their rates.
type ShippingTable struct {
	Version int64  `json:"version"`
	Zones   []Zone `json:"zones"`
}

// Cart is what a rate is computed from.
type Cart struct {
	Subtotal    money.Money // after discounts
	WeightGrams int64
}

// MethodOption is a method an address can have, at its price.
type MethodOption struct {
	Method string      `json:"method"`
	Price  money.Money `json:"price"`
	Zone   string      `json:"zone"`
}

// Validate checks the table for currency: known methods and rate kinds,
// prices of at least 0 in currency, brackets that do not overlap, one rate
// per method and zone, and zones that do not overlap (a country in one zone
// and one of its regions in another overlap too). The error is Invalid
// naming each problem's field under "shipping".
func (t ShippingTable) Validate(currency string) error {
	var v problems
	price := func(f *path, sub string, m *money.Money) {
		if m == nil || m.Currency() != currency || m.IsNegative() {
			v.Add(f.String()+sub, "must be an amount of at least 0 in "+currency)
		}
	}
	type seen struct {
		zone, area int
		region     string
	}
	countries := map[string][]seen{}
	zoneIDs := map[string]int{}
	list := root("")
	for zi, z := range t.Zones {
		zf := list.at("shipping.zones", zi)
		v.check(z.ID != "", &zf, ".id", "is required")
		if j, dup := zoneIDs[z.ID]; dup {
			v.Add(zf.String()+".id", fmt.Sprintf("duplicates zones[%d]", j))
		}
		zoneIDs[z.ID] = zi
		for ai, a := range z.Areas {
			af := zf.at(".areas", ai)
			c, r := strings.ToUpper(a.Country), strings.ToUpper(a.Region)
			if len(c) != 2 {
				v.Add(af.String()+".country", "must be an ISO 3166 alpha-2 code")
				continue
			}
			for _, s := range countries[c] {
				if s.region == "" || r == "" || s.region == r {
					v.Add(af.String(), fmt.Sprintf("%s overlaps zones[%d].areas[%d] (%s)", a, s.zone, s.area,
						Area{c, s.region}))
				}
			}
			countries[c] = append(countries[c], seen{zi, ai, r})
		}
		for ri, rt := range z.Rates {
			rf := zf.at(".rates", ri)
			switch rt.Method {
			case MethodStandard, MethodExpress, MethodPickup:
			default:
				v.Add(rf.String()+".method", "must be standard, express or pickup")
			}
			v.check(!slices.ContainsFunc(z.Rates[:ri], func(o Rate) bool { return o.Method == rt.Method }), &rf, ".method",
				"has a second rate in this zone")
			if rt.FreeFrom != nil {
				price(&rf, ".free_from", rt.FreeFrom)
			}
			switch rt.Kind {
			case RateFlat:
				price(&rf, ".price", rt.Price)
			case RateWeight, RateSubtotal:
				validBrackets(&v, &rf, rt.Brackets, price)
			default:
				v.Add(rf.String()+".kind", "must be flat, weight or subtotal")
			}
		}
	}
	return v.Err("pricing.ShippingTable.Validate")
}

// validBrackets reports brackets that are empty or overlap another.
func validBrackets(v *problems, rf *path, bs []Bracket, price func(*path, string, *money.Money)) {
	v.check(len(bs) > 0, rf, ".brackets", "must list at least one bracket")
	order := make([]int, len(bs))
	for i, b := range bs {
		order[i] = i
		bf := rf.at(".brackets", i)
		v.check(b.From >= 0, &bf, ".from", "must not be negative")
		v.check(b.To == 0 || b.To > b.From, &bf, ".to", "must be above from (or 0: no upper bound)")
		price(&bf, ".price", &b.Price)
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(bs[a].From, bs[b].From) })
	for k := 1; k < len(order); k++ {
		prev, cur := bs[order[k-1]], bs[order[k]]
		if prev.To == 0 || cur.From < prev.To {
			v.Add(rf.String()+".brackets["+strconv.Itoa(order[k])+"]",
				fmt.Sprintf("overlaps brackets[%d] (from %d)", order[k-1], prev.From))
		}
	}
}

// ZoneOf returns the zone holding a: the one listing a's region, or a's
// whole country; nil when none does.
func (t ShippingTable) ZoneOf(a Address) *Zone {
	c, r := strings.ToUpper(a.Country), strings.ToUpper(a.Region)
	for zi := range t.Zones {
		for _, ar := range t.Zones[zi].Areas {
			if strings.ToUpper(ar.Country) == c && (ar.Region == "" || strings.ToUpper(ar.Region) == r) {
				return &t.Zones[zi]
			}
		}
	}
	return nil
}

// Methods lists the methods address a can have for cart c, in the zone's
// order, with their prices before any free-shipping promotion: none when no
// zone holds a. Validate the table first: Methods does not report its
// mistakes (a flat rate without a price is simply not offered).
func (t ShippingTable) Methods(c Cart, a Address) []MethodOption {
	z := t.ZoneOf(a)
	if z == nil {
		return nil
	}
	var out []MethodOption
	for _, rt := range z.Rates {
		p, ok := rt.price(c)
		if ok {
			out = append(out, MethodOption{Method: rt.Method, Price: p, Zone: z.ID})
		}
	}
	return out
}

// price is the rate's price for c; false when no bracket holds c.
func (rt Rate) price(c Cart) (money.Money, bool) {
	if f := rt.FreeFrom; f != nil && c.Subtotal.Amount() >= f.Amount() {
		return money.Zero(c.Subtotal.Currency()), true
	}
	if rt.Kind == RateFlat {
		if rt.Price == nil { // an invalid table: not a method to offer
			return money.Money{}, false
		}
		return *rt.Price, true
	}
	x := c.WeightGrams
	if rt.Kind == RateSubtotal {
		x = c.Subtotal.Amount()
	}
	for _, b := range rt.Brackets {
		if b.holds(x) {
			return b.Price, true
		}
	}
	return money.Money{}, false
}

// Shipped is the outcome of the Shipping stage.
type Shipped struct {
	Method   string
	Zone     string
	Price    money.Money // the method's price
	Discount money.Money // waived by the free-shipping promotion
	Charged  money.Money // Price − Discount
}

// Shipping is the shipping stage: the price of the chosen method for the
// discounted cart and the address, less what a free-shipping promotion
// waives (at most its remaining budget). No method chosen charges nothing.
// A method the address cannot have is an Invalid error with code
// CodeShippingUnavailable, as is a table that is not valid.
func Shipping(in Input, d Discounted) (Shipped, error) {
	const op = "pricing.Shipping"
	cur := in.Currency
	if err := in.Shipping.Validate(cur); err != nil {
		return Shipped{}, errs.E(op, err)
	}
	zero := money.Zero(cur)
	s := Shipped{Method: in.ShippingMethod, Price: zero, Discount: zero, Charged: zero}
	if in.ShippingMethod == "" {
		return s, nil
	}
	weight := cartWeight(in.Lines)
	net, err := d.Subtotal.Sub(d.Total)
	if err != nil {
		return Shipped{}, errs.E(op, err)
	}
	opts := in.Shipping.Methods(Cart{Subtotal: net, WeightGrams: weight}, in.Address)
	i := slices.IndexFunc(opts, func(o MethodOption) bool { return o.Method == in.ShippingMethod })
	if i < 0 {
		return Shipped{}, errs.E(op, errs.Invalid, CodeShippingUnavailable, "the shipping method is not available for this address",
			[]errs.FieldError{{Field: "shipping_method", Message: "is not available for this address and cart"}})
	}
	s.Zone, s.Price, s.Charged = opts[i].Zone, opts[i].Price, opts[i].Price
	if d.FreeShipping >= 0 {
		off := s.Price.Amount()
		if b := promotionByID(in.Promotions, d.Applied[d.FreeShipping].ID).BudgetLeft; b != nil {
			off = min(off, b.Amount())
		}
		s.Discount = money.MustNew(off, cur)
		s.Charged = money.MustNew(s.Price.Amount()-off, cur)
	}
	return s, nil
}

func promotionByID(ps []Promotion, id string) *Promotion {
	for i := range ps {
		if ps[i].ID == id {
			return &ps[i]
		}
	}
	return &Promotion{}
}

// cartWeight is Σ quantity × unit weight, in grams.
// The lines are valid (lineSubtotals), so the sum is at most MaxLines ×
// MaxQuantity × MaxWeightGrams and cannot overflow.
func cartWeight(lines []Line) int64 {
	var w int64
	for _, l := range lines {
		w += l.Quantity * l.WeightGrams
	}
	return w
}
