package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The shop scenarios of `mercato bench`: checkout and flash-sale, their
// setup through the admin API and the read-back that checks what the
// server kept against what the buyers were told.

// CheckoutSummary is the result of `mercato bench checkout` (--json).
type CheckoutSummary struct {
	Scenario     string             `json:"scenario"`
	URL          string             `json:"url"`
	Buyers       int                `json:"buyers"`
	Seconds      float64            `json:"seconds"`
	Loops        int                `json:"loops"`
	Placed       int                `json:"orders_placed"`
	Paid         int                `json:"orders_paid"`
	PlacedPerSec float64            `json:"orders_placed_per_sec"`
	PaidPerSec   float64            `json:"orders_paid_per_sec"`
	Loop         Latency            `json:"loop"`
	Steps        map[string]Latency `json:"steps"`
	Errors       map[string]int     `json:"errors"`
	ReadBack     *ReadBack          `json:"read_back"`
	Reference    *Reference         `json:"reference,omitempty"`
	// Writes is what the server's write transactions cost from the first
	// loop to the settled read-back (nil when its /metrics is elsewhere).
	Writes *ServerWrites `json:"server_writes,omitempty"`
	// RatioToReference is paid orders/s ÷ the reference's commits/s;
	// RatioToPgbench placed orders/s ÷ pgbench -N tps at the same clients.
	RatioToReference float64 `json:"ratio_to_reference,omitempty"`
	RatioToPgbench   float64 `json:"ratio_to_pgbench,omitempty"`
	LoadAverage      string  `json:"load_average"`
}

// ReadBack is what the server says after the consumers settled: the run's
// orders as staff list them, and the run's stock.
type ReadBack struct {
	Orders       int  `json:"orders"`
	Pending      int  `json:"pending_payment"`
	Paid         int  `json:"paid"`
	Other        int  `json:"other"`
	PutIn        int  `json:"put_in"`
	OnHand       int  `json:"on_hand"`
	Reserved     int  `json:"reserved"`
	Available    int  `json:"available"`
	UnitsPending int  `json:"units_pending"`
	UnitsPaid    int  `json:"units_paid"`
	Oversold     int  `json:"oversold"`
	StockAddsUp  bool `json:"stock_adds_up"` // put in = available + units pending + units paid
	Sync         Sync `json:"sync"`
}

// Sync is the settled figures of GET /api/v1/admin/sync.
type Sync struct {
	Settled       bool  `json:"settled"`
	OutboxPending int64 `json:"outbox_pending"`
	Pending       int64 `json:"consumers_pending"`
	Failed        int64 `json:"consumers_failed"`
	DeadLetters   int64 `json:"dead_letters"`
}

const checkoutSynopsis = `Drive a running server as --buyers buyers: set up a product with --skus SKUs
and stock through the admin API, register each buyer once, then loop
cart → item → checkout → pay (an Idempotency-Key on every POST) for
--duration or until --orders orders were attempted. Prints orders/s,
p50/p99/p99.9 of the loop and of each step, and errors by status and code;
then reads the orders and the stock back as staff. With --data-dir or
--database-url it also measures the database's reference in the same run.
With --pay-reference URL it runs the loop in alternating --rounds on --url
and on URL, a server started with serve --pay-inline-sandbox, and prints
both paid-orders figures and the ratio: what paying through the payments
module costs. With --coupon it runs the loop on --url as two sets of buyers,
one applying a 10% coupon to every order and one not, in alternating --rounds,
and prints both paid-orders figures and the ratio: what a coupon costs. The
code goes in the checkout's body (--coupon-at checkout, the default) or on
the cart first (--coupon-at cart, one POST more a loop).`

