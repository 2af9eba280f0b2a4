package pricing

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
)

// DefaultTaxClass is the tax class of a line that names none, and of
// shipping when its region names no ShippingClass.
const DefaultTaxClass = "standard"

// TaxRounding says where tax is rounded to a minor unit (half-even always).
type TaxRounding string

// The tax rounding rules.
const (
	// RoundLine rounds each line's tax (and the shipping's); the order's tax
	// is their sum.
	RoundLine TaxRounding = "line"
	// RoundOrder rounds once per rate over the whole order, as an invoice
	// shows tax per rate, then allocates that tax to the lines (and the
	// shipping) taxed at the rate, in proportion to their amounts.
	RoundOrder TaxRounding = "order"
)

// TaxRate is a product tax class's rate in basis points (19% = 1900).
type TaxRate struct {
	Class string `json:"class"`
	BP    int64  `json:"bp"`
}

// TaxRegion is the tax rules of a country, or of one region of it when
// Region is set (a region's rules replace its country's).
type TaxRegion struct {
	Country string `json:"country"`
	Region  string `json:"region,omitempty"`
	// Inclusive: prices shown in this region include the tax, which is
	// extracted from them; else tax is added on top.
	Inclusive       bool        `json:"inclusive"`
	Rounding        TaxRounding `json:"rounding"`
	ShippingTaxable bool        `json:"shipping_taxable"`
	ShippingClass   string      `json:"shipping_class,omitempty"`
	Rates           []TaxRate   `json:"rates"`
}

func (r TaxRegion) key() string {
	return Area{strings.ToUpper(r.Country), strings.ToUpper(r.Region)}.String()
}

// rate is class's rate in r (class "" is DefaultTaxClass).
func (r *TaxRegion) rate(class string) (int64, bool) {
	if class == "" {
		class = DefaultTaxClass
	}
	for _, t := range r.Rates {
		if t.Class == class {
			return t.BP, true
		}
	}
	return 0, false
}

// TaxTable is a version of the tax rates by region and class. An address
// in no listed region is charged no tax.
type TaxTable struct {
	Version int64       `json:"version"`
	Regions []TaxRegion `json:"regions"`

	checked bool // returned by Checked: Tax need not validate it again
	// index, built by Checked: each entry's place (upper case) → its
	// index in Regions, so that a quote finds its region without a scan.
	index map[Area]int
}

// Checked returns t once it validates, marked so that Tax does not
// validate it again: a table loaded once and used by every quote (the
// rates module's cache) is checked when it is loaded, not per quote. The
// returned table must not be changed.
func (t TaxTable) Checked() (TaxTable, error) {
	if err := t.Validate(); err != nil {
		return TaxTable{}, err
	}
	t.checked = true
	t.index = make(map[Area]int, len(t.Regions))
	for i := range t.Regions {
		t.index[t.Regions[i].place()] = i
	}
	return t, nil
}

// place is r's country and region in upper case (how addresses match it).
func (r *TaxRegion) place() Area {
	return Area{strings.ToUpper(r.Country), strings.ToUpper(r.Region)}
}

// Validate checks the table: one entry per region, known rounding rules,
// rates from 0 to 10000 basis points, one rate per class per region. The
// error is Invalid naming each problem's field under "tax".
func (t TaxTable) Validate() error {
	var v problems
	list := root("")
	for i := range t.Regions {
		r, f := &t.Regions[i], list.at("tax.regions", i)
		v.check(len(r.Country) == 2, &f, ".country", "must be an ISO 3166 alpha-2 code")
		v.check(r.Rounding == RoundLine || r.Rounding == RoundOrder, &f, ".rounding", "must be line or order")
		for k, rt := range r.Rates {
			rf := f.at(".rates", k)
			v.check(rt.Class != "", &rf, ".class", "is required")
			// Regions list a few classes: a scan beats a map.
			v.check(!slices.ContainsFunc(r.Rates[:k], func(o TaxRate) bool { return o.Class == rt.Class }), &rf, ".class",
				"has a second rate in this region")
			v.check(rt.BP >= 0 && rt.BP <= money.BasisPointsPerUnit, &rf, ".bp", "must be from 0 to 10000")
		}
	}
	// Two entries for one place: sorted by place, they are neighbours (a
	// sort allocates less than a map, and an unchecked table is validated
	// by every quote). Each place is upper-cased once, not per comparison.
	type entry struct {
		place Area
		i     int
	}
	order := make([]entry, len(t.Regions))
	for i := range order {
		order[i] = entry{t.Regions[i].place(), i}
	}
	slices.SortFunc(order, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.place.Country, b.place.Country), cmp.Compare(a.place.Region, b.place.Region), cmp.Compare(a.i, b.i))
	})
	for k := 1; k < len(order); k++ {
		if prev, cur := order[k-1], order[k]; prev.place == cur.place {
			v.Add(fmt.Sprintf("tax.regions[%d]", cur.i), fmt.Sprintf("%s overlaps regions[%d]", cur.place, prev.i))
		}
	}
	return v.Err("pricing.TaxTable.Validate")
}

// RegionOf returns the rules for a: its region's, else its country's; nil
// when the table has neither.
func (t TaxTable) RegionOf(a Address) *TaxRegion {
	if i := t.regionIndex(a); i >= 0 {
		return &t.Regions[i]
	}
	return nil
}

