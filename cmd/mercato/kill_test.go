package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mercato/internal/platform/sqldb"
)

// killLoad is the buyers' and the staff's side of the kill test: requests
// that are retried, each with its own Idempotency-Key, until the server
// (whichever process runs now) gives a definitive answer.
type killLoad struct {
	hc        *http.Client
	base      atomic.Pointer[string] // the running server's URL; swapped on restart
	acked     atomic.Int64           // definitive answers
	cut       atomic.Int64           // attempts that got no answer (cut off by a kill)
	ambiguous atomic.Int64           // 503 payment_outcome_unknown: the provider's answer was lost
	tick      chan struct{}          // nudged on every definitive answer
}

// definitive reports whether a is the server's decision rather than a
// cut-off (no answer, a 5xx while it starts or stops, or the key still held
// by a request the kill cut off) or a lost provider answer (503
// payment_outcome_unknown: retry with the key).
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
		if a.status == http.StatusServiceUnavailable && a.code == "payment_outcome_unknown" {
			k.ambiguous.Add(1)
		} else {
			k.cut.Add(1)
		}
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

// How a kill-test order is paid (by its loop index i, see killPlan).
const (
	planPending = "pending" // never paid: stays pending_payment
	planSuccess = "success" // tok_success
	planTimeout = "timeout" // tok_timeout: the sandbox captures and loses the answer (503), the retry with the key answers the capture
	planDecline = "decline" // tok_decline (402), then tok_success under a new key
	planDouble  = "double"  // two concurrent pays under two keys: exactly one pays
)

// killPlan is loop i's payment plan: every third order stays pending, the
// others cycle through the ambiguous timeout, a decline then a success, a
// double pay and a plain success.
func killPlan(i int) string {
	return [...]string{planTimeout, planDecline, planPending, planDouble, planSuccess, planPending}[i%6]
}

// killQuantity is loop i's units: 1 or 2 (a 2 ships as two parcels).
func killQuantity(i int) int { return 1 + i%2 }

// killAnswers is how many definitive answers one buyer's loop i makes
// the server give, with the staff's shipments of its order.
func killAnswers(i int) int64 {
	n := int64(3) // cart, item, checkout
	switch killPlan(i) {
	case planPending:
		return n + 1 // a shipment refused: unpaid
	case planDecline, planDouble:
		n += 2
	default:
		n++
	}
	if killQuantity(i) == 2 {
		return n + 3 // one unit, too many, the rest
	}
	return n + 2 // all, one more
}

// killOrder is what the buyers were told about one order, and its plan.
type killOrder struct {
	id, sku, plan string
	qty           int
	paid          bool // acknowledged paid (200)
}

