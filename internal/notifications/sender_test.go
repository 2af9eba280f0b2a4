package notifications

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"mercato/internal/accounts"
)

// A 4xx answer is retried after the backoff (counted on the injected clock,
// never slept); a 5xx answer and the last attempt fail the message.
func TestSenderRetries(t *testing.T) {
	type step struct {
		advance  time.Duration // clock moved before the run
		wantTry  bool          // the relay sees a DATA in this run
		status   string
		attempts int
	}
	tests := []struct {
		name    string
		answers []string
		steps   []step
		lastErr string
	}{
		{"4xx twice then accepted", []string{"451 4.3.0 try later", "452 4.3.1 full"}, []step{
			{0, true, StatusQueued, 1},
			{59 * time.Second, false, StatusQueued, 1}, // backoff 1 min not over
			{time.Second, true, StatusQueued, 2},
			{time.Minute, false, StatusQueued, 2}, // backoff now 2 min
			{time.Minute, true, StatusSent, 3},
		}, ""},
		{"5xx fails at once", []string{"550 5.1.1 no such user"}, []step{
			{0, true, StatusFailed, 1},
			{time.Hour, false, StatusFailed, 1},
		}, "550"},
		{"out of attempts", []string{"451 4.3.0 a", "451 4.3.0 b", "451 4.3.0 third"}, []step{
			{0, true, StatusQueued, 1},
			{time.Minute, true, StatusQueued, 2},
			{2 * time.Minute, true, StatusFailed, 3},
		}, "third"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d *smtpd
			forEachEngine(t, func() Config {
				d = startSMTPD(t, nil, "", "")
				return Config{SMTP: relay(d, TLSAuto, nil), MaxAttempts: 3, RetryBase: time.Minute, RetryCap: time.Hour}
			}, func(t *testing.T, e *env) {
				e.shop.addOrder("o-1", "M-1", "c-1", "Bo", 100)
				d.failNext(tc.answers...)
				e.deliver(e.eventFor(KindOrderPaid, "o-1"))
				for i, s := range tc.steps {
					e.clk.Advance(s.advance)
					before := d.dataTries()
					e.send()
					if tried := d.dataTries() > before; tried != s.wantTry {
						t.Fatalf("step %d: relay tried %v, want %v", i, tried, s.wantTry)
					}
					m := e.messages("c-1")
					if len(m) != 1 || m[0].Status != s.status || m[0].Attempts != s.attempts {
						t.Fatalf("step %d: %+v, want %s after %d attempts", i, m, s.status, s.attempts)
					}
				}
				m := e.messages("c-1")[0]
				if tc.lastErr != "" && !strings.Contains(m.LastError, tc.lastErr) {
					t.Errorf("last_error %q, want it to hold %q", m.LastError, tc.lastErr)
				}
				wantDelivered := 0
				if m.Status == StatusSent {
					wantDelivered = 1
					if m.LastError != "" || m.SentAt == nil {
						t.Errorf("sent message: %+v", m)
					}
				}
				if got := len(d.received()); got != wantDelivered {
					t.Errorf("relay kept %d messages, want %d", got, wantDelivered)
				}
			})
		})
	}
}

// --smtp-tls=require refuses a relay without STARTTLS; auto sends in clear.
func TestSenderTLSModes(t *testing.T) {
	tests := []struct {
		mode   TLSMode
		status string
	}{{TLSRequire, StatusQueued}, {TLSAuto, StatusSent}, {TLSOff, StatusSent}}
	for _, tc := range tests {
		t.Run(string(tc.mode), func(t *testing.T) {
			var d *smtpd
			forEachEngine(t, func() Config {
				d = startSMTPD(t, nil, "u", "p")
				return Config{SMTP: relay(d, tc.mode, nil)}
			}, func(t *testing.T, e *env) {
				e.shop.addOrder("o-1", "M-1", "c-1", "Bo", 100)
				e.deliver(e.eventFor(KindOrderPlaced, "o-1"))
				e.send()
				m := e.messages("c-1")
				if len(m) != 1 || m[0].Status != tc.status {
					t.Fatalf("%+v, want %s", m, tc.status)
				}
				if tc.status == StatusQueued && !strings.Contains(m[0].LastError, "STARTTLS") {
					t.Errorf("last_error %q", m[0].LastError)
				}
			})
		})
	}
}

