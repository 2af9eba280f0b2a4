package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// `mercato bench checkout --coupon` (issue #16's figure: the HTTP checkout
// holds with a coupon applied, ≥ 0.9× without): the checkout loop on one
// server as two sets of buyers — one applies a coupon code to every order
// (the promotion is quoted, redeemed and counted in the checkout's unit),
// the other does not — in alternating rounds of the same run, so that both
// see the same machine. --coupon-at says where the coupon side gives the
// code: checkout (the default) in the checkout's body, coupon_codes, so
// that its loop has the same 4 POSTs as the other side's; cart on the cart
// first, POST …/coupons, one request more a loop. It prints both
// paid-orders figures, the ratio overall and by round, and each side's step
// latencies.

// couponFlags are the checkout flags of the comparison.
type couponFlags struct {
	on bool
	at string // "checkout" or "cart"
}

// Where the coupon side gives its code (--coupon-at).
const (
	couponAtCheckout = "checkout"
	couponAtCart     = "cart"
)

func (f *couponFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.on, "coupon", false, "create a 10% coupon and run the loop with it applied to every order and without,\n"+
		"in alternating --rounds on --url; print paid orders/s of each and the ratio")
	fs.StringVar(&f.at, "coupon-at", couponAtCheckout, "with --coupon: where the code is given, checkout (coupon_codes in the checkout's body:\n"+
		"4 POSTs a loop, as without) or cart (POST …/coupons before checkout: 5 POSTs a loop)")
}

// CouponComparison is the result of `mercato bench checkout --coupon`
// (--json).
type CouponComparison struct {
	Scenario string `json:"scenario"`
	URL      string `json:"url"`
	Buyers   int    `json:"buyers"`
	Rounds   int    `json:"rounds"`
	Code     string `json:"code"`
	// CouponAt is where the coupon side gave Code: "checkout" (in the
	// checkout's body) or "cart" (POST …/coupons first).
	CouponAt string `json:"coupon_at"`
	// Coupon is the side whose orders apply Code, Plain the one whose do not.
	Coupon *PaySide `json:"coupon"`
	Plain  *PaySide `json:"plain"`
	// Ratio is Coupon's paid orders/s ÷ Plain's; RoundRatios the same for
	// each round (the two sides' r-th rounds, run back to back).
	Ratio       float64   `json:"ratio"`
	RoundRatios []float64 `json:"round_ratios"`
	LoadAverage string    `json:"load_average"`
}

// cmdBenchCoupon is `bench checkout --coupon` once its flags are parsed.
func cmdBenchCoupon(ctx context.Context, fs *flag.FlagSet, c benchCommon, at string, rounds int, duration time.Duration, orders, nSKU int, stdout, stderr io.Writer) error {
	if rounds < 1 {
		return usagef(fs, "--rounds must be at least 1")
	}
	if at != couponAtCheckout && at != couponAtCart {
		return usagef(fs, "--coupon-at must be checkout or cart")
	}
	cmp, err := benchCoupon(ctx, c, at, rounds, duration, orders, nSKU, stderr)
	if err != nil {
		return err
	}
	if c.jsonOut {
		return writeJSON(stdout, cmp)
	}
	printCouponComparison(stdout, cmp)
	return nil
}

// benchCoupon runs the comparison: both sides set up on c.url (each its
// product and buyers), the coupon created as staff, then rounds rounds on
// each side, alternating which goes first; then both read back. The coupon
// side gives the code where at says.
func benchCoupon(ctx context.Context, c benchCommon, at string, rounds int, duration time.Duration, orders, nSKU int, stderr io.Writer) (*CouponComparison, error) {
	withCoupon := func(coupon, _ *benchSide) error {
		coupon.coupon = strings.ToUpper("BENCH-" + coupon.run) // as the server keeps it
		coupon.couponAtCheckout = at == couponAtCheckout
		if err := coupon.admin.expect(ctx, http.StatusCreated, "POST", "/api/v1/admin/promotions", map[string]any{
			"name": "Bench coupon " + coupon.run, "kind": "percentage", "percent_bp": 1000, "codes": []string{coupon.coupon},
		}, "bench-"+coupon.run+"-coupon", nil); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		return nil
	}
	r, err := compareSides(ctx, c, [2]string{"coupon", "plain"}, [2]string{c.url, c.url}, rounds, duration, orders, nSKU, withCoupon, stderr)
	if err != nil {
		return nil, err
	}
	return &CouponComparison{Scenario: "checkout-coupon", URL: c.url, Buyers: c.buyers, Rounds: rounds, Code: r.a.coupon, CouponAt: at,
		Coupon: r.a.out, Plain: r.b.out, Ratio: r.ratio, RoundRatios: r.rounds, LoadAverage: r.load}, nil
}

func printCouponComparison(w io.Writer, cmp *CouponComparison) {
	where := "given in every checkout's body (--coupon-at checkout: 4 POSTs a loop, as without)"
	if cmp.CouponAt == couponAtCart {
		where = "entered on every cart before checkout (--coupon-at cart: 5 POSTs a loop against 4)"
	}
	fmt.Fprintf(w, "checkout with coupon %s %s vs without: %s, %d buyers each, %d rounds each (load average %s)\n",
		cmp.Code, where, cmp.URL, cmp.Buyers, cmp.Rounds, cmp.LoadAverage)
	printSides(w, [2]string{"coupon", "plain"}, [2]*PaySide{cmp.Coupon, cmp.Plain}, false)
	printRatio(w, cmp.Ratio, cmp.RoundRatios, "with a coupon, per those without")
}
