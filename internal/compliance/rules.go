package compliance

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
)

// The bounds of a rule set.
const (
	MaxRules = 200 // of each kind
	MaxIDs   = 500 // product or category ids of one restriction
)

// CodeIdentityRequired is the stable code of the 422 for a missing
// identity a region requires.
const CodeIdentityRequired errs.Code = "identity_required"

// Place is a country (ISO 3166-1 alpha-2) or a region of it.
type Place struct {
	Country string `json:"country" maxlen:"2"`
	Region  string `json:"region,omitempty" maxlen:"100" doc:"Empty: the whole country."`
}

func (p Place) holds(country, region string) bool {
	return p.Country == country && (p.Region == "" || strings.EqualFold(p.Region, region))
}

func (p Place) String() string {
	if p.Region == "" {
		return p.Country
	}
	return p.Country + "-" + p.Region
}

// Restriction: the products and categories not sellable in a place.
type Restriction struct {
	ID          string   `json:"id" maxlen:"64"`
	Place       Place    `json:"place"`
	ProductIDs  []string `json:"product_ids,omitempty" maxlen:"64"`
	CategoryIDs []string `json:"category_ids,omitempty" maxlen:"64"`
}

// Limit bounds what one customer spends in a place, in one currency: one
// order's amount (PerOrder) and a calendar year's (PerYear, UTC), in minor
// units; 0 is no bound.
type Limit struct {
	ID       string `json:"id" maxlen:"64"`
	Place    Place  `json:"place"`
	Currency string `json:"currency" maxlen:"3"`
	PerOrder int64  `json:"per_order,omitempty"`
	PerYear  int64  `json:"per_year,omitempty"`
}

// IdentityRule: an order shipped to a place must carry an identity.
type IdentityRule struct {
	ID    string `json:"id" maxlen:"64"`
	Place Place  `json:"place"`
}

// Rules is the whole rule set staff save.
type Rules struct {
	Restrictions []Restriction  `json:"restrictions"`
	Limits       []Limit        `json:"limits"`
	Identity     []IdentityRule `json:"identity"`
}