// TestBinaryKillMidCheckout runs the whole binary and drives concurrent
// checkouts, payments (the sandbox provider: success, the ambiguous
// tok_timeout, a decline then a success, two pays of one order racing
// under two keys) and staff shipments (split parcels, shipments of more
// than is left, of unpaid orders), each request with its idempotency key.
// It SIGKILLs the server three times mid-load (after counted numbers of
// answers), restarts it on the same data and retries every cut-off
// request with its key. Then, read back as staff and from the payments
// module's tables: every acknowledged order exists with the status it was
// acknowledged in (paid ones shipped in full) and there is no other (no
// key made two orders); every captured payment belongs to exactly one
// paid order and no order was paid twice (one capture, one order.paid);
// no order shipped more than was paid, and none unpaid shipped at all;
// the stock adds up (put in = available + units in pending orders + units
// sold, so no order.paid was applied twice or lost); and every consumer
// settled, applying each event of every order, with nothing failed and no
// dead letter.
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
	start := time.Now()
	store := storeOf(serveArgs)
	// The sandbox carrier's tracking stays at label_created: what is shipped
	// is the staff's doing alone.
	serveArgs = append(serveArgs, "--relay-poll", "50ms", "--sandbox-carrier-step", "1h")
	srv := startServer(t, bin, serveArgs...)
	servers := []*server{srv}
	k := &killLoad{hc: newBenchHTTP(16), tick: make(chan struct{}, 1)}
	base := "http://" + srv.addr
	k.base.Store(&base)

	setup := &benchClient{base: base, hc: k.hc}
	tok, err := adminLogin(ctx, setup, "", benchAdmin["MERCATO_BOOTSTRAP_ADMIN_EMAIL"], benchAdmin["MERCATO_BOOTSTRAP_ADMIN_PASSWORD"])
	if err != nil {
		t.Fatal(err)
	}
	admin := setup.as(tok)
	const buyers, loops, stock, shippers = 8, 6, 200, 2
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
	t.Logf("%.1fs: server up, %d buyers registered", time.Since(start).Seconds(), buyers)

	var mu sync.Mutex
	acked := map[string]*killOrder{} // what the buyers were told, by order id
	toShip := make(chan *killOrder, buyers*loops)
	var wg, shipping sync.WaitGroup
	done := make(chan struct{})
	for b := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sku := []string{"KILL-A", "KILL-B"}[b%2]
			for i := range loops {
				key := fmt.Sprintf("kill-%d-%d", b, i)
				o := &killOrder{sku: sku, qty: killQuantity(i), plan: killPlan(i)}
				if !killBuy(ctx, t, k, tokens[b], key, o) {
					return
				}
				mu.Lock()
				acked[o.id] = o
				mu.Unlock()
				toShip <- o
			}
		}()
	}
	for s := range shippers {
		shipping.Add(1)
		go func() {
			defer shipping.Done()
			for o := range toShip {
				killShip(ctx, t, k, tok, fmt.Sprintf("kill-ship-%d-%s", s, o.id), o)
			}
		}()
	}
	go func() { wg.Wait(); close(toShip); shipping.Wait(); close(done) }()

	// The kills fall at a fifth, two fifths and three fifths of the answers
	// the load makes the server give.
	var total int64
	for i := range loops {
		total += buyers * killAnswers(i)
	}
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
		killed := time.Now()
		srv = startServer(t, bin, serveArgs...)
		servers = append(servers, srv)
		next := "http://" + srv.addr
		k.base.Store(&next)
		t.Logf("%.1fs: kill %d after %d answers, up again in %.1fs", time.Since(start).Seconds(), kills, at, time.Since(killed).Seconds())
	}
	<-done
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%.1fs: %d kills, %d answers (%d expected), %d attempts cut off and retried with their keys, %d lost provider answers retried",
		time.Since(start).Seconds(), kills, k.acked.Load(), total, k.cut.Load(), k.ambiguous.Load())
	if k.cut.Load() == 0 {
		t.Error("no request was cut off by the kills")
	}
	if k.acked.Load() != total {
		t.Errorf("%d definitive answers, want %d", k.acked.Load(), total)
	}
	if timeouts := int64(buyers * countPlans(loops, planTimeout)); k.ambiguous.Load() < timeouts {
		t.Errorf("%d lost provider answers for %d tok_timeout payments", k.ambiguous.Load(), timeouts)
	}

	admin = &benchClient{base: "http://" + srv.addr, hc: k.hc, token: tok}
	rb, err := readBack(ctx, admin, putIn, since, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%.1fs: consumers settled", time.Since(start).Seconds())
	if !rb.Sync.Settled || rb.Sync.Failed != 0 || rb.Sync.DeadLetters != 0 {
		t.Errorf("sync after settling: %+v", rb.Sync)
	}
	orders, err := listOrders(ctx, admin, putIn, since)
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != len(acked) || len(acked) != buyers*loops {
		t.Errorf("the server holds %d orders; %d checkouts were acknowledged of %d", len(orders), len(acked), buyers*loops)
	}
	unitsPending, unitsSold := 0, 0
	seen := map[string]bool{}
	for _, o := range orders {
		a, ok := acked[o.ID]
		if !ok {
			t.Errorf("order %s was never acknowledged (a key made two orders?)", o.ID)
			continue
		}
		seen[o.ID] = true
		want := map[bool]string{true: "shipped", false: "pending_payment"}[a.paid]
		if o.Status != want {
			t.Errorf("order %s (%s) is %s, acknowledged as paid: %v (want %s)", o.ID, a.plan, o.Status, a.paid, want)
		}
		if a.paid {
			unitsSold += a.qty
		} else {
			unitsPending += a.qty
		}
	}
	for id := range acked {
		if !seen[id] {
			t.Errorf("acknowledged order %s is lost", id)
		}
	}
	if rb.PutIn != rb.Available+unitsPending+unitsSold || rb.Reserved != unitsPending || rb.OnHand != rb.PutIn-unitsSold || rb.Oversold != 0 {
		t.Errorf("stock does not add up: put in %d, available %d, on hand %d, reserved %d; units pending %d, units sold %d",
			rb.PutIn, rb.Available, rb.OnHand, rb.Reserved, unitsPending, unitsSold)
	}
	killCheckOrders(ctx, t, admin, acked)
	killCheckCaptures(ctx, t, store, acked)
	t.Logf("%.1fs: read back", time.Since(start).Seconds())
	if t.Failed() { // what the event consumers said (an event skipped after a kill says it here)
		for i, s := range servers {
			for line := range strings.Lines(s.logs.String()) {
				if strings.Contains(line, `"msg":"inbox:`) {
					t.Logf("server %d: %s", i, strings.TrimSpace(line))
				}
			}
		}
	}
	if err := srv.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("clean stop: %v\n%s", err, srv.logs.String())
	}
}

