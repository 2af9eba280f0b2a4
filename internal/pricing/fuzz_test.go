package pricing

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
)

// FuzzQuote: whatever Input a JSON document decodes to, Quote does not
// panic, fails only with an *errs.Error of a client kind (never Internal),
// and every quotation it returns satisfies the invariants. Seeds: the
// golden cases' inputs.
func FuzzQuote(f *testing.F) {
	for _, file := range goldenFiles(f) {
		_, in := loadGolden(f, file)
		seed, err := json.Marshal(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var in Input
		if json.Unmarshal(data, &in) != nil {
			return
		}
		q, err := Quote(in)
		if err != nil {
			var e *errs.Error
			if !errors.As(err, &e) {
				t.Fatalf("Quote failed with %T %v, not an *errs.Error", err, err)
			}
			if e.Kind == errs.Internal {
				t.Fatalf("Quote failed with an Internal error: %v", err)
			}
		}
		if q.Currency != "" {
			checkInvariants(t, in, q)
		}
	})
}

// FuzzQuoteAmounts drives the arithmetic to its edges, which mutated JSON
// rarely reaches: prices, quantities, rates, budgets and brackets come from
// the fuzzer, in a cart of two lines with one promotion of each kind.
// Quote may refuse (an *errs.Error of a client kind) but never panics, and
// what it prices satisfies the invariants.
func FuzzQuoteAmounts(f *testing.F) {
	f.Add(int64(1999), int64(3), int64(1250), int64(500), int64(300), int64(2000), int64(1900), int64(2), int64(1), true, false)
	f.Add(int64(math.MaxInt64), int64(1), int64(10000), int64(math.MaxInt64), int64(0), int64(math.MaxInt64), int64(10000), int64(1), int64(1), false, true)
	f.Add(int64(1), int64(MaxQuantity), int64(1), int64(1), int64(1), int64(0), int64(0), int64(MaxQuantity), int64(MaxQuantity), true, true)
	f.Fuzz(func(t *testing.T, price, qty, bp, amount, budget, bracket, taxBP, buy, get int64, inclusive, perOrder bool) {
		eur := func(a int64) *money.Money {
			m, err := money.New(a, "EUR")
			if err != nil {
				m = money.MustNew(0, "EUR")
			}
			return &m
		}
		rounding := RoundLine
		if perOrder {
			rounding = RoundOrder
		}
		in := Input{
			Currency: "EUR", Address: Address{Country: "FR"}, ShippingMethod: MethodStandard, Coupons: []string{"X"},
			Lines: []Line{
				{SKU: "A", Quantity: qty, UnitPrice: *eur(price), WeightGrams: bracket % (MaxWeightGrams + 1), TaxClass: "t"},
				{SKU: "B", Quantity: 1, UnitPrice: *eur(price / 3), TaxClass: "t"},
			},
			Promotions: []Promotion{
				{ID: "pct", Version: 1, Kind: Percentage, PercentBP: bp, BudgetLeft: eur(budget), Priority: 3},
				{ID: "fix", Version: 1, Kind: Fixed, Amount: eur(amount), Priority: 2},
				{ID: "bx", Version: 1, Kind: BuyXGetY, PercentBP: bp, Priority: 1, BXGY: &BXGY{Buy: buy, Get: get}},
				{ID: "ship", Version: 1, Code: "x", Kind: FreeShipping, BudgetLeft: eur(budget)},
			},
			Shipping: ShippingTable{Version: 1, Zones: []Zone{{ID: "fr", Areas: []Area{{Country: "FR"}}, Rates: []Rate{
				{Method: MethodStandard, Kind: RateWeight, FreeFrom: eur(amount), Brackets: []Bracket{
					{From: 0, To: bracket, Price: *eur(budget)}, {From: bracket, Price: *eur(amount)}}},
			}}}},
			Tax: TaxTable{Version: 1, Regions: []TaxRegion{{Country: "FR", Inclusive: inclusive, Rounding: rounding,
				ShippingTaxable: true, ShippingClass: "t", Rates: []TaxRate{{Class: "t", BP: taxBP}}}}},
		}
		q, err := Quote(in)
		if err != nil {
			var e *errs.Error
			if !errors.As(err, &e) || e.Kind == errs.Internal {
				t.Fatalf("Quote failed with %T %v", err, err)
			}
		}
		if q.Currency != "" {
			checkInvariants(t, in, q)
		}
	})
}