// regionIndex is the index of RegionOf(a) in t.Regions, or -1.
func (t TaxTable) regionIndex(a Address) int {
	c, r := strings.ToUpper(a.Country), strings.ToUpper(a.Region)
	if t.index != nil {
		if i, ok := t.index[Area{c, r}]; ok && r != "" {
			return i
		}
		if i, ok := t.index[Area{Country: c}]; ok {
			return i
		}
		return -1
	}
	country := -1
	for i := range t.Regions {
		tr := &t.Regions[i]
		if strings.ToUpper(tr.Country) != c {
			continue
		}
		if tr.Region == "" {
			country = i
		} else if r != "" && strings.ToUpper(tr.Region) == r {
			return i
		}
	}
	return country
}

// Taxed is the outcome of the Tax stage.
type Taxed struct {
	Region    string // "" when no region matched
	Inclusive bool
	Lines     []money.Money // per line
	Shipping  money.Money   // the shipping's tax
	Total     money.Money   // Σ Lines + Shipping
}

// Tax is the tax stage: each line is taxed on its discounted amount, the
// shipping on its charged price when the region taxes shipping. Inclusive
// prices have the tax extracted (amount × rate / (1 + rate)), exclusive
// ones have it added (amount × rate). A line whose class has no rate in the
// region, or a table that is not valid, is an Invalid error.
func Tax(in Input, d Discounted, s Shipped) (Taxed, error) {
	const op = "pricing.Tax"
	if !in.Tax.checked {
		if err := in.Tax.Validate(); err != nil {
			return Taxed{}, errs.E(op, err)
		}
	}
	am := amountsIn(in.Currency)
	t := Taxed{Lines: make([]money.Money, len(in.Lines)), Shipping: am.of(0), Total: am.of(0)}
	for i := range t.Lines {
		t.Lines[i] = am.of(0)
	}
	ri := in.Tax.regionIndex(in.Address)
	if ri < 0 {
		return t, nil
	}
	r := &in.Tax.Regions[ri]
	t.Region, t.Inclusive = r.key(), r.Inclusive

	// Item n is line n, item len(lines) the shipping.
	n := len(in.Lines)
	nums := make([]int64, 3*(n+1)) // one allocation for the quote
	bases, rates, taxes := nums[:n+1:n+1], nums[n+1:2*(n+1):2*(n+1)], nums[2*(n+1):]
	flags := make([]bool, 2*(n+1))
	taxed, done := flags[:n+1:n+1], flags[n+1:]
	var v errs.Validation
	for i, l := range in.Lines {
		bp, ok := r.rate(l.TaxClass)
		if !ok {
			v.Add(fmt.Sprintf("lines[%d].tax_class", i), fmt.Sprintf("has no tax rate in %s", t.Region))
		}
		bases[i], rates[i], taxed[i] = d.net(i), bp, true
	}
	if r.ShippingTaxable && s.Charged.Amount() > 0 {
		bp, ok := r.rate(r.ShippingClass)
		if !ok {
			v.Add(fmt.Sprintf("tax.regions[%d].shipping_class", ri), "has no tax rate in this region")
		}
		bases[n], rates[n], taxed[n] = s.Charged.Amount(), bp, true
	}
	if err := v.Err(op); err != nil {
		return Taxed{}, err
	}

	if r.Rounding == RoundLine {
		for i := range bases {
			if taxed[i] {
				taxes[i] = taxOf(bases[i], rates[i], r.Inclusive)
			}
		}
	} else {
		var members []int
		var weights []int64
		for i := range bases {
			if !taxed[i] || done[i] {
				continue
			}
			members, weights = members[:0], weights[:0]
			var base int64
			for j := i; j <= n; j++ {
				if taxed[j] && !done[j] && rates[j] == rates[i] {
					done[j] = true
					members, weights = append(members, j), append(weights, bases[j])
					if base += bases[j]; base < 0 {
						return Taxed{}, errs.E(op, errs.Invalid, "amount out of range", money.ErrOverflow)
					}
				}
			}
			for k, m := range am.of(taxOf(base, rates[i], r.Inclusive)).Allocate(weights) {
				taxes[members[k]] = m.Amount()
			}
		}
	}
	var total int64
	for i := range n {
		t.Lines[i] = am.of(taxes[i])
		total += taxes[i]
	}
	t.Shipping = am.of(taxes[n])
	t.Total = am.of(total + taxes[n])
	return t, nil
}

// taxOf is the tax on base at bp basis points, rounded half-even: base ×
// bp / 10000 added on top, or base × bp / (10000 + bp) extracted from an
// inclusive base. base ≥ 0 and 0 ≤ bp ≤ 10000, so the exact product fits
// 128 bits and the quotient at most base.
func taxOf(base, bp int64, inclusive bool) int64 {
	den := uint64(money.BasisPointsPerUnit)
	if inclusive {
		den += uint64(bp)
	}
	hi, lo := bits.Mul64(uint64(base), uint64(bp))
	q, rem := bits.Div64(hi, lo, den)
	if rem > den-rem || (rem == den-rem && q%2 == 1) {
		q++
	}
	return int64(q)
}
