package pricing

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
)

func eur(a int64) money.Money   { return money.MustNew(a, "EUR") }
func eurp(a int64) *money.Money { m := eur(a); return &m }
func fields(err error) []string {
	var e *errs.Error
	if !errors.As(err, &e) {
		return nil
	}
	var out []string
	for _, f := range e.Fields {
		out = append(out, f.Field)
	}
	return out
}

// TestStagesCompose: calling the stages one by one, as the orders pipeline
// does, gives what Quote gives, for every golden input.
func TestStagesCompose(t *testing.T) {
	for _, file := range goldenFiles(t) {
		_, in := loadGolden(t, file)
		t.Run(filepath.Base(file), func(t *testing.T) {
			want, wantErr := Quote(in)
			d, err := Discounts(in)
			var s Shipped
			var tx Taxed
			var got Quotation
			if err == nil {
				s, err = Shipping(in, d)
			}
			if err == nil {
				tx, err = Tax(in, d, s)
			}
			if err == nil {
				got, err = Totals(in, d, s, tx)
			}
			if err == nil {
				err = d.CouponErr
			}
			if errs.CodeOf(err) != errs.CodeOf(wantErr) || (err == nil) != (wantErr == nil) {
				t.Fatalf("stages: %v; Quote: %v", err, wantErr)
			}
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(want)
			if want.Currency != "" && string(a) != string(b) {
				t.Fatalf("stages give\n%s\nQuote gives\n%s", a, b)
			}
		})
	}
}