// countPlans counts the loops of 0..loops-1 whose plan is plan.
func countPlans(loops int, plan string) int {
	n := 0
	for i := range loops {
		if killPlan(i) == plan {
			n++
		}
	}
	return n
}

// killBuy runs one buyer's loop for o under key: cart, item, checkout,
// then o.plan's payments; it fills o.id and o.paid and reports false (the
// test failed) when an answer was not the one the plan expects.
func killBuy(ctx context.Context, t *testing.T, k *killLoad, token, key string, o *killOrder) bool {
	a := k.send(ctx, token, "POST", "/api/v1/carts", nil, key+"-cart")
	var cart struct{ ID string }
	if !a.ok(http.StatusCreated) || a.decode(&cart) != nil {
		t.Errorf("%s cart: %s %s", key, a.label(), truncate(a.body, 200))
		return false
	}
	a = k.send(ctx, token, "POST", "/api/v1/carts/"+cart.ID+"/items", map[string]any{"sku": o.sku, "quantity": o.qty}, key+"-item")
	if !a.ok(http.StatusOK) {
		t.Errorf("%s item: %s %s", key, a.label(), truncate(a.body, 200))
		return false
	}
	a = k.send(ctx, token, "POST", "/api/v1/carts/"+cart.ID+"/checkout", map[string]any{"shipping_address": benchAddress()}, key+"-checkout")
	var order struct{ ID string }
	if !a.ok(http.StatusCreated) || a.decode(&order) != nil {
		t.Errorf("%s checkout: %s %s", key, a.label(), truncate(a.body, 200))
		return false
	}
	o.id = order.ID
	pay := func(token2, k2 string) answer {
		return k.send(ctx, token, "POST", "/api/v1/orders/"+o.id+"/pay", map[string]any{"method": "sandbox", "token": token2}, k2)
	}
	switch o.plan {
	case planPending:
		return true
	case planDecline:
		if a := pay("tok_decline", key+"-decline"); a.status != http.StatusPaymentRequired || a.code != "payment_declined" {
			t.Errorf("%s declined pay: %s %s", key, a.label(), truncate(a.body, 200))
			return false
		}
		a = pay("tok_success", key+"-pay")
	case planTimeout:
		a = pay("tok_timeout", key+"-pay")
	case planDouble:
		var both [2]answer
		var wg sync.WaitGroup
		for j := range both {
			wg.Add(1)
			go func() { defer wg.Done(); both[j] = pay("tok_success", fmt.Sprintf("%s-pay%d", key, j)) }()
		}
		wg.Wait()
		if both[1].ok(http.StatusOK) {
			both[0], both[1] = both[1], both[0]
		}
		if both[1].status != http.StatusConflict || both[1].code != "invalid_transition" {
			t.Errorf("%s double pay: %s and %s %s, want one 200 and one 409 invalid_transition", key, both[0].label(), both[1].label(), truncate(both[1].body, 200))
			return false
		}
		a = both[0]
	default:
		a = pay("tok_success", key+"-pay")
	}
	if !a.ok(http.StatusOK) {
		t.Errorf("%s pay (%s): %s %s", key, o.plan, a.label(), truncate(a.body, 200))
		return false
	}
	o.paid = true
	return true
}