func cmdBenchCheckout(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench checkout [flags]", checkoutSynopsis)
	var c benchCommon
	c.register(fs, 32)
	duration := fs.Duration("duration", 30*time.Second, "how long the buyers loop (unless --orders)")
	orders := fs.Int("orders", 0, "stop after this many loops in all (0: run for --duration)")
	skus := fs.Int("skus", 8, "SKUs of the product (buyers spread over them)")
	var payRef payReferenceFlags
	payRef.register(fs)
	var coupon couponFlags
	coupon.register(fs)
	if done, err := helpOK(parse(fs, args, getenv, stdout)); done {
		return err
	}
	if c.buyers < 1 || *skus < 1 || *orders < 0 {
		return usagef(fs, "--buyers and --skus must be at least 1, --orders not negative")
	}
	c.credentials(getenv)
	if coupon.on { // a coupon's cost: bench_coupon.go
		return cmdBenchCoupon(ctx, fs, c, coupon.at, payRef.rounds, *duration, *orders, *skus, stdout, stderr)
	}
	if payRef.url != "" { // the payments module's cost: bench_pay.go
		if payRef.rounds < 1 {
			return usagef(fs, "--rounds must be at least 1")
		}
		cmp, err := benchPayReference(ctx, c, payRef, *duration, *orders, *skus, stderr)
		if err != nil {
			return err
		}
		if c.jsonOut {
			return writeJSON(stdout, cmp)
		}
		printPayComparison(stdout, cmp)
		return nil
	}
	s, err := benchCheckout(ctx, c, *duration, *orders, *skus, stderr)
	if err != nil {
		return err
	}
	if c.jsonOut {
		return writeJSON(stdout, s)
	}
	printCheckout(stdout, s)
	return nil
}