// Document is a saved version of the rules.
type Document struct {
	Version   int64      `json:"version" doc:"0 while none was saved."`
	Rules     Rules      `json:"rules"`
	UpdatedBy string     `json:"updated_by,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

func (r *Rules) normalise() {
	if r.Restrictions == nil {
		r.Restrictions = []Restriction{}
	}
	if r.Limits == nil {
		r.Limits = []Limit{}
	}
	if r.Identity == nil {
		r.Identity = []IdentityRule{}
	}
	up := func(p *Place) { p.Country = strings.ToUpper(p.Country) }
	for i := range r.Restrictions {
		up(&r.Restrictions[i].Place)
	}
	for i := range r.Limits {
		up(&r.Limits[i].Place)
		r.Limits[i].Currency = strings.ToUpper(r.Limits[i].Currency)
	}
	for i := range r.Identity {
		up(&r.Identity[i].Place)
	}
}

// validate checks the shape of r (products are checked against the
// catalog apart).
func (r Rules) validate() error {
	var v errs.Validation
	ids := map[string]string{}
	id := func(f, x string) {
		v.Check(x != "", f+".id", "is required")
		if prev, dup := ids[x]; dup && x != "" {
			v.Add(f+".id", "duplicates "+prev)
		}
		ids[x] = f
	}
	place := func(f string, p Place) {
		v.Check(len(p.Country) == 2 && p.Country[0] >= 'A' && p.Country[0] <= 'Z' && p.Country[1] >= 'A' && p.Country[1] <= 'Z',
			f+".place.country", "must be an ISO 3166-1 alpha-2 code")
	}
	v.Check(len(r.Restrictions) <= MaxRules && len(r.Limits) <= MaxRules && len(r.Identity) <= MaxRules, "rules",
		fmt.Sprintf("at most %d rules of each kind", MaxRules))
	for i, x := range r.Restrictions {
		f := fmt.Sprintf("restrictions[%d]", i)
		id(f, x.ID)
		place(f, x.Place)
		v.Check(len(x.ProductIDs)+len(x.CategoryIDs) >= 1, f, "must name products or categories")
		v.Check(len(x.ProductIDs)+len(x.CategoryIDs) <= MaxIDs, f, fmt.Sprintf("names at most %d products and categories", MaxIDs))
	}
	for i, x := range r.Limits {
		f := fmt.Sprintf("limits[%d]", i)
		id(f, x.ID)
		place(f, x.Place)
		_, ok := money.Exponent(x.Currency)
		v.Check(ok, f+".currency", "must be an ISO 4217 currency code")
		v.Check(x.PerOrder >= 0 && x.PerYear >= 0 && x.PerOrder+x.PerYear > 0, f, "needs a per_order or per_year above 0")
		v.Check(x.PerYear == 0 || x.PerOrder <= x.PerYear, f+".per_order", "must not exceed per_year")
	}
	for i, x := range r.Identity {
		f := fmt.Sprintf("identity[%d]", i)
		id(f, x.ID)
		place(f, x.Place)
	}
	return v.Err("compliance.validate")
}

// Cart is what the rules decide on.
type Cart struct {
	CustomerID      string // "" for a guest
	Country, Region string
	Currency        string
	Amount          int64 // the order's total, minor units
	Lines           []Line
	IdentityGiven   bool
}

// Line is one line of a cart.
type Line struct {
	SKU, ProductID string
	CategoryIDs    []string
}

// restricted decides the restrictions and identity rules for c (the
// limits need the counters: store.go).
func (r Rules) restricted(c Cart) error {
	const op = "compliance.Check"
	var v errs.Validation
	var rule string
	for _, x := range r.Restrictions {
		if !x.Place.holds(c.Country, c.Region) {
			continue
		}
		for i, l := range c.Lines {
			hit := slices.Contains(x.ProductIDs, l.ProductID)
			for _, cat := range l.CategoryIDs {
				hit = hit || slices.Contains(x.CategoryIDs, cat)
			}
			if hit {
				if rule == "" {
					rule = x.ID
				}
				v.Add(fmt.Sprintf("lines[%d]", i), fmt.Sprintf("%s is not sellable in %s (rule %s)", l.SKU, x.Place, x.ID))
			}
		}
	}
	if len(v.Fields) > 0 {
		return errs.E(op, errs.Invalid, errs.CodeRegionRestricted, "rule "+rule+": some items are not sellable in this region", v.Fields)
	}
	for _, x := range r.Identity {
		if x.Place.holds(c.Country, c.Region) && !c.IdentityGiven {
			return errs.E(op, errs.Invalid, CodeIdentityRequired, "rule "+x.ID+": orders to "+x.Place.String()+" need an identity",
				[]errs.FieldError{{Field: "identity", Message: "is required for orders to " + x.Place.String() + " (rule " + x.ID + ")"}})
		}
	}
	return nil
}

// limits are the limits that apply to c.
func (r Rules) limits(c Cart) []Limit {
	var out []Limit
	for _, x := range r.Limits {
		if x.Place.holds(c.Country, c.Region) && x.Currency == c.Currency {
			out = append(out, x)
		}
	}
	return out
}

func overLimit(x Limit, what string, amount, spent, limit int64, cur string) error {
	msg := fmt.Sprintf("rule %s: the order's %d %s", x.ID, amount, cur)
	if what == "per_year" {
		msg += fmt.Sprintf(" and the %d %s spent this year", spent, cur)
	}
	msg += fmt.Sprintf(" exceed the %s limit of %d %s for %s (minor units)", what, limit, cur, x.Place)
	return errs.E("compliance.Check", errs.Invalid, errs.CodeLimitExceeded, msg, []errs.FieldError{{Field: "total", Message: msg}})
}