// killShip is the staff shipping o under keys from key: an unpaid order is
// refused (409 invalid_transition); a paid one ships in full — one unit
// first when it has two, then a request for more than is left (409
// already_shipped), then the rest — and one more shipment after that is
// refused (409 invalid_transition).
func killShip(ctx context.Context, t *testing.T, k *killLoad, token, key string, o *killOrder) {
	path := "/api/v1/admin/orders/" + o.id + "/shipments"
	type step struct {
		lines      int // units asked for; 0: every unshipped unit
		want       int
		code, what string
	}
	steps := []step{{0, http.StatusConflict, "invalid_transition", "unpaid"}}
	switch {
	case o.paid && o.qty == 2:
		steps = []step{{1, http.StatusCreated, "", "one unit"}, {2, http.StatusConflict, "already_shipped", "more than is left"},
			{0, http.StatusCreated, "", "the rest"}}
	case o.paid:
		steps = []step{{0, http.StatusCreated, "", "all"}, {1, http.StatusConflict, "invalid_transition", "one more"}}
	}
	for i, s := range steps {
		body := map[string]any{"carrier": "sandbox"}
		if s.lines > 0 {
			body["lines"] = []map[string]any{{"sku": o.sku, "quantity": s.lines}}
		}
		a := k.send(ctx, token, "POST", path, body, fmt.Sprintf("%s-%d", key, i))
		if a.status != s.want || a.code != s.code {
			t.Errorf("shipment of order %s (%s, %s): %s %s, want %d %s", o.id, o.plan, s.what, a.label(), truncate(a.body, 200), s.want, s.code)
		}
	}
}

// killCheckOrders reads each order's payment, shipments and sync view back
// as staff: a paid order has one captured attempt for its total (a
// declined one before it, or the racing pay's attempt left pending for
// payments.reconcile when the provider charged it too), one order.paid
// and shipments of exactly its units; a pending one has no payment, no
// shipment, no order.paid; every event of every order was applied by the
// same consumers as every other event of its type, none retrying or
// parked.
func killCheckOrders(ctx context.Context, t *testing.T, admin *benchClient, acked map[string]*killOrder) {
	consumersOf := map[string]string{} // event type → the consumers that applied the first one seen
	for id, o := range acked {
		var pay struct {
			Status   string
			Captured struct{ Amount int64 }
			Amount   struct{ Amount int64 }
			Attempts []struct{ Status string }
		}
		a := admin.do(ctx, "GET", "/api/v1/admin/orders/"+id+"/payment", nil, "")
		switch {
		case !o.paid && !a.ok(http.StatusNotFound):
			t.Errorf("unpaid order %s has a payment: %s %s", id, a.label(), truncate(a.body, 300))
		case o.paid && (!a.ok(http.StatusOK) || a.decode(&pay) != nil):
			t.Errorf("payment of order %s: %s %s", id, a.label(), truncate(a.body, 300))
		case o.paid:
			var captured, other []string
			for _, at := range pay.Attempts {
				if at.Status == "captured" {
					captured = append(captured, at.Status)
				} else {
					other = append(other, at.Status)
				}
			}
			wantOther := map[string][]string{planDecline: {"failed"}}[o.plan]
			if o.plan == planDouble && len(other) == 1 && other[0] == "pending" {
				wantOther = other // the other pay charged the provider too: payments.reconcile refunds it
			}
			if pay.Status != "captured" || pay.Captured.Amount != pay.Amount.Amount || len(captured) != 1 || !slices.Equal(other, wantOther) {
				t.Errorf("payment of order %s (%s): %s", id, o.plan, truncate(a.body, 500))
			}
		}

		var tr struct {
			Items []struct {
				Lines []struct {
					SKU      string
					Quantity int
				}
			}
		}
		if err := admin.expect(ctx, http.StatusOK, "GET", "/api/v1/orders/"+id+"/tracking", nil, "", &tr); err != nil {
			t.Fatal(err)
		}
		shipped := 0
		for _, sh := range tr.Items {
			for _, l := range sh.Lines {
				if l.SKU != o.sku {
					t.Errorf("order %s shipped %s", id, l.SKU)
				}
				shipped += l.Quantity
			}
		}
		want := map[bool]int{true: o.qty}[o.paid]
		if shipped != want || (o.paid && len(tr.Items) != o.qty) {
			t.Errorf("order %s (%d units, paid: %v) shipped %d units in %d shipments", id, o.qty, o.paid, shipped, len(tr.Items))
		}

		var st struct {
			Events []struct {
				Type      string
				Consumers []struct{ Consumer, Status string }
			}
		}
		if err := admin.expect(ctx, http.StatusOK, "GET", "/api/v1/admin/orders/"+id+"/sync", nil, "", &st); err != nil {
			t.Fatal(err)
		}
		types := map[string]int{}
		for _, e := range st.Events {
			types[e.Type]++
			var names []string
			for _, c := range e.Consumers {
				if c.Status != "applied" {
					t.Errorf("order %s: %s is %s at %s", id, e.Type, c.Status, c.Consumer)
				}
				names = append(names, c.Consumer)
			}
			slices.Sort(names)
			got := strings.Join(names, ",")
			if first, ok := consumersOf[e.Type]; !ok {
				consumersOf[e.Type] = got
			} else if got != first {
				t.Errorf("order %s: %s applied by %q, another by %q", id, e.Type, got, first)
			}
		}
		wantTypes := map[string]int{"order.placed": 1}
		if o.paid {
			wantTypes["order.paid"], wantTypes["order.shipped"] = 1, 1
			if o.qty == 2 {
				wantTypes["order.partially_shipped"] = 1
			}
		}
		for _, typ := range []string{"order.placed", "order.paid", "order.partially_shipped", "order.shipped"} {
			if types[typ] != wantTypes[typ] {
				t.Errorf("order %s (%s): %d %s events, want %d", id, o.plan, types[typ], typ, wantTypes[typ])
			}
		}
	}
	for typ, cs := range consumersOf {
		if cs == "" {
			t.Errorf("no consumer applied %s", typ)
		}
	}
}

