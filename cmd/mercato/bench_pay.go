package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// `mercato bench checkout --pay-reference URL` (issue #17's figure: paying
// stays on the write path): the checkout loop on two servers that differ in
// how they pay — --url through the payments module (the shop's one path:
// attempt recorded, provider called outside the unit, capture committed
// with order.paid), --pay-reference through the orders module's inline test
// sandbox (serve --pay-inline-sandbox: order.paid in the pay unit, no
// payment rows) — in alternating rounds of the same run, so that both see
// the same machine. It prints both paid-orders figures and their ratio.

// payReferenceFlags are the checkout flags of the comparison.
type payReferenceFlags struct {
	url    string
	rounds int
}

func (p *payReferenceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.url, "pay-reference", "", "a second running server, started like --url's but with serve --pay-inline-sandbox:\n"+
		"run the loop on both in alternating rounds and print paid orders/s of each and the ratio\n"+
		"(both take the same admin credentials)")
	fs.IntVar(&p.rounds, "rounds", 4, "with --pay-reference or --coupon: rounds per side (each --duration/rounds, or --orders/rounds loops)")
}

// PayComparison is the result of `mercato bench checkout --pay-reference`
// (--json).
type PayComparison struct {
	Scenario string `json:"scenario"`
	Buyers   int    `json:"buyers"`
	Rounds   int    `json:"rounds"`
	// Payments is --url's side (the payments module pays), Inline
	// --pay-reference's (the orders module's inline sandbox pays).
	Payments *PaySide `json:"payments"`
	Inline   *PaySide `json:"inline"`
	// Ratio is Payments' paid orders/s ÷ Inline's; RoundRatios the same
	// for each round (the two servers' r-th rounds, run back to back).
	Ratio       float64    `json:"ratio"`
	RoundRatios []float64  `json:"round_ratios"`
	Reference   *Reference `json:"reference,omitempty"`
	LoadAverage string     `json:"load_average"`
}

// PaySide is one server's part of a PayComparison: its loops over every
// round (Seconds is the timed loops' time; the waits for its consumers to
// settle after each round are SettleSeconds, not timed).
type PaySide struct {
	URL           string             `json:"url"`
	Seconds       float64            `json:"seconds"`
	Loops         int                `json:"loops"`
	Placed        int                `json:"orders_placed"`
	Paid          int                `json:"orders_paid"`
	PaidPerSec    float64            `json:"orders_paid_per_sec"`
	RoundsPerSec  []float64          `json:"rounds_paid_per_sec"`
	SettleSeconds float64            `json:"settle_seconds"`
	Loop          Latency            `json:"loop"`
	Steps         map[string]Latency `json:"steps"`
	Errors        map[string]int     `json:"errors"`
	ReadBack      *ReadBack          `json:"read_back"`
	// Writes is what the server's write path did over all its rounds and
	// settles (its /metrics before the first round and after the last
	// settle), per paid order; nil when it serves no /metrics, or when both
	// sides run on one server (bench checkout --coupon).
	Writes *ServerWrites `json:"server_writes,omitempty"`
}

// benchSide is a server set up for the loop: its product, its buyers.
type benchSide struct {
	name   string
	base   *benchClient
	admin  *benchClient
	run    string
	since  time.Time
	skus   []string
	putIn  map[string]int
	tokens []string
	iter   []int  // each buyer's next loop number (keys stay unique over rounds)
	coupon string // applied to every order ("" none): bench_coupon.go
	// couponAtCheckout: coupon goes in the checkout's body (coupon_codes),
	// else it is entered on the cart first (POST …/coupons).
	couponAtCheckout bool
	tally            *tally
	out              *PaySide
	// writes is the server's write counters before its first round;
	// scraped is false when it serves no /metrics.
	writes  writeCounters
	scraped bool
}

