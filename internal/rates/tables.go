package rates

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/pricing"
)

// Bounds of a table (the body limit bounds the rest).
const (
	MaxZones    = 200
	MaxAreas    = 1000 // per zone
	MaxRates    = 10   // per zone
	MaxBrackets = 100  // per rate
	MaxRegions  = 1000
	MaxTaxRates = 50 // per region
)

// Area is a country, or one region of it (pricing.Area, bounded).
type Area struct {
	Country string `json:"country" maxlen:"2" doc:"ISO 3166 alpha-2 code."`
	Region  string `json:"region,omitempty" maxlen:"16" doc:"A subdivision code; absent: the whole country."`
}

// Rate is one method's price in a zone (pricing.Rate, bounded).
type Rate struct {
	Method   string            `json:"method" maxlen:"32" doc:"standard, express or pickup."`
	Kind     pricing.RateKind  `json:"kind" maxlen:"16" doc:"flat, weight or subtotal."`
	Price    *money.Money      `json:"price,omitempty" doc:"flat: the price."`
	Brackets []pricing.Bracket `json:"brackets,omitempty" doc:"weight (grams) or subtotal (minor units) brackets [from, to), not overlapping; to 0: no upper bound."`
	FreeFrom *money.Money      `json:"free_from,omitempty" doc:"A discounted subtotal of at least this ships free."`
}

// Zone is a set of areas sharing rates; no two zones cover one place.
type Zone struct {
	ID    string `json:"id" maxlen:"64"`
	Areas []Area `json:"areas"`
	Rates []Rate `json:"rates"`
}

// ShippingRequest is the body of PUT /api/v1/admin/shipping-rates: the
// whole table, in one currency.
type ShippingRequest struct {
	Currency string `json:"currency" maxlen:"3" doc:"ISO 4217 code of every price."`
	Zones    []Zone `json:"zones"`
}