func TestMethods(t *testing.T) {
	ship, _ := tables(t)
	cart := Cart{Subtotal: eur(4000), WeightGrams: 2500}
	tests := []struct {
		name string
		addr Address
		want []MethodOption
	}{
		{"a country of a zone: every method, in the zone's order", Address{Country: "FR"}, []MethodOption{
			{MethodStandard, eur(790), "eu"}, {MethodExpress, eur(1500), "eu"}, {MethodPickup, eur(0), "eu"}}},
		{"lower case is the same country", Address{Country: "de", Region: "BY"}, []MethodOption{
			{MethodStandard, eur(790), "eu"}, {MethodExpress, eur(1500), "eu"}, {MethodPickup, eur(0), "eu"}}},
		{"a region of its own zone", Address{Country: "US", Region: "hi"}, []MethodOption{{MethodStandard, eur(2500), "us-hawaii"}}},
		{"a subtotal bracket", Address{Country: "US", Region: "CA"}, []MethodOption{{MethodStandard, eur(800), "us-main"}}},
		{"a region no zone lists", Address{Country: "US", Region: "TX"}, nil},
		{"a country without its region, zones by region only", Address{Country: "US"}, nil},
		{"no zone, no method", Address{Country: "JP"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ship.Methods(cart, tt.addr); !slices.Equal(got, tt.want) {
				t.Fatalf("Methods = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("a weight no bracket holds leaves the method out", func(t *testing.T) {
		got := ship.Methods(Cart{Subtotal: eur(4000), WeightGrams: 30000}, Address{Country: "FR"})
		if len(got) != 2 || got[0].Method != MethodExpress {
			t.Fatalf("Methods = %v, want express and pickup", got)
		}
	})
}

func TestValidateShipping(t *testing.T) {
	flat := func(m string) Rate { return Rate{Method: m, Kind: RateFlat, Price: eurp(100)} }
	zone := func(id string, areas ...Area) Zone {
		return Zone{ID: id, Areas: areas, Rates: []Rate{flat(MethodStandard)}}
	}
	tests := []struct {
		name  string
		table ShippingTable
		want  []string
	}{
		{"valid", ShippingTable{Zones: []Zone{zone("a", Area{"FR", ""}), zone("b", Area{"US", "CA"}), zone("c", Area{"US", "NY"})}}, nil},
		{"one country in two zones", ShippingTable{Zones: []Zone{zone("a", Area{"FR", ""}), zone("b", Area{"fr", ""})}},
			[]string{"shipping.zones[1].areas[0]"}},
		{"a country and one of its regions", ShippingTable{Zones: []Zone{zone("a", Area{"US", "CA"}), zone("b", Area{"US", ""})}},
			[]string{"shipping.zones[1].areas[0]"}},
		{"one region twice", ShippingTable{Zones: []Zone{zone("a", Area{"US", "CA"}, Area{"US", "ca"})}},
			[]string{"shipping.zones[0].areas[1]"}},
		{"zone ids", ShippingTable{Zones: []Zone{zone("a", Area{"FR", ""}), zone("a", Area{"DE", ""}), zone("", Area{"BE", ""})}},
			[]string{"shipping.zones[1].id", "shipping.zones[2].id"}},
		{"rates", ShippingTable{Zones: []Zone{{ID: "a", Areas: []Area{{"FR", ""}}, Rates: []Rate{
			flat(MethodStandard), flat(MethodStandard), flat("drone"), {Method: MethodExpress, Kind: "magic"},
			{Method: MethodPickup, Kind: RateFlat, Price: eurp(-1)}}}}},
			[]string{"shipping.zones[0].rates[1].method", "shipping.zones[0].rates[2].method",
				"shipping.zones[0].rates[3].kind", "shipping.zones[0].rates[4].price"}},
		{"an open bracket before another", ShippingTable{Zones: []Zone{{ID: "a", Areas: []Area{{"FR", ""}}, Rates: []Rate{
			{Method: MethodStandard, Kind: RateWeight, Brackets: []Bracket{{From: 1000, To: 2000, Price: eur(1)}, {From: 0, Price: eur(1)}}}}}}},
			[]string{"shipping.zones[0].rates[0].brackets[0]"}},
		{"brackets in another currency, inverted, none", ShippingTable{Zones: []Zone{{ID: "a", Areas: []Area{{"FR", ""}}, Rates: []Rate{
			{Method: MethodStandard, Kind: RateWeight, Brackets: []Bracket{{From: 10, To: 5, Price: money.MustNew(1, "USD")}}},
			{Method: MethodExpress, Kind: RateSubtotal}}}}},
			[]string{"shipping.zones[0].rates[0].brackets[0].to", "shipping.zones[0].rates[0].brackets[0].price",
				"shipping.zones[0].rates[1].brackets"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.table.Validate("EUR")
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errs.Is(err, errs.Invalid) || !slices.Equal(fields(err), tt.want) {
				t.Fatalf("Validate = %v, fields %v, want %v", err, fields(err), tt.want)
			}
		})
	}
}

func TestValidatePromotions(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	neg := int64(-1)
	tests := []struct {
		name string
		ps   []Promotion
		want []string
	}{
		{"valid", []Promotion{{ID: "a", Version: 1, Kind: Percentage, PercentBP: 10000}, {ID: "b", Version: 1, Kind: FreeShipping}}, nil},
		{"percentages", []Promotion{{ID: "a", Version: 1, Kind: Percentage}, {ID: "b", Version: 1, Kind: BuyXGetY, PercentBP: 20000,
			BXGY: &BXGY{Buy: 0, Get: 1, MaxUses: -1}}},
			[]string{"promotions[0].percent_bp", "promotions[1].percent_bp", "promotions[1].bxgy.buy", "promotions[1].bxgy.max_uses"}},
		{"fixed", []Promotion{{ID: "a", Version: 1, Kind: Fixed}, {ID: "b", Version: 1, Kind: Fixed, Amount: eurp(0)}},
			[]string{"promotions[0].amount", "promotions[1].amount"}},
		{"identity", []Promotion{{Kind: "gift"}, {ID: "x", Version: 1, Kind: FreeShipping, Code: "Hello"},
			{ID: "x", Version: 1, Kind: FreeShipping, Code: " HELLO"}},
			[]string{"promotions[0].id", "promotions[0].version", "promotions[0].kind", "promotions[2].id", "promotions[2].code"}},
		{"limits and window", []Promotion{{ID: "a", Version: 1, Kind: FreeShipping, UsesLeft: &neg, BudgetLeft: eurp(-5),
			MinSubtotal: eurp(-1), StartsAt: now, EndsAt: now}},
			[]string{"promotions[0].min_subtotal", "promotions[0].uses_left", "promotions[0].budget_left", "promotions[0].ends_at"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePromotions(tt.ps)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ValidatePromotions = %v", err)
				}
				return
			}
			if !errs.Is(err, errs.Invalid) || !slices.Equal(fields(err), tt.want) {
				t.Fatalf("ValidatePromotions = %v, fields %v, want %v", err, fields(err), tt.want)
			}
		})
	}
}

// TestCoupons: codes are compared trimmed and case-insensitively, a code
// entered twice is one coupon, and a coupon promotion never applies unless
// its code is entered.
func TestCoupons(t *testing.T) {
	ship, tax := tables(t)
	in := Input{Currency: "EUR", Address: Address{Country: "FR"}, Shipping: ship, Tax: tax,
		Lines: []Line{{SKU: "A", Quantity: 1, UnitPrice: eur(1000)}},
		Promotions: []Promotion{{ID: "w", Version: 4, Code: "Welcome", Kind: Percentage, PercentBP: 1000},
			{ID: "hidden", Version: 1, Code: "SECRET", Kind: Fixed, Amount: eurp(500)}}}
	tests := []struct {
		coupons []string
		want    []CouponOutcome
		off     int64
	}{
		{nil, nil, 0},
		{[]string{" welcome ", "WELCOME"}, []CouponOutcome{{"WELCOME", CouponApplied, "w"}}, 100},
		{[]string{"", "  "}, nil, 0},
	}
	for _, tt := range tests {
		q, err := Quote(withCoupons(in, tt.coupons))
		if err != nil || !slices.Equal(q.Coupons, tt.want) || q.Discount.Amount() != tt.off {
			t.Errorf("coupons %q: %v, %v, discount %v; want %v, %d", tt.coupons, err, q.Coupons, q.Discount, tt.want, tt.off)
		}
		if tt.off > 0 && (len(q.Promotions) != 1 || q.Promotions[0].Version != 4 || q.Lines[0].Discounts[0].Version != 4) {
			t.Errorf("the applied promotion is not recorded with its version: %+v", q.Promotions)
		}
	}
}

func withCoupons(in Input, c []string) Input { in.Coupons = c; return in }

// TestTaxRules: a region's rules replace its country's; a class without a
// rate is refused naming the line; an address in no region is not taxed.
func TestTaxRules(t *testing.T) {
	table := TaxTable{Version: 1, Regions: []TaxRegion{
		{Country: "US", Rounding: RoundLine, Rates: []TaxRate{{Class: DefaultTaxClass, BP: 500}}},
		{Country: "US", Region: "CA", Rounding: RoundLine, Rates: []TaxRate{{Class: DefaultTaxClass, BP: 1000}}},
	}}
	tests := []struct {
		addr   Address
		class  string
		tax    int64
		region string
		field  string
	}{
		{Address{Country: "US", Region: "CA"}, "", 100, "US-CA", ""},
		{Address{Country: "us", Region: "tx"}, DefaultTaxClass, 50, "US", ""},
		{Address{Country: "US"}, "", 50, "US", ""},
		{Address{Country: "CA", Region: "US"}, "", 0, "", ""},
		{Address{Country: "US", Region: "CA"}, "books", 0, "", "lines[0].tax_class"},
	}
	for _, tt := range tests {
		in := Input{Currency: "EUR", Address: tt.addr, Tax: table,
			Lines: []Line{{SKU: "A", Quantity: 1, UnitPrice: eur(1000), TaxClass: tt.class}}}
		q, err := Quote(in)
		if tt.field != "" {
			if !errs.Is(err, errs.Invalid) || !slices.Equal(fields(err), []string{tt.field}) {
				t.Errorf("%v %q: %v, want Invalid naming %s", tt.addr, tt.class, err, tt.field)
			}
			continue
		}
		if err != nil || q.Tax.Amount() != tt.tax || q.TaxRegion != tt.region || q.TaxVersion != 1 {
			t.Errorf("%v %q: tax %v in %q, %v; want %d in %q", tt.addr, tt.class, q.Tax, q.TaxRegion, err, tt.tax, tt.region)
		}
	}
}

// TestTaxOf checks the rounding of the tax formula at its ties and extremes.
func TestTaxOf(t *testing.T) {
	tests := []struct {
		base, bp  int64
		inclusive bool
		want      int64
	}{
		{105, 1000, false, 10}, // 10.5 → 10 (even)
		{115, 1000, false, 12}, // 11.5 → 12 (even)
		{119, 1900, true, 19},  // 119 × 19/119 = 19 exactly
		{100, 1900, true, 16},  // 15.966 → 16
		{1, 10000, true, 0},    // 0.5 → 0 (even)
		{3, 10000, true, 2},    // 1.5 → 2 (even)
		{0, 1900, false, 0},
		{money.MustNew(1<<62, "EUR").Amount(), 10000, false, 1 << 62},
	}
	for _, tt := range tests {
		if got := taxOf(tt.base, tt.bp, tt.inclusive); got != tt.want {
			t.Errorf("taxOf(%d, %d, %v) = %d, want %d", tt.base, tt.bp, tt.inclusive, got, tt.want)
		}
	}
}

// TestShippingClassWithoutRate: a region taxing shipping at a class it has
// no rate for is refused, naming the region's field.
func TestShippingClassWithoutRate(t *testing.T) {
	ship, _ := tables(t)
	in := Input{Currency: "EUR", Address: Address{Country: "FR"}, ShippingMethod: MethodExpress, Shipping: ship,
		Lines: []Line{{SKU: "A", Quantity: 1, UnitPrice: eur(1000)}},
		Tax: TaxTable{Regions: []TaxRegion{{Country: "DE", Rounding: RoundLine}, {Country: "FR", Rounding: RoundLine,
			ShippingTaxable: true, ShippingClass: "freight", Rates: []TaxRate{{Class: DefaultTaxClass, BP: 2000}}}}}}
	_, err := Quote(in)
	if !errs.Is(err, errs.Invalid) || !slices.Equal(fields(err), []string{"tax.regions[1].shipping_class"}) {
		t.Fatalf("Quote = %v, fields %v", err, fields(err))
	}
}

// TestConcurrentQuotes: quotes of shared inputs from several goroutines
// (run with -race) give what one goroutine gives: the engine mutates
// nothing it is handed.
func TestConcurrentQuotes(t *testing.T) {
	var inputs []Input
	var want []string
	for _, file := range goldenFiles(t) {
		_, in := loadGolden(t, file)
		q, err := Quote(in)
		b, _ := json.Marshal(q)
		inputs, want = append(inputs, in), append(want, string(b)+fmt.Sprint(err))
	}
	const workers = 4
	errc := make(chan error, workers)
	for w := range workers {
		go func() {
			for k := range 20 * len(inputs) {
				i := (k + w) % len(inputs)
				q, err := Quote(inputs[i])
				b, _ := json.Marshal(q)
				if got := string(b) + fmt.Sprint(err); got != want[i] {
					errc <- fmt.Errorf("input %d: concurrent quote differs:\n%s\n%s", i, got, want[i])
					return
				}
			}
			errc <- nil
		}()
	}
	for range workers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// TestRegionOfChecked: a checked table (its places indexed) finds the same
// region as the scan of an unchecked one: a region's entry before its
// country's, case-insensitively, nothing for an unlisted country.
func TestRegionOfChecked(t *testing.T) {
	tab := TaxTable{Version: 1, Regions: []TaxRegion{
		{Country: "us", Region: "ca", Rounding: RoundLine, Rates: []TaxRate{{Class: "standard", BP: 725}}},
		{Country: "US", Rounding: RoundLine, Rates: []TaxRate{{Class: "standard", BP: 100}}},
		{Country: "FR", Rounding: RoundOrder, Rates: []TaxRate{{Class: "standard", BP: 2000}}},
		{Country: "DE", Region: "BY", Rounding: RoundLine, Rates: []TaxRate{{Class: "standard", BP: 1900}}},
	}}
	checked, err := tab.Checked()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		addr Address
		want int // index in Regions, -1 none
	}{
		{"region", Address{Country: "US", Region: "CA"}, 0},
		{"region lower case", Address{Country: "us", Region: "ca"}, 0},
		{"other region: the country's", Address{Country: "US", Region: "NY"}, 1},
		{"no region: the country's", Address{Country: "US"}, 1},
		{"country only table", Address{Country: "fr", Region: "75"}, 2},
		{"region without its country", Address{Country: "DE", Region: "BE"}, -1},
		{"region of a region-only country", Address{Country: "DE", Region: "by"}, 3},
		{"unlisted", Address{Country: "JP"}, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tab.regionIndex(tt.addr); got != tt.want {
				t.Errorf("scan: %d, want %d", got, tt.want)
			}
			if got := checked.regionIndex(tt.addr); got != tt.want {
				t.Errorf("checked: %d, want %d", got, tt.want)
			}
		})
	}
}