// killCheckCaptures reads the payments module's tables: every intent that
// captured money belongs to an order acknowledged paid, captured its
// amount once (one captured attempt); every paid order has one; and the
// attempts left pending are the racing pays' (what payments.reconcile
// settles).
func killCheckCaptures(ctx context.Context, t *testing.T, cfg sqldb.Config, acked map[string]*killOrder) {
	db, err := sqldb.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Reader().QueryContext(ctx, `SELECT i.order_id, i.amount, i.captured,
		(SELECT count(*) FROM payments_attempts a WHERE a.intent_id = i.id AND a.status = 'captured'),
		(SELECT count(*) FROM payments_attempts a WHERE a.intent_id = i.id AND a.status = 'pending')
		FROM payments_intents i`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	captures, pending := 0, 0
	for rows.Next() {
		var orderID string
		var amount, captured, nCaptured, nPending int64
		if err := rows.Scan(&orderID, &amount, &captured, &nCaptured, &nPending); err != nil {
			t.Fatal(err)
		}
		o := acked[orderID]
		switch {
		case o == nil || !o.paid:
			t.Errorf("order %s has a payment (captured %d, %d captured attempts) but was not acknowledged paid", orderID, captured, nCaptured)
		case captured != amount || nCaptured != 1:
			t.Errorf("order %s: captured %d of %d in %d attempts", orderID, captured, amount, nCaptured)
		case nPending > 0 && o.plan != planDouble:
			t.Errorf("order %s (%s): %d attempts left pending", orderID, o.plan, nPending)
		}
		captures += int(nCaptured)
		pending += int(nPending)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	paid := 0
	for _, o := range acked {
		if o.paid {
			paid++
		}
	}
	if captures != paid {
		t.Errorf("%d captured payments for %d paid orders", captures, paid)
	}
	t.Logf("%d captured payments for %d paid orders; %d racing attempts left pending for payments.reconcile", captures, paid, pending)
}

// storeOf names the database that serve arguments args point at.
func storeOf(args []string) sqldb.Config {
	var c sqldb.Config
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--data-dir":
			c.DataDir = args[i+1]
		case "--database-url":
			c.URL = args[i+1]
		}
	}
	return c
}