// ShippingDocument is a version of the shipping table as staff read it.
type ShippingDocument struct {
	Version  int64  `json:"version" doc:"0 while none was saved."`
	Currency string `json:"currency"`
	Zones    []Zone `json:"zones"`
	// UpdatedBy and UpdatedAt say who saved this version, and when.
	UpdatedBy string     `json:"updated_by,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

// TaxRate is a product tax class's rate in basis points.
type TaxRate struct {
	Class string `json:"class" maxlen:"32"`
	BP    int64  `json:"bp" doc:"0 to 10000 (19% = 1900)."`
}

// TaxRegion is the tax rules of a country or of one region of it
// (pricing.TaxRegion, bounded).
type TaxRegion struct {
	Country         string              `json:"country" maxlen:"2"`
	Region          string              `json:"region,omitempty" maxlen:"16"`
	Inclusive       bool                `json:"inclusive" doc:"Prices include the tax."`
	Rounding        pricing.TaxRounding `json:"rounding" maxlen:"8" doc:"line or order."`
	ShippingTaxable bool                `json:"shipping_taxable"`
	ShippingClass   string              `json:"shipping_class,omitempty" maxlen:"32"`
	Rates           []TaxRate           `json:"rates"`
}

// TaxRequest is the body of PUT /api/v1/admin/tax-rates: the whole table.
type TaxRequest struct {
	Regions []TaxRegion `json:"regions"`
}

// TaxDocument is a version of the tax table as staff read it.
type TaxDocument struct {
	Version   int64       `json:"version" doc:"0 while none was saved."`
	Regions   []TaxRegion `json:"regions"`
	UpdatedBy string      `json:"updated_by,omitempty"`
	UpdatedAt *time.Time  `json:"updated_at,omitempty"`
}

// shipping is r as the engine reads it, at version.
func (r ShippingRequest) shipping(version int64) pricing.ShippingTable {
	t := pricing.ShippingTable{Version: version, Zones: make([]pricing.Zone, len(r.Zones))}
	for i, z := range r.Zones {
		pz := pricing.Zone{ID: z.ID, Areas: make([]pricing.Area, len(z.Areas)), Rates: make([]pricing.Rate, len(z.Rates))}
		for j, a := range z.Areas {
			pz.Areas[j] = pricing.Area(a)
		}
		for j, rt := range z.Rates {
			pz.Rates[j] = pricing.Rate(rt)
		}
		t.Zones[i] = pz
	}
	return t
}

// tax is r as the engine reads it, at version.
func (r TaxRequest) tax(version int64) pricing.TaxTable {
	t := pricing.TaxTable{Version: version, Regions: make([]pricing.TaxRegion, len(r.Regions))}
	for i, g := range r.Regions {
		pg := pricing.TaxRegion{Country: g.Country, Region: g.Region, Inclusive: g.Inclusive, Rounding: g.Rounding,
			ShippingTaxable: g.ShippingTaxable, ShippingClass: g.ShippingClass, Rates: make([]pricing.TaxRate, len(g.Rates))}
		for j, rt := range g.Rates {
			pg.Rates[j] = pricing.TaxRate(rt)
		}
		t.Regions[i] = pg
	}
	return t
}

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// validate checks r: its bounds, then pricing's Validate (overlapping
// zones or brackets, unknown methods, prices not in the currency), with
// the engine's field names in the request's terms ("zones.1.areas.0").
func (r ShippingRequest) validate(op string) error {
	var v errs.Validation
	if _, ok := money.Exponent(r.Currency); !currencyRE.MatchString(r.Currency) || !ok {
		v.Add("currency", "must be an active ISO 4217 code")
	}
	v.Check(len(r.Zones) <= MaxZones, "zones", fmt.Sprintf("must hold at most %d zones", MaxZones))
	for i, z := range r.Zones {
		v.Check(len(z.Areas) >= 1, fmt.Sprintf("zones.%d.areas", i), "must list at least one area")
		v.Check(len(z.Areas) <= MaxAreas, fmt.Sprintf("zones.%d.areas", i), fmt.Sprintf("must hold at most %d areas", MaxAreas))
		v.Check(len(z.Rates) <= MaxRates, fmt.Sprintf("zones.%d.rates", i), fmt.Sprintf("must hold at most %d rates", MaxRates))
		for j, rt := range z.Rates {
			v.Check(len(rt.Brackets) <= MaxBrackets, fmt.Sprintf("zones.%d.rates.%d.brackets", i, j),
				fmt.Sprintf("must hold at most %d brackets", MaxBrackets))
		}
	}
	if err := v.Err(op); err != nil {
		return err
	}
	return rename(op, r.shipping(1).Validate(r.Currency), "shipping.")
}

// validate checks r: its bounds, then pricing's Validate (two entries for
// one place, rates out of 0..10000, unknown rounding).
func (r TaxRequest) validate(op string) error {
	var v errs.Validation
	v.Check(len(r.Regions) <= MaxRegions, "regions", fmt.Sprintf("must hold at most %d regions", MaxRegions))
	for i, g := range r.Regions {
		v.Check(len(g.Rates) <= MaxTaxRates, fmt.Sprintf("regions.%d.rates", i), fmt.Sprintf("must hold at most %d rates", MaxTaxRates))
	}
	if err := v.Err(op); err != nil {
		return err
	}
	return rename(op, r.tax(1).Validate(), "tax.")
}

// rename puts the field names of a pricing validation error in the
// request's terms: prefix dropped, indices dotted ("zones[1].areas[0]" →
// "zones.1.areas.0"), also in the messages that name another entry.
func rename(op string, err error, prefix string) error {
	if err == nil {
		return nil
	}
	var e *errs.Error
	if !errors.As(err, &e) || e.Kind != errs.Invalid {
		return errs.E(op, errs.Internal, err)
	}
	fields := make([]errs.FieldError, len(e.Fields))
	for i, f := range e.Fields {
		fields[i] = errs.FieldError{Field: dotted(strings.TrimPrefix(f.Field, prefix)), Message: dotted(f.Message)}
	}
	return errs.E(op, errs.Invalid, errs.CodeValidation, "the table is not valid", fields)
}

var indexRE = regexp.MustCompile(`\[(\d+)\]`)

func dotted(s string) string { return indexRE.ReplaceAllString(s, ".$1") }
