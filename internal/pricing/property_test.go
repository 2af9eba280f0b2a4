package pricing

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
)

// checkInvariants asserts what every quotation must satisfy, whatever the
// rules: the sums, the identities, no line below zero, no budget exceeded.
func checkInvariants(t *testing.T, in Input, q Quotation) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("invariant: "+format, args...)
	}
	if len(q.Lines) != len(in.Lines) {
		fail("%d lines quoted for %d", len(q.Lines), len(in.Lines))
	}
	var sub, disc, tax int64
	perPromo := map[string]int64{}
	for i, l := range q.Lines {
		var ld int64
		for _, d := range l.Discounts {
			if d.Amount.Amount() <= 0 {
				fail("line %d: a discount of %v", i, d.Amount)
			}
			ld += d.Amount.Amount()
			perPromo[d.PromotionID] += d.Amount.Amount()
		}
		if ld != l.Discount.Amount() {
			fail("line %d: discounts add up to %d, not %v", i, ld, l.Discount)
		}
		if l.Discount.Amount() > l.Subtotal.Amount() {
			fail("line %d: discount %v exceeds the line's %v", i, l.Discount, l.Subtotal)
		}
		if l.Tax.IsNegative() || l.Total.IsNegative() {
			fail("line %d: negative tax %v or total %v", i, l.Tax, l.Total)
		}
		want := l.Subtotal.Amount() - l.Discount.Amount()
		if !q.TaxInclusive {
			want += l.Tax.Amount()
		} else if l.Tax.Amount() > want {
			fail("line %d: inclusive tax %v exceeds the line's %d", i, l.Tax, want)
		}
		if l.Total.Amount() != want {
			fail("line %d: total %v, want %d", i, l.Total, want)
		}
		sub += l.Subtotal.Amount()
		disc += l.Discount.Amount()
		tax += l.Tax.Amount()
	}
	if sub != q.Subtotal.Amount() || disc != q.Discount.Amount() {
		fail("lines add up to subtotal %d, discount %d; the order says %v, %v", sub, disc, q.Subtotal, q.Discount)
	}
	if tax+q.ShippingTax.Amount() != q.Tax.Amount() {
		fail("line taxes %d + shipping tax %v ≠ tax %v", tax, q.ShippingTax, q.Tax)
	}
	if q.Shipping.IsNegative() || q.ShippingDiscount.IsNegative() || q.ShippingTax.IsNegative() {
		fail("negative shipping %v, shipping discount %v or shipping tax %v", q.Shipping, q.ShippingDiscount, q.ShippingTax)
	}
	want := q.Subtotal.Amount() - q.Discount.Amount() + q.Shipping.Amount()
	if !q.TaxInclusive {
		want += q.Tax.Amount()
	}
	if q.Total.Amount() != want || q.Total.IsNegative() {
		fail("total %v, want %d (inclusive %v)", q.Total, want, q.TaxInclusive)
	}
	var shipDisc int64
	for _, a := range q.Promotions {
		if perPromo[a.ID] != a.Amount.Amount() {
			fail("promotion %s: lines record %d, the order %v", a.ID, perPromo[a.ID], a.Amount)
		}
		shipDisc += a.Shipping.Amount()
		p := promotionByID(in.Promotions, a.ID)
		if p.Version != a.Version {
			fail("promotion %s applied at version %d, given %d", a.ID, a.Version, p.Version)
		}
		if p.BudgetLeft != nil && a.Amount.Amount()+a.Shipping.Amount() > p.BudgetLeft.Amount() {
			fail("promotion %s gave %v + %v, budget left %v", a.ID, a.Amount, a.Shipping, p.BudgetLeft)
		}
		if p.UsesLeft != nil && *p.UsesLeft <= 0 {
			fail("promotion %s applied with no use left", a.ID)
		}
		delete(perPromo, a.ID)
	}
	if len(perPromo) != 0 {
		fail("lines record promotions not applied: %v", perPromo)
	}
	if shipDisc != q.ShippingDiscount.Amount() {
		fail("promotions waive %d of shipping, the order %v", shipDisc, q.ShippingDiscount)
	}
}

// tables are the shipping and tax tables most golden cases use, shared by
// the generated carts.
func tables(t testing.TB) (ShippingTable, TaxTable) { return loadTables(t, "eu-us") }