// Without SMTP a message is recorded as skipped and nothing is pending; a
// redelivered event records nothing more; a guest's order, an erased
// customer and a missing order get nothing.
func TestSkippedWithoutSMTP(t *testing.T) {
	forEachEngine(t, func() Config { return Config{} }, func(t *testing.T, e *env) {
		e.shop.addOrder("o-1", "M-1", "c-1", "Bo", 100)
		e.shop.addOrder("o-guest", "M-2", "", "", 100)
		ev, err := e.eventFor(KindOrderPlaced, "o-1")
		e.deliver(ev, err)
		e.deliver(ev, err) // the same event again
		e.deliver(e.eventFor(KindOrderPlaced, "o-guest"))
		e.deliver(e.eventFor(KindOrderPlaced, "o-missing"))
		e.shop.addOrder("o-erased", "M-3", "c-erased", "", 100)
		e.shop.users["c-erased"] = accounts.User{ID: "c-erased", Email: "erased-c-erased@invalid"}
		e.deliver(e.eventFor(KindOrderPlaced, "o-erased"))
		m := e.messages("")
		if len(m) != 1 || m[0].Status != StatusSkipped || m[0].CustomerID != "c-1" || m[0].Kind != KindOrderPlaced || m[0].OrderID != "o-1" {
			t.Fatalf("log %+v, want one skipped order_placed of c-1", m)
		}
		if n := e.send(); n != 0 {
			t.Errorf("sent %d without SMTP", n)
		}
		var queued int
		if err := e.db.Reader().QueryRow(`SELECT COUNT(*) FROM notifications_messages WHERE status = 'queued'`).Scan(&queued); err != nil || queued != 0 {
			t.Errorf("pending %d (%v)", queued, err)
		}
	})
}

// Low stock alerts the staff address once per SKU per hour.
func TestLowStockAlert(t *testing.T) {
	var d *smtpd
	forEachEngine(t, func() Config {
		d = startSMTPD(t, nil, "", "")
		return Config{SMTP: relay(d, TLSAuto, nil), StaffEmail: "ops@mercato.test"}
	}, func(t *testing.T, e *env) {
		steps := []struct {
			advance time.Duration
			sku     string
			alerts  int // total messages after the step
		}{
			{0, "SKU-1", 1},
			{10 * time.Minute, "SKU-1", 1}, // within the hour
			{0, "SKU-2", 2},                // another SKU
			{50*time.Minute + time.Second, "SKU-1", 3},
		}
		for i, s := range steps {
			e.clk.Advance(s.advance)
			e.deliver(e.eventFor(KindLowStock, s.sku))
			if got := len(e.messages("")); got != s.alerts {
				t.Fatalf("step %d: %d alerts, want %d", i, got, s.alerts)
			}
		}
		if n := e.send(); n != 3 {
			t.Fatalf("sent %d", n)
		}
		got := d.received()
		m := parseMail(t, got[0].data)
		if got[0].to != "ops@mercato.test" || m.subject != "Low stock: SKU-1" || !strings.Contains(m.text, "2 available (threshold 5)") {
			t.Errorf("alert to %s: %q %q", got[0].to, m.subject, m.text)
		}
	})
}

// No staff address: no alert.
func TestLowStockWithoutStaffAddress(t *testing.T) {
	forEachEngine(t, func() Config { return Config{} }, func(t *testing.T, e *env) {
		e.deliver(e.eventFor(KindLowStock, "SKU-1"))
		if m := e.messages(""); len(m) != 0 {
			t.Fatalf("%+v", m)
		}
	})
}