// setupSide logs in to url, creates the loop's product with nSKU SKUs of
// stock units each and registers buyers.
func setupSide(ctx context.Context, c benchCommon, name, url string, nSKU, stock int, stderr io.Writer) (*benchSide, error) {
	base := &benchClient{base: url, hc: newBenchHTTP(c.buyers + 2)}
	tok, err := adminLogin(ctx, base, c.adminToken, c.adminEmail, c.adminPassword)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	s := &benchSide{name: name, base: base, admin: base.as(tok), run: randomSuffix(), since: time.Now().Add(-time.Minute),
		putIn: map[string]int{}, tokens: make([]string, c.buyers), iter: make([]int, c.buyers), tally: newTally(),
		out: &PaySide{URL: url, Steps: map[string]Latency{}}}
	for i := range nSKU {
		sku := fmt.Sprintf("BENCH-%s-%d", s.run, i)
		s.skus = append(s.skus, sku)
		s.putIn[sku] = stock
	}
	if err := setupProduct(ctx, s.admin, s.run, s.putIn); err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	fmt.Fprintf(stderr, "bench %s (%s, %s): product with %d SKUs, registering %d buyers…\n", s.run, name, url, nSKU, c.buyers)
	if err := parallel(c.buyers, min(c.buyers, 8), func(i int) error {
		t, err := registerBuyer(ctx, base, fmt.Sprintf("bench-%s-%d@example.com", s.run, i))
		s.tokens[i] = t
		return err
	}); err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return s, nil
}

