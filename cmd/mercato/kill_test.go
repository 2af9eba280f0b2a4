package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// killLoad is the buyers' side of the kill test: requests that are retried,
// each with its own Idempotency-Key, until the server (whichever process
// runs now) gives a definitive answer.
type killLoad struct {
	hc    *http.Client
	base  atomic.Pointer[string] // the running server's URL; swapped on restart
	acked atomic.Int64           // definitive answers
	cut   atomic.Int64           // attempts that got no answer (cut off by a kill)
	tick  chan struct{}          // nudged on every definitive answer
}

// definitive reports whether a is the server's decision rather than a
// cut-off (no answer, a 5xx while it starts or stops, or the key still held
// by a request the kill cut off).
func definitive(a answer) bool {
	return a.err == nil && a.status > 0 && a.status < 500 &&
		!(a.status == http.StatusConflict && a.code == "idempotency_key_in_use")
}

// send sends the request until it is answered definitively (for at most
// three minutes: a server that never answers fails the test, it does not
// hang it).
func (k *killLoad) send(ctx context.Context, token, method, path string, body any, key string, extra ...string) answer {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		c := &benchClient{base: *k.base.Load(), hc: k.hc, token: token}
		a := c.do(ctx, method, path, body, key, extra...)
		if definitive(a) {
			k.acked.Add(1)
			select {
			case k.tick <- struct{}{}:
			default:
			}
			return a
		}
		k.cut.Add(1)
		if time.Now().After(deadline) {
			return a
		}
		select { // pace the retries while the server is down
		case <-ctx.Done():
			return a
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// TestBinaryKillMidCheckout runs the whole binary, drives concurrent
// checkouts and payments with idempotency keys, SIGKILLs the server three
// times mid-load (after counted numbers of answers), restarts it on the same
// data and retries every cut-off request with its key. Then, read back as
// staff: every acknowledged order exists with the status it was
// acknowledged in and there is no other (no key made two orders), the stock
// adds up (put in = available + units in pending orders + units sold, so no
// order.paid was applied twice or lost), and every consumer settled with
// nothing pending or failed and no dead letter.
func TestBinaryKillMidCheckout(t *testing.T) {
	bin := binary(t)
	t.Setenv("MERCATO_BOOTSTRAP_ADMIN_EMAIL", benchAdmin["MERCATO_BOOTSTRAP_ADMIN_EMAIL"])
	t.Setenv("MERCATO_BOOTSTRAP_ADMIN_PASSWORD", benchAdmin["MERCATO_BOOTSTRAP_ADMIN_PASSWORD"])
	for name, args := range engines(t) {
		t.Run(name, func(t *testing.T) { killMidCheckout(t, bin, args(t)) })
	}
}

func killMidCheckout(t *testing.T, bin string, serveArgs []string) {
	ctx := context.Background()
	serveArgs = append(serveArgs, "--relay-poll", "50ms")
	srv := startServer(t, bin, serveArgs...)
	k := &killLoad{hc: newBenchHTTP(16), tick: make(chan struct{}, 1)}
	base := "http://" + srv.addr
	k.base.Store(&base)

	setup := &benchClient{base: base, hc: k.hc}
	tok, err := adminLogin(ctx, setup, "", benchAdmin["MERCATO_BOOTSTRAP_ADMIN_EMAIL"], benchAdmin["MERCATO_BOOTSTRAP_ADMIN_PASSWORD"])
	if err != nil {
		t.Fatal(err)
	}
	admin := setup.as(tok)
	const buyers, loops, stock = 8, 12, 200
	putIn := map[string]int{"KILL-A": stock, "KILL-B": stock}
	since := time.Now().Add(-time.Minute)
	if err := setupProduct(ctx, admin, "kill", putIn); err != nil {
		t.Fatal(err)
	}
	tokens := make([]string, buyers)
	for i := range tokens {
		if tokens[i], err = registerBuyer(ctx, setup, fmt.Sprintf("kill-%d@example.com", i)); err != nil {
			t.Fatal(err)
		}
	}

	// What the buyers were told: order id → paid (true) or pending (false).
	var mu sync.Mutex
	acked := map[string]bool{}
	checkouts := 0 // checkout keys answered 201
	var wg sync.WaitGroup
	done := make(chan struct{})
	for b := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sku := []string{"KILL-A", "KILL-B"}[b%2]
			for i := range loops {
				key := fmt.Sprintf("kill-%d-%d", b, i)
				a := k.send(ctx, tokens[b], "POST", "/api/v1/carts", nil, key+"-cart")
				var cart struct{ ID string }
				if !a.ok(http.StatusCreated) || a.decode(&cart) != nil {
					t.Errorf("%s cart: %s %s", key, a.label(), truncate(a.body, 200))
					return
				}
				a = k.send(ctx, tokens[b], "POST", "/api/v1/carts/"+cart.ID+"/items", map[string]any{"sku": sku, "quantity": 1 + i%2}, key+"-item")
				if !a.ok(http.StatusOK) {
					t.Errorf("%s item: %s %s", key, a.label(), truncate(a.body, 200))
					return
				}
				a = k.send(ctx, tokens[b], "POST", "/api/v1/carts/"+cart.ID+"/checkout", map[string]any{"shipping_address": benchAddress()}, key+"-checkout")
				var order struct{ ID string }
				if !a.ok(http.StatusCreated) || a.decode(&order) != nil {
					t.Errorf("%s checkout: %s %s", key, a.label(), truncate(a.body, 200))
					return
				}
				mu.Lock()
				acked[order.ID] = false
				checkouts++
				mu.Unlock()
				if i%3 == 2 { // every third order stays pending
					continue
				}
				a = k.send(ctx, tokens[b], "POST", "/api/v1/orders/"+order.ID+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"}, key+"-pay")
				if !a.ok(http.StatusOK) {
					t.Errorf("%s pay: %s %s", key, a.label(), truncate(a.body, 200))
					return
				}
				mu.Lock()
				acked[order.ID] = true
				mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	// 3 answers a loop (cart, item, checkout) plus the payments: the kills
	// fall at a fifth, two fifths and three fifths of them.
	total := int64(buyers * loops * 3)
	kills := 0
	for _, at := range []int64{total / 5, 2 * total / 5, 3 * total / 5} {
		for k.acked.Load() < at {
			select {
			case <-k.tick:
			case <-done:
				t.Fatalf("the load ended after %d answers, before kill %d at %d", k.acked.Load(), kills+1, at)
			}
		}
		srv.cmd.Process.Signal(syscall.SIGKILL)
		<-srv.done
		kills++
		srv = startServer(t, bin, serveArgs...)
		next := "http://" + srv.addr
		k.base.Store(&next)
	}
	<-done
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d kills, %d answers, %d attempts cut off and retried with their keys", kills, k.acked.Load(), k.cut.Load())
	if k.cut.Load() == 0 {
		t.Error("no request was cut off by the kills")
	}

	admin = &benchClient{base: "http://" + srv.addr, hc: k.hc, token: tok}
	rb, err := readBack(ctx, admin, putIn, since, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	orders, err := listOrders(ctx, admin, putIn, since)
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != checkouts || checkouts != buyers*loops {
		t.Errorf("the server holds %d orders; %d checkouts were acknowledged of %d", len(orders), checkouts, buyers*loops)
	}
	for _, o := range orders {
		paid, ok := acked[o.ID]
		want := map[bool]string{true: "paid", false: "pending_payment"}[paid]
		if !ok {
			t.Errorf("order %s was never acknowledged (a key made two orders?)", o.ID)
		} else if o.Status != want {
			t.Errorf("order %s is %s, acknowledged as %s", o.ID, o.Status, want)
		}
		delete(acked, o.ID)
	}
	for id := range acked {
		t.Errorf("acknowledged order %s is lost", id)
	}
	if !rb.Sync.Settled || rb.Sync.Failed != 0 || rb.Sync.DeadLetters != 0 {
		t.Errorf("sync after settling: %+v", rb.Sync)
	}
	if !rb.StockAddsUp || rb.Oversold != 0 {
		t.Errorf("stock does not add up: put in %d, available %d, reserved %d, units pending %d, units sold %d",
			rb.PutIn, rb.Available, rb.Reserved, rb.UnitsPending, rb.UnitsPaid)
	}
	if err := srv.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("clean stop: %v\n%s", err, srv.logs.String())
	}
}
