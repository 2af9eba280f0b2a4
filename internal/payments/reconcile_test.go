package payments

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
	"mercato/internal/syncmon"
)

var errCrash = errors.New("injected crash")

// crashOnce makes the next charge stop after the provider captured and
// before anything is committed: what a crash of the process does.
func (e *env) crashOnce() {
	first := true
	e.svc.crash = func(point string) error {
		if point == "after_charge" && first {
			first = false
			return errCrash
		}
		return nil
	}
}

func (e *env) reconcile() ReconcileReport {
	e.t.Helper()
	rep, err := e.svc.Reconcile(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

// TestReconcileCrash: a crash between the provider's capture and our
// commit leaves a pending attempt. Reconciliation (once the attempt is
// older than ReconcileAfter) finds the capture under its provider key and
// marks the order paid — once: a second run changes nothing.
func TestReconcileCrash(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.order(e.as("alice"), 1)
		e.crashOnce()
		r := e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"})
		if r.Status < 500 {
			t.Fatalf("the crashed request answered %d", r.Status)
		}
		if e.sbx.Captures() != 1 {
			t.Fatalf("captures = %d, want 1", e.sbx.Captures())
		}
		if st, _ := e.orderStatus(id); st != "pending_payment" {
			t.Fatalf("the order is %s after the crash", st)
		}
		if rep := e.reconcile(); rep.Fixed != 0 {
			t.Errorf("a fresh attempt was settled: %+v", rep)
		}
		e.clock.Advance(3 * time.Minute)
		if rep := e.reconcile(); rep.Fixed != 1 || rep.Reported != 0 {
			t.Errorf("report = %+v, want 1 fixed", rep)
		}
		if st, ps := e.orderStatus(id); st != "paid" || ps != "paid" {
			t.Errorf("order %s/%s, want paid/paid", st, ps)
		}
		want := []string{"order.placed", "payment.captured", "order.paid"}
		if got := e.events(id); !equal(got, want) {
			t.Errorf("events = %v, want %v", got, want)
		}
		if rep := e.reconcile(); rep.Fixed != 0 || rep.Reported != 0 {
			t.Errorf("second run: %+v, want nothing", rep)
		}
		if e.sbx.Captures() != 1 {
			t.Errorf("captures = %d, want 1", e.sbx.Captures())
		}
	})
}

// TestReconcileOrphan: the crashed order expired before reconciliation:
// the capture is an orphan and is refunded at the provider; the order
// stays expired.
func TestReconcileOrphan(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.order(e.as("alice"), 1)
		e.crashOnce()
		e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"})
		e.clock.Advance(31 * time.Minute)
		if n, err := e.ord.ExpireDue(context.Background()); err != nil || n != 1 {
			t.Fatalf("expired %d, %v", n, err)
		}
		if rep := e.reconcile(); rep.Fixed != 1 {
			t.Errorf("report = %+v, want 1 fixed", rep)
		}
		var status string
		e.db.Reader().QueryRow(`SELECT status FROM payments_attempts`).Scan(&status)
		if status != "voided" {
			t.Errorf("attempt %s, want voided", status)
		}
		var ref string
		e.db.Reader().QueryRow(`SELECT provider_ref FROM payments_attempts`).Scan(&ref)
		if _, err := e.sbx.Refund(context.Background(), refundOf(ref, 1)); err == nil {
			t.Errorf("the orphan capture %s still has money left to refund", ref)
		}
		if st, _ := e.orderStatus(id); st != "expired" {
			t.Errorf("order %s, want expired", st)
		}
	})
}

// TestReconcileDeadAttempts: an attempt that never reached the provider
// (crash before the call) fails; a decline whose answer was lost fails.
func TestReconcileDeadAttempts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.order(e.as("alice"), 1)
		e.svc.crash = func(string) error { return errCrash }
		e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_decline"})
		e.svc.crash = nil
		// An attempt recorded whose provider call never happened.
		if _, err := e.db.Writer().Exec(`INSERT INTO payments_attempts (id, intent_id, provider_key, token, status, created_at, updated_at)
			SELECT 'a-dead', id, 'mp_never', 'tok_success', 'pending', created_at, created_at FROM payments_intents`); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(3 * time.Minute)
		if rep := e.reconcile(); rep.Fixed != 2 {
			t.Errorf("report = %+v, want 2 fixed", rep)
		}
		if n := e.count("payments_attempts", "status = 'failed'"); n != 2 {
			t.Errorf("failed attempts = %d, want 2", n)
		}
		if st, _ := e.orderStatus(id); st != "pending_payment" {
			t.Errorf("order %s, want pending_payment", st)
		}
	})
}

