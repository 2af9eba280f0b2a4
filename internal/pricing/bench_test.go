package pricing

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// benchInput is a 10-line cart shipped to the last of 50 tax regions (100
// rates: two classes each), with n active promotions that all apply:
// percentages (some scoped to a category), fixed amounts, BXGYs, a free
// shipping, all combinable, a third behind coupons.
func benchInput(n int) Input {
	in := Input{Currency: "EUR", Now: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC), Channel: "web",
		Customer: Customer{ID: "c", Groups: []string{"vip"}}, Address: Address{Country: "FR", Region: "R49"},
		ShippingMethod: MethodStandard}
	cats := []string{"shoes", "socks", "hats", "shirts", "bags"}
	for i := range 10 {
		in.Lines = append(in.Lines, Line{SKU: fmt.Sprintf("SKU-%d", i), ProductID: fmt.Sprintf("P-%d", i),
			CategoryIDs: []string{cats[i%len(cats)]}, Quantity: int64(1 + i%3), UnitPrice: eur(int64(999 + 731*i)),
			WeightGrams: int64(200 + 50*i), TaxClass: []string{"standard", "reduced"}[i%2]})
	}
	in.Shipping = ShippingTable{Version: 1, Zones: []Zone{
		{ID: "fr", Areas: []Area{{Country: "FR"}}, Rates: []Rate{
			{Method: MethodStandard, Kind: RateWeight, Brackets: []Bracket{
				{From: 0, To: 2000, Price: eur(490)}, {From: 2000, To: 10000, Price: eur(790)}, {From: 10000, Price: eur(1490)}}},
			{Method: MethodExpress, Kind: RateFlat, Price: eurp(1500)}}},
		{ID: "de", Areas: []Area{{Country: "DE"}, {Country: "AT"}}, Rates: []Rate{{Method: MethodStandard, Kind: RateFlat, Price: eurp(690)}}},
	}}
	in.Tax = TaxTable{Version: 1}
	for r := range 50 {
		in.Tax.Regions = append(in.Tax.Regions, TaxRegion{Country: "FR", Region: fmt.Sprintf("R%d", r), Rounding: RoundOrder,
			ShippingTaxable: true, Rates: []TaxRate{{Class: "standard", BP: 2000}, {Class: "reduced", BP: 550 + int64(r)}}})
	}
	for i := range n {
		p := Promotion{ID: fmt.Sprintf("promo-%02d", i), Version: 3, Priority: i % 4, CustomerGroups: []string{"vip"},
			MinSubtotal: eurp(1000), BudgetLeft: eurp(1_000_000)}
		switch i % 5 {
		case 0, 1:
			p.Kind, p.PercentBP, p.AppliesTo = Percentage, int64(300+100*i), Target{CategoryIDs: []string{cats[i%len(cats)]}}
		case 2:
			p.Kind, p.Amount = Fixed, eurp(int64(150*i))
		case 3:
			p.Kind, p.PercentBP = BuyXGetY, 5000
			p.BXGY = &BXGY{Buy: 2, BuySet: Target{CategoryIDs: []string{"shoes", "socks"}}, Get: 1, GetSet: Target{CategoryIDs: []string{"socks"}}}
		default: // one free shipping: a second would not apply
			p.Kind, p.PercentBP = Percentage, 250
			if i == 4 {
				p.Kind, p.PercentBP = FreeShipping, 0
			}
		}
		if i%3 == 0 {
			p.Code = fmt.Sprintf("CODE-%d", i)
			in.Coupons = append(in.Coupons, p.Code)
		}
		in.Promotions = append(in.Promotions, p)
	}
	return in
}

// BenchmarkQuote prices the 10-line cart with 10 active promotions and 100
// tax rates, and the same cart without promotions as the reference, one
// after the other in each iteration so that both see the same machine
// load. Each quote is timed: quote-ns/op and p99-ns are the cart's figures,
// ref-ns/op and ref-p99-ns the reference's (the framework's ns/op is the
// pair). checked-ns/op and checked-p99-ns are the cart's figures with the
// tax table checked once beforehand (TaxTable.Checked), as the rates
// module's cache hands it to every quote of the shop.
func BenchmarkQuote(b *testing.B) {
	full, ref := benchInput(10), benchInput(0)
	checked := full
	var err error
	if checked.Tax, err = full.Tax.Checked(); err != nil {
		b.Fatal(err)
	}
	for _, in := range []Input{full, ref, checked} {
		q, err := Quote(in)
		if err != nil {
			b.Fatal(err)
		}
		if len(in.Promotions) > 0 && len(q.Promotions) != len(in.Promotions) {
			b.Fatalf("%d of %d promotions applied", len(q.Promotions), len(in.Promotions))
		}
	}
	var times, refTimes, checkedTimes []time.Duration
	for b.Loop() {
		t0 := time.Now()
		_, err := Quote(full)
		t1 := time.Now()
		_, refErr := Quote(ref)
		t2 := time.Now()
		_, checkedErr := Quote(checked)
		t3 := time.Now()
		if err != nil || refErr != nil || checkedErr != nil {
			b.Fatal(err, refErr, checkedErr)
		}
		times, refTimes, checkedTimes = append(times, t1.Sub(t0)), append(refTimes, t2.Sub(t1)), append(checkedTimes, t3.Sub(t2))
	}
	b.ReportMetric(mean(times), "quote-ns/op")
	b.ReportMetric(p99(times), "p99-ns")
	b.ReportMetric(mean(refTimes), "ref-ns/op")
	b.ReportMetric(p99(refTimes), "ref-p99-ns")
	b.ReportMetric(mean(checkedTimes), "checked-ns/op")
	b.ReportMetric(p99(checkedTimes), "checked-p99-ns")
}

func p99(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)*99/100])
}

func mean(ds []time.Duration) float64 {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return float64(t) / float64(len(ds))
}
