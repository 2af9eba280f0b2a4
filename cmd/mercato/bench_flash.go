package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// FlashSaleSummary is the result of `mercato bench flash-sale` (--json).
type FlashSaleSummary struct {
	Scenario      string         `json:"scenario"`
	URL           string         `json:"url"`
	Buyers        int            `json:"buyers"`
	Stock         int            `json:"stock"`
	Seconds       float64        `json:"seconds"`
	Attempts      int            `json:"attempts"`
	Decided       int            `json:"decided"` // sold or out_of_stock
	Sold          int            `json:"sold"`
	OutOfStock    int            `json:"out_of_stock"`
	ErrorCount    int            `json:"error_count"`
	DecidedPerSec float64        `json:"decided_per_sec"`
	Checkout      Latency        `json:"checkout"`
	Errors        map[string]int `json:"errors"`
	ReadBack      *ReadBack      `json:"read_back"`
	Reference     *Reference     `json:"reference,omitempty"`
	// RatioToReference is decided attempts/s ÷ the reference's commits/s.
	RatioToReference float64 `json:"ratio_to_reference,omitempty"`
	LoadAverage      string  `json:"load_average"`
}

const flashSynopsis = `Race --buyers guest buyers for --stock units of one SKU: set up the product
and its stock, give each buyer a cart holding one unit (not timed), then
release them all at once to check out (an Idempotency-Key each). Prints the
attempts decided per second (sold, or 409 out_of_stock), sold, errors, and
the oversell verdict read back from the server as staff: the stock
(put in = available + units in pending orders + units sold) and the orders.`

func cmdBenchFlashSale(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench flash-sale [flags]", flashSynopsis)
	var c benchCommon
	c.register(fs, 1000)
	stock := fs.Int("stock", 500, "units of the SKU for sale")
	if done, err := helpOK(parse(fs, args, getenv, stdout)); done {
		return err
	}
	if c.buyers < 1 || *stock < 0 {
		return usagef(fs, "--buyers must be at least 1 and --stock not negative")
	}
	c.credentials(getenv)
	s, err := benchFlashSale(ctx, c, *stock, stderr)
	if err != nil {
		return err
	}
	if c.jsonOut {
		return writeJSON(stdout, s)
	}
	printFlashSale(stdout, s)
	return nil
}