// Every kind renders in both locales; an unknown locale falls back to en;
// the HTML part escapes what customers typed.
func TestRenderEveryKind(t *testing.T) {
	r := newRenderer()
	if _, _, html, err := r.render(KindOrderPaid, LocaleEN, mailData{Name: `<script>x</script>`}); err != nil ||
		strings.Contains(html, "<script>") || !strings.Contains(html, "&lt;script&gt;") {
		t.Errorf("html not escaped: %q %v", html, err)
	}
	d := mailData{Name: "N", Number: "M-1", Total: "1.00 EUR", Refund: "1.00 EUR", TrackingURL: "https://t.example/1", SKU: "S"}
	for _, kind := range []string{KindOrderPlaced, KindOrderPaid, KindOrderShipped, KindOrderDelivered, KindOrderCancelled, KindPaymentRefunded, KindLowStock, KindDeadLetter} {
		for _, loc := range []string{LocaleEN, LocaleZH, "fr"} {
			subj, text, html, err := r.render(kind, loc, d)
			if err != nil || subj == "" || strings.TrimSpace(text) == "" || html == "" {
				t.Errorf("%s/%s: %q %q %q %v", kind, loc, subj, text, html, err)
			}
		}
	}
}

func TestParseSMTPURL(t *testing.T) {
	tests := []struct {
		in         string
		addr, user string
		pass       string
		ok         bool
	}{
		{"smtp://u:p%40ss@mail.example:2525", "mail.example:2525", "u", "p@ss", true},
		{"smtp://mail.example", "mail.example:587", "", "", true},
		{"http://mail.example", "", "", "", false},
		{"smtp://", "", "", "", false},
	}
	for _, tc := range tests {
		s, err := ParseSMTPURL(tc.in)
		if (err == nil) != tc.ok || s.Addr != tc.addr || s.Username != tc.user || s.Password != tc.pass {
			t.Errorf("%s: %+v %v", tc.in, s, err)
		}
	}
}

// fakeDead is a settable dead-letter count.
type fakeDead struct{ n int64 }

func (f *fakeDead) DeadLetters(context.Context) (int64, error) { return f.n, nil }

// Parked events alert the staff at most once per hour, and not at all
// while there are none.
func TestDeadLetterAlert(t *testing.T) {
	forEachEngine(t, func() Config { return Config{StaffEmail: "ops@mercato.test"} }, func(t *testing.T, e *env) {
		dead := &fakeDead{}
		e.svc.deps.DeadLetters = dead
		steps := []struct {
			advance time.Duration
			dead    int64
			want    int64 // alerts recorded by this run
		}{
			{0, 0, 0},
			{0, 3, 1},
			{30 * time.Minute, 4, 0},
			{31 * time.Minute, 4, 1},
		}
		for i, s := range steps {
			e.clk.Advance(s.advance)
			dead.n = s.dead
			n, err := e.svc.AlertDeadLetters(context.Background())
			if err != nil || n != s.want {
				t.Fatalf("step %d: %d alerts (%v), want %d", i, n, err, s.want)
			}
		}
		m := e.messages("")
		if len(m) != 2 || m[0].Kind != KindDeadLetter || m[0].Recipient != "ops@mercato.test" || m[0].Status != StatusSkipped {
			t.Fatalf("%+v", m)
		}
	})
}

// Concurrent sender runs (a job overrunning its period, two replicas) send
// each message once: the claim is a conditional write.
func TestSenderRunsRace(t *testing.T) {
	const messages, runs = 20, 4
	var d *smtpd
	forEachEngine(t, func() Config {
		d = startSMTPD(t, nil, "", "")
		return Config{SMTP: relay(d, TLSAuto, nil)}
	}, func(t *testing.T, e *env) {
		for i := range messages {
			id := "o-" + string(rune('a'+i))
			e.shop.addOrder(id, "M-"+id, "c-"+id, "N", 100)
			e.deliver(e.eventFor(KindOrderPlaced, id))
		}
		var wg sync.WaitGroup
		sent := make(chan int64, runs)
		start := make(chan struct{})
		for range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				n, err := e.svc.SendDue(context.Background())
				if err != nil {
					t.Errorf("SendDue: %v", err)
				}
				sent <- n
			}()
		}
		close(start)
		wg.Wait()
		close(sent)
		var total int64
		for n := range sent {
			total += n
		}
		seen := map[string]int{}
		for _, r := range d.received() {
			seen[r.to]++
		}
		if total != messages || len(d.received()) != messages || len(seen) != messages {
			t.Fatalf("runs sent %d, relay got %d for %d recipients, want %d each once", total, len(d.received()), len(seen), messages)
		}
		for _, m := range e.messages("") {
			if m.Status != StatusSent || m.Attempts != 1 {
				t.Errorf("%+v", m)
			}
		}
	})
}
