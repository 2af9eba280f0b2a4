package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestBenchCheckoutCoupon runs the coupon comparison on both engines
// against an in-process server, the code given at checkout (the default)
// and on the cart: every loop of every round is placed and paid on both
// sides; with --coupon-at checkout no loop sends the coupon step (the code
// rides in the checkout's body), with cart every coupon-side loop does and
// no plain one; both read back whole, the promotion counts one use per
// coupon order, and the coupon's orders carry its discount while the
// others carry none.
func TestBenchCheckoutCoupon(t *testing.T) {
	for name, args := range engines(t) {
		for _, at := range []string{"", couponAtCart} {
			mode := at
			if at == "" {
				mode = couponAtCheckout + " (default)"
			}
			t.Run(name+"/"+mode, func(t *testing.T) {
				benchCouponAt(t, args(t), at)
			})
		}
	}
}

// benchCouponAt is TestBenchCheckoutCoupon's run with --coupon-at at
// ("": the flag not given).
func benchCouponAt(t *testing.T, serveArgs []string, at string) {
	c, _ := startInProcess(t, benchAdmin, append(serveArgs, "--relay-poll", "50ms")...)
	const orders, rounds = 24, 2
	var cmp CouponComparison
	args := []string{"checkout", "--url", c.URL(), "--coupon", "--buyers", "4", "--orders", "24", "--rounds", "2", "--skus", "2"}
	if at != "" {
		args = append(args, "--coupon-at", at)
	}
	progress := runBench(t, benchAdmin, &cmp, args...)
	if !strings.Contains(progress, "round 2/2 coupon  : placed 12  paid 12  errors 0") ||
		!strings.Contains(progress, "round 1/2 plain   : placed 12  paid 12  errors 0") {
		t.Errorf("no progress lines for the rounds on stderr: %q", progress)
	}
	couponSteps, wantAt := 0, couponAtCheckout
	if at == couponAtCart {
		couponSteps, wantAt = orders, couponAtCart
	}
	if cmp.CouponAt != wantAt {
		t.Errorf("coupon_at %q, want %q", cmp.CouponAt, wantAt)
	}
	for _, side := range []struct {
		name    string
		s       *PaySide
		coupons int // loops that entered the code on the cart
	}{{"coupon", cmp.Coupon, couponSteps}, {"plain", cmp.Plain, 0}} {
		checkSide(t, side.name, side.s, orders, rounds,
			countCheck{"coupon steps", side.s.Steps["coupon"].Count, side.coupons},
			countCheck{"checkout steps", side.s.Steps["checkout"].Count, orders})
	}
	if want := cmp.Coupon.PaidPerSec / cmp.Plain.PaidPerSec; cmp.Ratio != want || len(cmp.RoundRatios) != rounds ||
		cmp.Buyers != 4 || cmp.Rounds != rounds || cmp.Code == "" {
		t.Errorf("ratio %v, want %v; buyers %d, rounds %d, code %q", cmp.Ratio, want, cmp.Buyers, cmp.Rounds, cmp.Code)
	}

	login := c.Do("POST", "/api/v1/auth/login", map[string]string{"email": benchAdmin["MERCATO_BOOTSTRAP_ADMIN_EMAIL"],
		"password": benchAdmin["MERCATO_BOOTSTRAP_ADMIN_PASSWORD"]})
	login.WantStatus(t, http.StatusOK)
	admin := c.WithToken(login.Field("token").(string))
	list := admin.Do("GET", "/api/v1/admin/promotions?status=active", nil)
	list.WantStatus(t, http.StatusOK)
	if got, _ := list.Field("items.0.codes.0").(string); got != cmp.Code {
		t.Fatalf("the newest promotion's code is %q, want %q", got, cmp.Code)
	}
	if uses, _ := list.Field("items.0.usage.uses").(float64); uses != orders {
		t.Errorf("the coupon's uses: %v, want %d", uses, orders)
	}
	// 10% off a 1999 line: 200 off each coupon order, none off the others.
	orderList := admin.Do("GET", "/api/v1/admin/orders?limit=100", nil)
	orderList.WantStatus(t, http.StatusOK)
	discounted, plain := 0, 0
	items, _ := orderList.Field("items").([]any)
	for _, it := range items {
		o, _ := it.(map[string]any)
		d, _ := o["discount"].(map[string]any)
		switch amount, _ := d["amount"].(float64); amount {
		case 200:
			discounted++
		case 0:
			plain++
		default:
			t.Errorf("order %v: discount %v", o["id"], d)
		}
	}
	if discounted != orders || plain != orders {
		t.Errorf("%d orders with the coupon's discount, %d without; want %d and %d", discounted, plain, orders, orders)
	}
}

// TestBenchCouponCommandLine: --coupon with no rounds, or with --coupon-at
// neither checkout nor cart, is a usage error (exit 2) before any server is
// called.
func TestBenchCouponCommandLine(t *testing.T) {
	for _, bad := range [][]string{{"--rounds", "0"}, {"--coupon-at", "basket"}, {"--coupon-at", ""}} {
		var out, errOut syncBuffer
		err := run(context.Background(), append([]string{"bench", "checkout", "--coupon", "--url", "http://127.0.0.1:1"}, bad...),
			func(string) string { return "" }, &out, &errOut)
		if err == nil || exitCode(err) != 2 {
			t.Errorf("%v: err = %v, want a usage error", bad, err)
		}
	}
}

// TestPrintCouponComparison: the summary says where the coupon side gave
// its code.
func TestPrintCouponComparison(t *testing.T) {
	for at, want := range map[string]string{
		couponAtCheckout: "given in every checkout's body (--coupon-at checkout: 4 POSTs a loop, as without)",
		couponAtCart:     "entered on every cart before checkout (--coupon-at cart: 5 POSTs a loop against 4)",
	} {
		var b strings.Builder
		side := func() *PaySide {
			return &PaySide{Steps: map[string]Latency{}, Errors: map[string]int{}, ReadBack: &ReadBack{}}
		}
		printCouponComparison(&b, &CouponComparison{Code: "BENCH-X", CouponAt: at, Coupon: side(), Plain: side(), Rounds: 1, Buyers: 1})
		if !strings.Contains(b.String(), "checkout with coupon BENCH-X "+want+" vs without") {
			t.Errorf("%s: summary %q", at, b.String())
		}
	}
}