// TestReconcilePaidWithoutCapture: an order marked paid with no capture
// cannot be fixed safely: it is reported once, and the sync monitor's
// source (SyncIssues) lists it.
func TestReconcilePaidWithoutCapture(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		good, _ := e.paid(1)
		bad := e.order(e.as("bob"), 1)
		if _, err := e.db.Writer().Exec(`UPDATE orders_orders SET status = 'paid', payment_status = 'paid' WHERE id = $1`, bad); err != nil {
			t.Fatal(err)
		}
		if rep := e.reconcile(); rep.Reported != 1 || rep.Checked != 2 {
			t.Errorf("report = %+v, want 2 checked, 1 reported", rep)
		}
		if rep := e.reconcile(); rep.Reported != 0 {
			t.Errorf("second run reported %d again", rep.Reported)
		}
		is, err := e.svc.SyncIssues(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(is) != 1 || is[0].Subject != bad || is[0].Kind != IssuePaidWithoutCapture || is[0].Source != "payments" {
			t.Errorf("issues = %+v, want the one of %s (not %s)", is, bad, good)
		}
	})
}

// TestPrivacy: the export holds the customer's payments; erasure removes
// the customer id and keeps the amounts.
func TestPrivacy(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id, total := e.paid(1)
		e.as("cs").Do("POST", "/api/v1/admin/orders/"+id+"/refunds", usdBody(100, "goodwill")).WantStatus(t, http.StatusCreated)
		m := e.svc.Module()
		v, err := m.Privacy.Export(context.Background(), "u-alice")
		if err != nil {
			t.Fatal(err)
		}
		ins := v.([]Intent)
		if len(ins) != 1 || ins[0].OrderID != id || ins[0].Captured.Amount() != total || len(ins[0].Refunds) != 1 {
			t.Fatalf("export = %+v", ins)
		}
		if v, _ := m.Privacy.Export(context.Background(), "u-bob"); len(v.([]Intent)) != 0 {
			t.Errorf("bob's export = %+v", v)
		}
		if err := e.db.InTx(context.Background(), func(tx *sqldbTx) error { return m.Privacy.Erase(context.Background(), tx, "u-alice") }); err != nil {
			t.Fatal(err)
		}
		if n := e.count("payments_intents", "customer_id IS NOT NULL"); n != 0 {
			t.Errorf("%d intents keep a customer id", n)
		}
		if n := e.count("payments_intents", "captured = $1 AND refunded = 100", total); n != 1 {
			t.Errorf("the amounts did not stay")
		}
		if v, _ := m.Privacy.Export(context.Background(), "u-alice"); len(v.([]Intent)) != 0 {
			t.Errorf("export after erasure = %+v", v)
		}
		webtest.AssertProblem(t, e.as("cs").Do("GET", "/api/v1/admin/orders/nope/payment", nil), http.StatusNotFound, "not_found")
	})
}