// genInput is a random cart with random promotions, from r.
func genInput(r *rand.Rand, ship ShippingTable, tax TaxTable) Input {
	eur := func(a int64) money.Money { return money.MustNew(a, "EUR") }
	ptr := func(m money.Money) *money.Money { return &m }
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	cats := []string{"shoes", "socks", "hats", "tshirts"}
	in := Input{Currency: "EUR", Now: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC), Shipping: ship, Tax: tax,
		Channel: pick("web", "app"), Customer: Customer{ID: "c", Groups: []string{pick("vip", "staff", "")}, FirstOrder: r.IntN(2) == 0}}
	for i := range 1 + r.IntN(10) {
		in.Lines = append(in.Lines, Line{SKU: fmt.Sprintf("S%d", i), ProductID: fmt.Sprintf("P%d", r.IntN(5)),
			CategoryIDs: []string{cats[r.IntN(len(cats))]}, Quantity: 1 + r.Int64N(5), UnitPrice: eur(r.Int64N(20000)),
			WeightGrams: r.Int64N(3000), TaxClass: pick("standard", "reduced", "")})
	}
	switch r.IntN(7) {
	case 0:
		in.Address = Address{Country: "FR"}
	case 1:
		in.Address = Address{Country: "DE"}
	case 2:
		in.Address = Address{Country: "BE"}
	case 3:
		in.Address = Address{Country: "US", Region: "CA"}
	case 4:
		in.Address = Address{Country: "US", Region: "NY"}
	case 5:
		in.Address = Address{Country: "US", Region: "HI"}
	default:
		in.Address = Address{Country: "JP"}
	}
	if in.Address.Country == "US" { // the US regions know one class
		for i := range in.Lines {
			in.Lines[i].TaxClass = pick("standard", "")
		}
	}
	in.ShippingMethod = pick("standard", "standard", "express", "pickup", "")
	target := func() Target {
		switch r.IntN(3) {
		case 0:
			return Target{}
		case 1:
			return Target{CategoryIDs: []string{cats[r.IntN(len(cats))]}}
		}
		return Target{SKUs: []string{fmt.Sprintf("S%d", r.IntN(10))}, ProductIDs: []string{fmt.Sprintf("P%d", r.IntN(5))}}
	}
	for i := range r.IntN(7) {
		p := Promotion{ID: fmt.Sprintf("p%d", i), Version: 1 + r.Int64N(3), Priority: r.IntN(4), Exclusive: r.IntN(4) == 0,
			AppliesTo: target()}
		switch r.IntN(4) {
		case 0:
			p.Kind, p.PercentBP = Percentage, 1+r.Int64N(10000)
		case 1:
			p.Kind, p.Amount = Fixed, ptr(eur(1+r.Int64N(30000)))
		case 2:
			p.Kind = FreeShipping
		default:
			p.Kind, p.PercentBP = BuyXGetY, 1+r.Int64N(10000)
			p.BXGY = &BXGY{Buy: 1 + r.Int64N(3), BuySet: target(), Get: 1 + r.Int64N(2), GetSet: target(), MaxUses: r.Int64N(3)}
		}
		if r.IntN(3) == 0 {
			p.BudgetLeft = ptr(eur(r.Int64N(3000)))
		}
		if r.IntN(5) == 0 {
			n := r.Int64N(2)
			p.UsesLeft = &n
		}
		if r.IntN(5) == 0 {
			p.MinSubtotal = ptr(eur(r.Int64N(50000)))
		}
		if r.IntN(3) == 0 {
			p.Code = fmt.Sprintf("CODE%d", i)
			if r.IntN(4) != 0 {
				in.Coupons = append(in.Coupons, p.Code)
			}
		}
		in.Promotions = append(in.Promotions, p)
	}
	if r.IntN(10) == 0 {
		in.Coupons = append(in.Coupons, "NOSUCHCODE")
	}
	return in
}

// TestProperties prices generated carts (fixed seed) and checks the
// invariants on every quotation, including those returned with a coupon
// error; the other errors may only be Invalid ones about shipping.
func TestProperties(t *testing.T) {
	ship, tax := tables(t)
	r := rand.New(rand.NewPCG(16, 2026))
	const n = 3000
	var priced, withCouponErr, discounted, waived int
	for i := range n {
		in := genInput(r, ship, tax)
		q, err := Quote(in)
		if err != nil {
			var e *errs.Error
			if !errors.As(err, &e) || e.Kind != errs.Invalid {
				t.Fatalf("case %d: %v is not an Invalid *errs.Error", i, err)
			}
			if errs.CodeOf(err) == CodeShippingUnavailable {
				continue
			}
			if q.Currency == "" {
				t.Fatalf("case %d: %v came without a quotation", i, err)
			}
			withCouponErr++
		}
		checkInvariants(t, in, q)
		priced++
		if q.Discount.Amount() > 0 {
			discounted++
		}
		if q.ShippingDiscount.Amount() > 0 {
			waived++
		}
	}
	// The generator must exercise what the invariants are about.
	if priced < n/2 || withCouponErr == 0 || discounted < n/4 || waived == 0 {
		t.Fatalf("weak generator: %d priced, %d with a coupon error, %d discounted, %d shipping waived of %d",
			priced, withCouponErr, discounted, waived, n)
	}
}

// TestDeterministic: one input gives one quotation.
func TestDeterministic(t *testing.T) {
	ship, tax := tables(t)
	r := rand.New(rand.NewPCG(7, 7))
	for range 200 {
		in := genInput(r, ship, tax)
		a, errA := Quote(in)
		b, errB := Quote(in)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) || fmt.Sprint(errA) != fmt.Sprint(errB) {
			t.Fatalf("two quotes of one input differ:\n%s\n%s", ja, jb)
		}
	}
}