// benchCheckout runs the checkout scenario.
func benchCheckout(ctx context.Context, c benchCommon, duration time.Duration, orders, nSKU int, stderr io.Writer) (*CheckoutSummary, error) {
	base := &benchClient{base: c.url, hc: newBenchHTTP(c.buyers + 2)}
	tok, err := adminLogin(ctx, base, c.adminToken, c.adminEmail, c.adminPassword)
	if err != nil {
		return nil, err
	}
	admin := base.as(tok)
	run := randomSuffix()
	since := time.Now().Add(-time.Minute)
	stock := 1_000_000
	if orders > 0 {
		stock = orders
	}
	skus := make([]string, nSKU)
	putIn := map[string]int{}
	for i := range skus {
		skus[i] = fmt.Sprintf("BENCH-%s-%d", run, i)
		putIn[skus[i]] = stock
	}
	if err := setupProduct(ctx, admin, run, putIn); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "bench %s: product with %d SKUs, registering %d buyers…\n", run, nSKU, c.buyers)
	tokens := make([]string, c.buyers)
	if err := parallel(c.buyers, min(c.buyers, 8), func(i int) error {
		t, err := registerBuyer(ctx, base, fmt.Sprintf("bench-%s-%d@example.com", run, i))
		tokens[i] = t
		return err
	}); err != nil {
		return nil, err
	}

	var loops, placed, paid, failed atomic.Int64
	tallies := make([]*tally, c.buyers)
	writesBefore, scraped := scrapeWrites(ctx, admin)
	start := time.Now()
	stop := progress(stderr, start, func() string {
		return fmt.Sprintf("placed %d  paid %d  errors %d  %.0f paid/s", placed.Load(), paid.Load(), failed.Load(),
			float64(paid.Load())/time.Since(start).Seconds())
	})
	var wg sync.WaitGroup
	for i := range c.buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := newTally()
			tallies[i] = t
			buyer := base.as(tokens[i])
			sku := skus[i%nSKU]
			fail := func(step string, a answer) {
				t.errors[step+": "+a.label()]++
				failed.Add(1)
			}
			for iter := 0; ctx.Err() == nil; iter++ {
				if orders > 0 && loops.Add(1) > int64(orders) {
					return
				}
				if orders == 0 {
					if time.Since(start) >= duration {
						return
					}
					loops.Add(1)
				}
				key := fmt.Sprintf("bench-%s-%d-%d", run, i, iter)
				t0 := time.Now()
				step := func(name, method, path string, body any, want int) (answer, bool) {
					s := time.Now()
					a := buyer.do(ctx, method, path, body, key+"-"+name)
					t.steps[name] = append(t.steps[name], time.Since(s))
					if !a.ok(want) {
						fail(name, a)
						return a, false
					}
					return a, true
				}
				a, ok := step("cart", "POST", "/api/v1/carts", nil, http.StatusCreated)
				if !ok {
					continue
				}
				var cart struct{ ID string }
				if a.decode(&cart) != nil {
					fail("cart", a)
					continue
				}
				if _, ok := step("item", "POST", "/api/v1/carts/"+cart.ID+"/items", map[string]any{"sku": sku, "quantity": 1}, http.StatusOK); !ok {
					continue
				}
				a, ok = step("checkout", "POST", "/api/v1/carts/"+cart.ID+"/checkout", map[string]any{"shipping_address": benchAddress()}, http.StatusCreated)
				if !ok {
					continue
				}
				var order struct{ ID string }
				if a.decode(&order) != nil {
					fail("checkout", a)
					continue
				}
				placed.Add(1)
				if _, ok := step("pay", "POST", "/api/v1/orders/"+order.ID+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"}, http.StatusOK); !ok {
					continue
				}
				paid.Add(1)
				t.steps["loop"] = append(t.steps["loop"], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	stop()

	all := newTally()
	for _, t := range tallies {
		all.merge(t)
	}
	s := &CheckoutSummary{
		Scenario: "checkout", URL: c.url, Buyers: c.buyers, Seconds: elapsed,
		Loops: int(min(loops.Load(), int64(max(orders, 0)))), Placed: int(placed.Load()), Paid: int(paid.Load()),
		PlacedPerSec: float64(placed.Load()) / elapsed, PaidPerSec: float64(paid.Load()) / elapsed,
		Loop: summarize(all.steps["loop"]), Steps: map[string]Latency{}, Errors: all.errors,
		LoadAverage: loadAverage(),
	}
	if orders == 0 {
		s.Loops = int(loops.Load())
	}
	for _, name := range []string{"cart", "item", "checkout", "pay"} {
		s.Steps[name] = summarize(all.steps[name])
	}
	fmt.Fprintln(stderr, "reading back…")
	if s.ReadBack, err = readBack(ctx, admin, putIn, since, c.settle); err != nil {
		return nil, err
	}
	if after, ok := scrapeWrites(ctx, admin); ok && scraped {
		// The consumers' work after the last loop counts too: the share is
		// over the time to the settled read-back.
		s.Writes = serverWrites(writesBefore, after, s.Paid, time.Since(start).Seconds())
	}
	if c.ref.enabled() {
		if c.ref.clients <= 0 {
			c.ref.clients = c.buyers
		}
		fmt.Fprintln(stderr, "measuring the reference…")
		if s.Reference, err = measureReference(ctx, c.ref, stderr); err != nil {
			return nil, err
		}
		if s.Reference.CommitsPerSec > 0 {
			s.RatioToReference = s.PaidPerSec / s.Reference.CommitsPerSec
		}
		if s.Reference.PgbenchTPS > 0 {
			s.RatioToPgbench = s.PlacedPerSec / s.Reference.PgbenchTPS
		}
	}
	return s, nil
}

func printCheckout(w io.Writer, s *CheckoutSummary) {
	fmt.Fprintf(w, "checkout: %d buyers against %s for %.1fs (load average %s)\n", s.Buyers, s.URL, s.Seconds, s.LoadAverage)
	fmt.Fprintf(w, "  loops %d  placed %d  paid %d\n", s.Loops, s.Placed, s.Paid)
	fmt.Fprintf(w, "  %.1f orders placed/s  %.1f orders paid/s\n", s.PlacedPerSec, s.PaidPerSec)
	printLatencyTable(w, []string{"loop", "cart", "item", "checkout", "pay"}, withLoop(s.Steps, s.Loop))
	printErrors(w, s.Errors)
	printReadBack(w, s.ReadBack)
	printServerWrites(w, s.Writes)
	if s.Reference != nil {
		printReference(w, s.Reference)
		fmt.Fprintf(w, "  ratio: %.3f× paid orders/s per reference commit/s\n", s.RatioToReference)
		if s.RatioToPgbench > 0 {
			fmt.Fprintf(w, "  ratio: %.3f× placed orders/s per pgbench -N tps\n", s.RatioToPgbench)
		}
	}
}

func withLoop(steps map[string]Latency, loop Latency) map[string]Latency {
	m := map[string]Latency{"loop": loop}
	for k, v := range steps {
		m[k] = v
	}
	return m
}

func printReadBack(w io.Writer, r *ReadBack) {
	fmt.Fprintf(w, "read back (as staff, after settling: %v):\n", r.Sync.Settled)
	fmt.Fprintf(w, "  orders %d (pending %d, paid %d, other %d)\n", r.Orders, r.Pending, r.Paid, r.Other)
	fmt.Fprintf(w, "  stock: put in %d = available %d + in pending orders %d + sold %d: %v; on hand %d, reserved %d\n",
		r.PutIn, r.Available, r.UnitsPending, r.UnitsPaid, r.StockAddsUp, r.OnHand, r.Reserved)
	fmt.Fprintf(w, "  oversold: %d\n", r.Oversold)
	fmt.Fprintf(w, "  sync: outbox pending %d, consumers pending %d, failed attempts %d, dead letters %d\n",
		r.Sync.OutboxPending, r.Sync.Pending, r.Sync.Failed, r.Sync.DeadLetters)
}

// setupProduct creates an active product with a variant per SKU of putIn
// and sets each SKU's stock.
func setupProduct(ctx context.Context, admin *benchClient, run string, putIn map[string]int) error {
	variants := []map[string]any{}
	for sku := range putIn {
		variants = append(variants, map[string]any{"sku": sku, "title": sku,
			"price": map[string]any{"amount": 1999, "currency": "USD"}, "attributes": map[string]string{"size": sku}})
	}
	if err := admin.expect(ctx, http.StatusCreated, "POST", "/api/v1/admin/products", map[string]any{
		"title": "Bench " + run, "description": "Load generator product.", "status": "active", "variants": variants,
	}, "bench-"+run+"-product", nil); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	for sku, n := range putIn {
		if err := admin.expect(ctx, http.StatusOK, "PUT", "/api/v1/admin/inventory/"+sku, map[string]any{"on_hand": n}, "", nil); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	return nil
}

// registerBuyer registers a customer and answers its token, waiting out a
// 429 (registration hashes a password: the server throttles them).
func registerBuyer(ctx context.Context, c *benchClient, email string) (string, error) {
	body := map[string]string{"email": email, "password": "bench buyer password " + email, "name": "Bench buyer"}
	for try := 0; ; try++ {
		a := c.do(ctx, "POST", "/api/v1/auth/register", body, "register-"+email)
		if a.ok(http.StatusCreated) {
			var r struct{ Token string }
			return r.Token, a.decode(&r)
		}
		if a.status != http.StatusTooManyRequests || try == 20 {
			return "", fmt.Errorf("register %s: %s: %s", email, a.label(), truncate(a.body, 200))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// parallel runs fn(0..n-1) on at most width goroutines and answers the
// first error.
func parallel(n, width int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, width)
	for range max(width, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errc <- err
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func benchAddress() map[string]any {
	return map[string]any{"name": "Bench Buyer", "line1": "1 Main St", "city": "Springfield", "region": "IL", "postal_code": "62701", "country": "US"}
}

// settle waits until the outbox is drained and no consumer has anything
// pending (at most d), and answers the last figures.
func settle(ctx context.Context, admin *benchClient, d time.Duration) (Sync, error) {
	deadline := time.Now().Add(d)
	for {
		var st struct {
			Consumers []struct {
				Pending int64 `json:"pending"`
				Failed  int64 `json:"failed"`
			} `json:"consumers"`
			OutboxPending int64 `json:"outbox_pending"`
			DeadLetters   int64 `json:"dead_letters"`
		}
		if err := admin.expect(ctx, http.StatusOK, "GET", "/api/v1/admin/sync", nil, "", &st); err != nil {
			return Sync{}, err
		}
		s := Sync{OutboxPending: st.OutboxPending, DeadLetters: st.DeadLetters}
		for _, c := range st.Consumers {
			s.Pending += c.Pending
			s.Failed += c.Failed
		}
		s.Settled = s.OutboxPending == 0 && s.Pending == 0
		if s.Settled || time.Now().After(deadline) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// benchOrder is the part of an order the read-back needs.
type benchOrder struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Lines  []struct {
		SKU      string `json:"sku"`
		Quantity int    `json:"quantity"`
	} `json:"lines"`
}

// listOrders pages through every order created since, as staff, and answers
// those holding a SKU of skus.
func listOrders(ctx context.Context, admin *benchClient, skus map[string]int, since time.Time) ([]benchOrder, error) {
	var out []benchOrder
	cursor := ""
	for {
		q := url.Values{"limit": {"100"}, "created_from": {since.UTC().Format(time.RFC3339)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items      []benchOrder `json:"items"`
			NextCursor string       `json:"next_cursor"`
		}
		if err := admin.expect(ctx, http.StatusOK, "GET", "/api/v1/admin/orders?"+q.Encode(), nil, "", &page); err != nil {
			return nil, fmt.Errorf("read back: %w", err)
		}
		for _, o := range page.Items {
			for _, l := range o.Lines {
				if _, ok := skus[l.SKU]; ok {
					out = append(out, o)
					break
				}
			}
		}
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
}

// readBack settles, lists the run's orders and reads its stock.
func readBack(ctx context.Context, admin *benchClient, putIn map[string]int, since time.Time, d time.Duration) (*ReadBack, error) {
	st, err := settle(ctx, admin, d)
	if err != nil {
		return nil, fmt.Errorf("read back: %w", err)
	}
	orders, err := listOrders(ctx, admin, putIn, since)
	if err != nil {
		return nil, err
	}
	r := &ReadBack{Sync: st, Orders: len(orders)}
	for _, o := range orders {
		units := 0
		for _, l := range o.Lines {
			if _, ok := putIn[l.SKU]; ok {
				units += l.Quantity
			}
		}
		switch o.Status {
		case "pending_payment":
			r.Pending++
			r.UnitsPending += units
		case "paid":
			r.Paid++
			r.UnitsPaid += units
		default:
			r.Other++
		}
	}
	for sku, n := range putIn {
		var lv struct {
			OnHand    int `json:"on_hand"`
			Reserved  int `json:"reserved"`
			Available int `json:"available"`
		}
		if err := admin.expect(ctx, http.StatusOK, "GET", "/api/v1/admin/inventory/"+sku, nil, "", &lv); err != nil {
			return nil, fmt.Errorf("read back: %w", err)
		}
		r.PutIn += n
		r.OnHand += lv.OnHand
		r.Reserved += lv.Reserved
		r.Available += lv.Available
	}
	r.StockAddsUp = r.PutIn == r.Available+r.UnitsPending+r.UnitsPaid && r.Reserved == r.UnitsPending
	r.Oversold = max(0, r.UnitsPending+r.UnitsPaid-r.PutIn)
	return r, nil
}

// itoa is strconv.Itoa (kept short for the flash-sale keys).
func itoa(i int) string { return strconv.Itoa(i) }