// TestReconcileLateWebhook: a 3-D Secure payment completed after the order
// expired arrives as a webhook: the capture is recorded, the order stays
// expired, and reconciliation refunds the capture in full.
func TestReconcileLateWebhook(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.order(e.as("alice"), 1)
		e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_3ds"})
		e.clock.Advance(31 * time.Minute)
		if n, err := e.ord.ExpireDue(context.Background()); err != nil || n != 1 {
			t.Fatalf("expired %d, %v", n, err)
		}
		var ref string
		e.db.Reader().QueryRow(`SELECT provider_ref FROM payments_attempts`).Scan(&ref)
		e.sbx.Confirm(context.Background(), "", ref)
		for _, d := range e.sbx.Pending() {
			e.deliver(d).WantStatus(t, http.StatusOK)
		}
		if st, _ := e.orderStatus(id); st != "expired" {
			t.Fatalf("order %s, want expired", st)
		}
		// The capture is recorded with its event, and the order not paid.
		if got, want := e.events(id), []string{"order.placed", "order.expired", "payment.captured"}; !equal(got, want) {
			t.Errorf("events = %v, want %v", got, want)
		}
		e.reconcile() // reserves the refund
		e.clock.Advance(3 * time.Minute)
		if rep := e.reconcile(); rep.Fixed != 1 {
			t.Errorf("report = %+v, want 1 fixed (the refund sent)", rep)
		}
		var captured, refunded int64
		e.db.Reader().QueryRow(`SELECT captured, refunded FROM payments_intents`).Scan(&captured, &refunded)
		if captured == 0 || refunded != captured {
			t.Errorf("refunded %d of %d, want all", refunded, captured)
		}
		if _, err := e.sbx.Refund(context.Background(), refundOf(ref, 1)); err == nil {
			t.Error("the provider still holds money of the expired order")
		}
		if n := e.count("payments_refunds", "status = 'succeeded' AND reason = 'order expired'"); n != 1 {
			t.Errorf("succeeded orphan refunds = %d, want 1", n)
		}
	})
}

// TestDoublePay: two pay requests with different keys race; both reach
// the provider, exactly one pays the order (200), the other is 409, and
// reconciliation refunds the second capture.
func TestDoublePay(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		id := e.order(e.as("alice"), 1)
		// Both requests charge before either commits.
		var charged sync.WaitGroup
		charged.Add(2)
		e.svc.crash = func(point string) error {
			if point == "after_charge" {
				charged.Done()
				charged.Wait()
			}
			return nil
		}
		statuses := make(chan int, 2)
		start := make(chan struct{})
		for _, k := range []string{"a", "b"} {
			go func() {
				<-start
				statuses <- e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"},
					"Idempotency-Key: "+k).Status
			}()
		}
		close(start)
		got := map[int]int{<-statuses: 1}
		got[<-statuses]++
		if got[200] != 1 || got[200]+got[409] != 2 {
			t.Fatalf("statuses %v, want one 200 and one 409", got)
		}
		if e.sbx.Captures() != 2 {
			t.Fatalf("captures = %d, want 2", e.sbx.Captures())
		}
		e.clock.Advance(3 * time.Minute)
		if rep := e.reconcile(); rep.Fixed != 1 {
			t.Errorf("report %+v: want the orphan refunded", rep)
		}
		if n := e.count("payments_attempts", "status = 'captured'"); n != 1 {
			t.Errorf("captured attempts = %d, want 1", n)
		}
		if n := e.count("payments_attempts", "status = 'voided'"); n != 1 {
			t.Errorf("voided attempts = %d, want 1", n)
		}
		var voided string
		e.db.Reader().QueryRow(`SELECT provider_ref FROM payments_attempts WHERE status = 'voided'`).Scan(&voided)
		if _, err := e.sbx.Refund(context.Background(), refundOf(voided, 1)); err == nil {
			t.Error("the second capture was not refunded in full")
		}
		if st, ps := e.orderStatus(id); st != "paid" || ps != "paid" {
			t.Errorf("order %s/%s, want paid/paid", st, ps)
		}
	})
}

// TestSyncIssuesRoute: the sync monitor lists what reconciliation left.
func TestSyncIssuesRoute(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		bad := e.order(e.as("bob"), 1)
		e.db.Writer().Exec(`UPDATE orders_orders SET status = 'paid', payment_status = 'paid' WHERE id = $1`, bad)
		e.reconcile()
		mon := syncmon.New(nil)
		mon.Report(e.svc)
		rt := web.NewRouter(web.Config{Auth: e.auth})
		for _, r := range mon.Module().Routes {
			rt.Handle(r)
		}
		c := webtest.Start(t, rt)
		r := c.WithToken("op").Do("GET", "/api/v1/admin/sync/issues", nil)
		r.WantStatus(t, http.StatusOK)
		if r.Field("items.0.subject") != bad || r.Field("items.0.kind") != IssuePaidWithoutCapture {
			t.Errorf("issues = %s", r.Body)
		}
		webtest.AssertProblem(t, c.WithToken("alice").Do("GET", "/api/v1/admin/sync/issues", nil), http.StatusForbidden, "forbidden")
	})
}