func benchFlashSale(ctx context.Context, c benchCommon, stock int, stderr io.Writer) (*FlashSaleSummary, error) {
	base := &benchClient{base: c.url, hc: newBenchHTTP(c.buyers + 2)}
	tok, err := adminLogin(ctx, base, c.adminToken, c.adminEmail, c.adminPassword)
	if err != nil {
		return nil, err
	}
	admin := base.as(tok)
	run := randomSuffix()
	since := time.Now().Add(-time.Minute)
	sku := "FLASH-" + run
	putIn := map[string]int{sku: stock}
	if err := setupProduct(ctx, admin, run, putIn); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "flash-sale %s: %d units, filling %d guest carts…\n", run, stock, c.buyers)
	type cart struct{ ID, Token string }
	carts := make([]cart, c.buyers)
	if err := parallel(c.buyers, min(c.buyers, 16), func(i int) error {
		var ct cart
		if err := base.expect(ctx, http.StatusCreated, "POST", "/api/v1/carts", nil, "flash-"+run+"-cart-"+itoa(i), &ct); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		a := base.do(ctx, "POST", "/api/v1/carts/"+ct.ID+"/items", map[string]any{"sku": sku, "quantity": 1},
			"flash-"+run+"-item-"+itoa(i), "X-Cart-Token", ct.Token)
		if !a.ok(http.StatusOK) {
			return fmt.Errorf("setup: cart item: %s: %s", a.label(), truncate(a.body, 200))
		}
		carts[i] = ct
		return nil
	}); err != nil {
		return nil, err
	}

	var sold, oos, failed atomic.Int64
	lat := make([]time.Duration, c.buyers)
	labels := make([]string, c.buyers)
	gate := make(chan struct{})
	var ready, wg sync.WaitGroup
	for i := range c.buyers {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			// Open (or reuse) this buyer's keep-alive connection before
			// the gate, so the race measures decisions, not TCP set-up.
			base.do(ctx, "GET", "/healthz", nil, "")
			ready.Done()
			<-gate
			t0 := time.Now()
			a := base.do(ctx, "POST", "/api/v1/carts/"+carts[i].ID+"/checkout", map[string]any{"shipping_address": benchAddress()},
				"flash-"+run+"-checkout-"+itoa(i), "X-Cart-Token", carts[i].Token)
			lat[i] = time.Since(t0)
			switch {
			case a.ok(http.StatusCreated):
				sold.Add(1)
			case a.status == http.StatusConflict && a.code == "out_of_stock":
				oos.Add(1)
			default:
				failed.Add(1)
				labels[i] = "checkout: " + a.label()
			}
		}()
	}
	ready.Wait()
	start := time.Now()
	stop := progress(stderr, start, func() string {
		return fmt.Sprintf("sold %d  out of stock %d  errors %d", sold.Load(), oos.Load(), failed.Load())
	})
	close(gate)
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	stop()

	s := &FlashSaleSummary{
		Scenario: "flash-sale", URL: c.url, Buyers: c.buyers, Stock: stock, Seconds: elapsed,
		Attempts: c.buyers, Sold: int(sold.Load()), OutOfStock: int(oos.Load()), ErrorCount: int(failed.Load()),
		Checkout: summarize(lat), Errors: map[string]int{}, LoadAverage: loadAverage(),
	}
	s.Decided = s.Sold + s.OutOfStock
	s.DecidedPerSec = float64(s.Decided) / elapsed
	for _, l := range labels {
		if l != "" {
			s.Errors[l]++
		}
	}
	fmt.Fprintln(stderr, "reading back…")
	if s.ReadBack, err = readBack(ctx, admin, putIn, since, c.settle); err != nil {
		return nil, err
	}
	if c.ref.enabled() {
		if c.ref.clients <= 0 {
			c.ref.clients = min(c.buyers, 64)
		}
		if s.Reference, err = measureReference(ctx, c.ref, stderr); err != nil {
			return nil, err
		}
		if s.Reference.CommitsPerSec > 0 {
			s.RatioToReference = s.DecidedPerSec / s.Reference.CommitsPerSec
		}
	}
	return s, nil
}

func printFlashSale(w io.Writer, s *FlashSaleSummary) {
	fmt.Fprintf(w, "flash-sale: %d buyers for %d units against %s (load average %s)\n", s.Buyers, s.Stock, s.URL, s.LoadAverage)
	fmt.Fprintf(w, "  attempts %d  decided %d (sold %d, out_of_stock %d)  errors %d\n", s.Attempts, s.Decided, s.Sold, s.OutOfStock, s.ErrorCount)
	fmt.Fprintf(w, "  %.0f attempts decided/s over %.2fs\n", s.DecidedPerSec, s.Seconds)
	printLatencyTable(w, []string{"checkout"}, map[string]Latency{"checkout": s.Checkout})
	printErrors(w, s.Errors)
	printReadBack(w, s.ReadBack)
	verdict := "NO OVERSELL"
	if s.ReadBack.Oversold > 0 || !s.ReadBack.StockAddsUp || s.ReadBack.Orders != s.Sold {
		verdict = "INCONSISTENT"
	}
	fmt.Fprintf(w, "  verdict: %s (orders read back %d, sold %d, oversold %d)\n", verdict, s.ReadBack.Orders, s.Sold, s.ReadBack.Oversold)
	if s.Reference != nil {
		printReference(w, s.Reference)
		fmt.Fprintf(w, "  ratio: %.3f× attempts decided/s per reference commit/s\n", s.RatioToReference)
	}
}