// round runs the loop on s with every buyer until loops loops were
// attempted in all (loops > 0) or for d, and adds what it saw to s.
func (s *benchSide) round(ctx context.Context, label string, loops int, d time.Duration, stderr io.Writer) {
	var attempted, placed, paid, failed atomic.Int64
	tallies := make([]*tally, len(s.tokens))
	start := time.Now()
	stop := progress(stderr, start, func() string {
		return fmt.Sprintf("%s: placed %d  paid %d  errors %d  %.0f paid/s", label, placed.Load(), paid.Load(), failed.Load(),
			float64(paid.Load())/time.Since(start).Seconds())
	})
	var wg sync.WaitGroup
	for i := range s.tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := newTally()
			tallies[i] = t
			buyer := s.base.as(s.tokens[i])
			sku := s.skus[i%len(s.skus)]
			for ctx.Err() == nil {
				if loops > 0 && attempted.Add(1) > int64(loops) {
					return
				}
				if loops == 0 {
					if time.Since(start) >= d {
						return
					}
					attempted.Add(1)
				}
				key := fmt.Sprintf("bench-%s-%d-%d", s.run, i, s.iter[i])
				s.iter[i]++
				if benchLoop(ctx, buyer, t, key, sku, s.coupon, s.couponAtCheckout, &placed) {
					paid.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	stop()
	for _, t := range tallies {
		s.tally.merge(t)
	}
	o := s.out
	o.Seconds += el
	n := attempted.Load()
	if loops > 0 {
		n = min(n, int64(loops))
	}
	o.Loops += int(n)
	o.Placed += int(placed.Load())
	o.Paid += int(paid.Load())
	o.RoundsPerSec = append(o.RoundsPerSec, float64(paid.Load())/el)
}

// benchLoop is one loop of `bench checkout`: cart → item → (coupon, when
// one is given and not atCheckout) → checkout (with the coupon in
// coupon_codes, when atCheckout) → pay, each POST with an Idempotency-Key
// from key, its steps' durations and errors in t. It reports whether the
// order was paid.
func benchLoop(ctx context.Context, buyer *benchClient, t *tally, key, sku, coupon string, atCheckout bool, placed *atomic.Int64) bool {
	t0 := time.Now()
	step := func(name, method, path string, body any, want int) (answer, bool) {
		s := time.Now()
		a := buyer.do(ctx, method, path, body, key+"-"+name)
		t.steps[name] = append(t.steps[name], time.Since(s))
		if !a.ok(want) {
			t.errors[name+": "+a.label()]++
			return a, false
		}
		return a, true
	}
	a, ok := step("cart", "POST", "/api/v1/carts", nil, http.StatusCreated)
	var cart struct{ ID string }
	if !ok || a.decode(&cart) != nil {
		return false
	}
	if _, ok := step("item", "POST", "/api/v1/carts/"+cart.ID+"/items", map[string]any{"sku": sku, "quantity": 1}, http.StatusOK); !ok {
		return false
	}
	checkout := map[string]any{"shipping_address": benchAddress()}
	switch {
	case coupon != "" && atCheckout:
		checkout["coupon_codes"] = []string{coupon}
	case coupon != "":
		if _, ok := step("coupon", "POST", "/api/v1/carts/"+cart.ID+"/coupons", map[string]any{"code": coupon}, http.StatusOK); !ok {
			return false
		}
	}
	a, ok = step("checkout", "POST", "/api/v1/carts/"+cart.ID+"/checkout", checkout, http.StatusCreated)
	var order struct{ ID string }
	if !ok || a.decode(&order) != nil {
		return false
	}
	placed.Add(1)
	if _, ok := step("pay", "POST", "/api/v1/orders/"+order.ID+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"}, http.StatusOK); !ok {
		return false
	}
	t.steps["loop"] = append(t.steps["loop"], time.Since(t0))
	return true
}

// benchPayReference runs the comparison: both servers set up, then
// p.rounds rounds on each, alternating which goes first (payments, inline;
// inline, payments; …), each followed by an untimed wait for that server's
// consumers to settle so that no round pays for the last one's backlog;
// then both read back.
func benchPayReference(ctx context.Context, c benchCommon, p payReferenceFlags, duration time.Duration, orders, nSKU int, stderr io.Writer) (*PayComparison, error) {
	r, err := compareSides(ctx, c, [2]string{"payments", "inline"}, [2]string{c.url, p.url}, p.rounds, duration, orders, nSKU, nil, stderr)
	if err != nil {
		return nil, err
	}
	cmp := &PayComparison{Scenario: "checkout-pay-reference", Buyers: c.buyers, Rounds: p.rounds, Payments: r.a.out, Inline: r.b.out,
		Ratio: r.ratio, RoundRatios: r.rounds, LoadAverage: r.load}
	if c.ref.enabled() {
		if c.ref.clients <= 0 {
			c.ref.clients = c.buyers
		}
		fmt.Fprintln(stderr, "measuring the reference…")
		if cmp.Reference, err = measureReference(ctx, c.ref, stderr); err != nil {
			return nil, err
		}
	}
	return cmp, nil
}

// comparison is what compareSides measured: the two sides, a's paid
// orders/s ÷ b's overall and by round, the load average after the rounds.
type comparison struct {
	a, b   *benchSide
	ratio  float64
	rounds []float64
	load   string
}

// compareSides sets up a side on each of urls (names[i] on urls[i]), lets
// prepare (nil: none) finish them, runs rounds rounds on each alternately
// and reads both back.
func compareSides(ctx context.Context, c benchCommon, names, urls [2]string, rounds int, duration time.Duration, orders, nSKU int,
	prepare func(a, b *benchSide) error, stderr io.Writer) (*comparison, error) {
	if rounds < 1 {
		return nil, errors.New("--rounds must be at least 1")
	}
	stock := 1_000_000
	if orders > 0 {
		stock = orders
	}
	var sides [2]*benchSide
	for i := range sides {
		s, err := setupSide(ctx, c, names[i], urls[i], nSKU, stock, stderr)
		if err != nil {
			return nil, err
		}
		sides[i] = s
	}
	if prepare != nil {
		if err := prepare(sides[0], sides[1]); err != nil {
			return nil, err
		}
	}
	apart := urls[0] != urls[1] // each side's writes are its own server's
	if apart {
		for _, s := range sides {
			s.writes, s.scraped = scrapeWrites(ctx, s.admin)
		}
	}
	if err := alternate(ctx, c, sides[0], sides[1], rounds, duration, orders, stderr); err != nil {
		return nil, err
	}
	for _, s := range sides {
		if after, ok := scrapeWrites(ctx, s.admin); ok && s.scraped {
			s.out.Writes = serverWrites(s.writes, after, s.out.Paid, s.out.Seconds+s.out.SettleSeconds)
		}
	}
	r := &comparison{a: sides[0], b: sides[1], load: loadAverage()}
	fmt.Fprintln(stderr, "reading back…")
	var err error
	if r.ratio, r.rounds, err = readBackSides(ctx, c, r.a, r.b); err != nil {
		return nil, err
	}
	return r, nil
}

// alternate runs rounds rounds on each of a and b, alternating which goes
// first (a, b; b, a; …), each followed by an untimed wait for that side's
// server to settle so that no round pays for the last one's backlog. Each
// round runs for duration/rounds, or (orders > 0) its share of orders
// loops, the remainder in the first rounds.
func alternate(ctx context.Context, c benchCommon, a, b *benchSide, rounds int, duration time.Duration, orders int, stderr io.Writer) error {
	for r := range rounds {
		order := []*benchSide{a, b}
		if r%2 == 1 {
			order = []*benchSide{b, a}
		}
		for _, s := range order {
			n := 0
			if orders > 0 {
				n = orders / rounds
				if r < orders%rounds {
					n++
				}
				if n == 0 {
					continue
				}
			}
			s.round(ctx, fmt.Sprintf("round %d/%d %-8s", r+1, rounds, s.name), n, duration/time.Duration(rounds), stderr)
			t0 := time.Now()
			if _, err := settle(ctx, s.admin, c.settle); err != nil {
				return err
			}
			s.out.SettleSeconds += time.Since(t0).Seconds()
		}
	}
	return nil
}

// readBackSides sums up a's and b's rounds (rates, latencies of every
// step of the loop, errors), reads each side's orders and stock back, and
// answers a's paid orders/s ÷ b's, overall and by round.
func readBackSides(ctx context.Context, c benchCommon, a, b *benchSide) (float64, []float64, error) {
	for _, s := range []*benchSide{a, b} {
		o := s.out
		o.PaidPerSec = float64(o.Paid) / o.Seconds
		o.Loop, o.Errors = summarize(s.tally.steps["loop"]), s.tally.errors
		for _, name := range []string{"cart", "item", "coupon", "checkout", "pay"} {
			if d, ok := s.tally.steps[name]; ok {
				o.Steps[name] = summarize(d)
			}
		}
		var err error
		if o.ReadBack, err = readBack(ctx, s.admin, s.putIn, s.since, c.settle); err != nil {
			return 0, nil, err
		}
	}
	var ratio float64
	var rounds []float64
	if b.out.PaidPerSec > 0 {
		ratio = a.out.PaidPerSec / b.out.PaidPerSec
	}
	for r := range min(len(a.out.RoundsPerSec), len(b.out.RoundsPerSec)) {
		if in := b.out.RoundsPerSec[r]; in > 0 {
			rounds = append(rounds, a.out.RoundsPerSec[r]/in)
		}
	}
	return ratio, rounds, nil
}

func printPayComparison(w io.Writer, cmp *PayComparison) {
	fmt.Fprintf(w, "checkout, paying through the payments module vs the orders module's inline sandbox: %d buyers, %d rounds each (load average %s)\n",
		cmp.Buyers, cmp.Rounds, cmp.LoadAverage)
	printSides(w, [2]string{"payments", "inline"}, [2]*PaySide{cmp.Payments, cmp.Inline}, true)
	if p, in := cmp.Payments.Writes, cmp.Inline.Writes; p != nil && in != nil {
		fmt.Fprintf(w, "writes per paid order, payments − inline: %+.2f commits, %+.1f writer statements, %+.2f ms writer busy\n",
			p.CommitsPerOrder-in.CommitsPerOrder, p.StmtsPerOrder-in.StmtsPerOrder, p.BusyMsPerOrder-in.BusyMsPerOrder)
	}
	printRatio(w, cmp.Ratio, cmp.RoundRatios, "with the payments module paying, per the inline sandbox's")
	if cmp.Reference != nil {
		printReference(w, cmp.Reference)
	}
}

// printSides writes each side's figures under its name (with its server's
// URL when withURL).
func printSides(w io.Writer, names [2]string, sides [2]*PaySide, withURL bool) {
	for i, p := range sides {
		name := names[i]
		if withURL {
			name += " (" + p.URL + ")"
		}
		fmt.Fprintf(w, "%s: loops %d  placed %d  paid %d in %.1fs: %.1f orders paid/s; rounds", name, p.Loops, p.Placed, p.Paid, p.Seconds, p.PaidPerSec)
		printSide(w, p)
	}
}

// printRatio writes the comparison's ratio line; what says what it
// compares.
func printRatio(w io.Writer, ratio float64, rounds []float64, what string) {
	fmt.Fprintf(w, "ratio: %.3f× paid orders/s %s (same run); by round", ratio, what)
	for _, r := range rounds {
		fmt.Fprintf(w, " %.2f", r)
	}
	fmt.Fprintln(w)
}

// printSide writes the rest of a side's line (its rates by round, its
// settling time) and its latency, error and read-back tables.
func printSide(w io.Writer, p *PaySide) {
	for _, r := range p.RoundsPerSec {
		fmt.Fprintf(w, " %.1f", r)
	}
	fmt.Fprintf(w, "; settling after the rounds %.1fs\n", p.SettleSeconds)
	printLatencyTable(w, []string{"loop", "cart", "item", "coupon", "checkout", "pay"}, withLoop(p.Steps, p.Loop))
	printErrors(w, p.Errors)
	printReadBack(w, p.ReadBack)
	printServerWrites(w, p.Writes)
}
