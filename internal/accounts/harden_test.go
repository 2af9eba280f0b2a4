package accounts

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web/webtest"
)

// hashes counts the argon2id derivations a Service runs (Config.derive),
// remembers their cost parameters, and can hold them until released.
type hashes struct {
	calls   atomic.Int64
	hold    chan struct{} // nil: never held
	entered chan struct{} // one value per derivation started (when held)

	mu     sync.Mutex
	params []string // "m=…,t=…" of each call; guarded by mu
}

func (h *hashes) derive(password, salt []byte, t, m uint32, p uint8, keyLen uint32) []byte {
	h.calls.Add(1)
	h.mu.Lock()
	h.params = append(h.params, fmt.Sprintf("m=%d,t=%d,p=%d", m, t, p))
	h.mu.Unlock()
	if h.hold != nil {
		h.entered <- struct{}{}
		<-h.hold
	}
	return argon2.IDKey(password, salt, t, m, p, keyLen)
}

// clientHeader names the client address in tests (Config.ClientIP).
const clientHeader = "X-Test-Client"

func headerIP(r *http.Request) string {
	if ip := r.Header.Get(clientHeader); ip != "" {
		return ip
	}
	return peerIP(r)
}

// from is the anonymous client at address ip.
func (e *env) from(ip string) *webtest.Client { return e.c.With(clientHeader + ": " + ip) }

func TestParallelLoginsCountedBeforeHashing(t *testing.T) {
	h := &hashes{}
	forEachEngine(t, Config{derive: h.derive}, func(t *testing.T, e *env) {
		e.register("target@example.com")
		h.calls.Store(0)
		const n = 200
		res := make([]*webtest.Response, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pw := fmt.Sprintf("wrong-guess-%03d", i)
				if i == n/2 {
					pw = goodPassword
				}
				res[i] = e.loginAttempt("target@example.com", pw)
			}()
		}
		wg.Wait()
		status := map[int]int{}
		for _, r := range res {
			status[r.Status]++
			if r.Status == http.StatusTooManyRequests {
				if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
					t.Errorf("429 with Retry-After %q", r.Header.Get("Retry-After"))
				}
			}
		}
		// Each attempt that got past the count verified one hash and was
		// answered 401 or 200. Ten failures in a row lock; a success breaks
		// the row, so at most 10 before it, itself, and 10 after it.
		verified := int(h.calls.Load())
		t.Logf("statuses %v, hashes verified %d", status, verified)
		if verified > 21 {
			t.Errorf("%d hashes verified for %d parallel attempts; want at most 21", verified, n)
		}
		if status[401]+status[200] != verified || status[401]+status[200]+status[429] != n {
			t.Errorf("statuses %v do not add up to %d attempts with %d hashes", status, n, verified)
		}
	})
}

func TestHashQueueShedsLoad(t *testing.T) {
	h := &hashes{hold: make(chan struct{}), entered: make(chan struct{}, 8)}
	e := newEnv(t, sqldbtest.Open(t, sqldb.SQLite, sources()...), Config{derive: h.derive, HashSlots: 1, HashQueue: 2})
	results := make(chan *webtest.Response, 3)
	for i := range 3 {
		go func() { results <- e.loginAttempt(fmt.Sprintf("queued%d@example.com", i), "wrong-password-x") }()
		if i == 0 {
			<-h.entered // the first holds the only slot
		}
	}
	for deadline := time.Now().Add(10 * time.Second); e.svc.hash.waiting.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("%d logins wait for a hash, want 2", e.svc.hash.waiting.Load())
		}
		time.Sleep(time.Millisecond) // polling a counter, not timing anything
	}
	before := e.snapshot()
	r := e.loginAttempt("shed@example.com", "wrong-password-x")
	wantRateLimited(t, r, 1)
	if e.count("accounts_login_throttle", "email = 'shed@example.com'") != 0 {
		t.Errorf("a shed login was counted")
	}
	e.assertUnchanged(before)
	if got := h.calls.Load(); got != 1 {
		t.Errorf("%d hashes started, want 1 (one slot)", got)
	}
	close(h.hold)
	for range 3 {
		webtest.AssertProblem(t, <-results, 401, "unauthorized")
	}
}

// Both answers verify exactly one argon2id hash with the production
// parameters: the same work, whatever the machine's speed.
func TestLoginWorkUnknownVsWrong(t *testing.T) {
	h := &hashes{}
	e := newEnv(t, sqldbtest.Open(t, sqldb.SQLite, sources()...), Config{Hash: DefaultHashParams, derive: h.derive})
	e.register("tim@example.com")
	want := fmt.Sprintf("m=%d,t=%d,p=%d", DefaultHashParams.MemoryKiB, DefaultHashParams.Iterations, DefaultHashParams.Parallelism)
	for _, email := range []string{"nobody@example.com", "tim@example.com"} {
		t.Run(email, func(t *testing.T) {
			h.mu.Lock()
			h.params = nil
			h.mu.Unlock()
			webtest.AssertProblem(t, e.loginAttempt(email, "wrong-password-a"), 401, "unauthorized")
			h.mu.Lock()
			defer h.mu.Unlock()
			if len(h.params) != 1 || h.params[0] != want {
				t.Errorf("hashes verified %v, want exactly one with %s", h.params, want)
			}
		})
	}
}

func TestLockoutKeepsTheOwnerIn(t *testing.T) {
	cfg := Config{ClientIP: headerIP, Throttle: ThrottleConfig{AccountCeiling: 60}}
	forEachEngine(t, cfg, func(t *testing.T, e *env) {
		const owner = "owner@example.com"
		e.register(owner)
		home := e.from("192.0.2.1")
		login := func(c *webtest.Client, pw string) *webtest.Response {
			return c.Do("POST", "/api/v1/auth/login", map[string]string{"email": owner, "password": pw})
		}
		login(home, goodPassword).WantStatus(t, http.StatusOK) // home becomes a known address

		t.Run("a stranger's failures lock only the stranger's address", func(t *testing.T) {
			stranger := e.from("198.51.100.7")
			for i := range 10 {
				webtest.AssertProblem(t, login(stranger, fmt.Sprintf("guess-%02d-xxxxx", i)), 401, "unauthorized")
			}
			wantRateLimited(t, login(stranger, goodPassword), 30)
			login(home, goodPassword).WantStatus(t, http.StatusOK)
			login(e.from("203.0.113.9"), goodPassword).WantStatus(t, http.StatusOK) // a new address too
		})
		t.Run("30 parallel failures do not lock the owner", func(t *testing.T) {
			var wg sync.WaitGroup
			for i := range 30 {
				wg.Add(1)
				go func() { defer wg.Done(); login(e.from("198.51.100.8"), fmt.Sprintf("guess-%02d-yyyyy", i)) }()
			}
			wg.Wait()
			login(home, goodPassword).WantStatus(t, http.StatusOK)
		})
		t.Run("four failures an hour for hours", func(t *testing.T) {
			slow := e.from("198.51.100.9")
			for hour := range 6 {
				for i := range 4 {
					login(slow, fmt.Sprintf("slow-%d-%d-guess", hour, i))
					e.clock.Advance(15 * time.Minute)
				}
				login(home, goodPassword).WantStatus(t, http.StatusOK)
			}
		})
		t.Run("a distributed attack locks unknown addresses, not known ones", func(t *testing.T) {
			e.clock.Advance(2 * time.Hour) // the earlier counters are forgotten
			for i := range 60 {
				login(e.from(fmt.Sprintf("10.1.0.%d", i)), "distributed-guess")
			}
			webtest.AssertProblem(t, login(e.from("10.2.0.1"), goodPassword), 429, "rate_limited")
			login(home, goodPassword).WantStatus(t, http.StatusOK)
		})
		t.Run("the unlock link clears the lock once", func(t *testing.T) {
			newPlace := e.from("10.3.0.1")
			webtest.AssertProblem(t, login(newPlace, goodPassword), 429, "rate_limited")
			for _, email := range []string{"nobody@example.com", owner} { // jobs run in order
				e.c.Do("POST", "/api/v1/auth/unlock", map[string]string{"email": email}).WantStatus(t, http.StatusAccepted)
			}
			m := <-e.mail.ch
			if m.To != owner || m.Kind != purposeUnlock {
				t.Fatalf("mail %q to %q, want an unlock mail to the owner", m.Kind, m.To)
			}
			if len(e.mail.ch) != 0 {
				t.Errorf("an unknown address got an unlock mail")
			}
			tok := resetToken.FindString(m.Text)
			if e.count("accounts_password_resets", "token_hash = $1 AND purpose = 'unlock'", hashToken(tok)) != 1 {
				t.Errorf("the unlock token's hash is not stored")
			}
			newPlace.Do("POST", "/api/v1/auth/unlock/confirm", map[string]string{"token": tok}).WantStatus(t, http.StatusNoContent)
			login(newPlace, goodPassword).WantStatus(t, http.StatusOK)
			p := webtest.AssertProblem(t, newPlace.Do("POST", "/api/v1/auth/unlock/confirm", map[string]string{"token": tok}), 422, "validation_failed")
			webtest.AssertFieldError(t, p, "token")
			// A reset token does not unlock, nor an unlock token reset.
			webtest.AssertProblem(t, e.c.Do("POST", "/api/v1/auth/password-reset/confirm",
				map[string]string{"token": tok, "new_password": newPassword}), 422, "validation_failed")
		})
		t.Run("no lock, no unlock mail", func(t *testing.T) {
			e.clock.Advance(2 * time.Minute)
			e.c.Do("POST", "/api/v1/auth/unlock", map[string]string{"email": owner}).WantStatus(t, http.StatusAccepted)
			e.resetMail(owner) // queued after the unlock request: it has run
			if len(e.mail.ch) != 0 || e.count("accounts_password_resets", "purpose = 'unlock' AND used_at = 0") != 0 {
				t.Errorf("an unlock mail went to an account without a lock")
			}
		})
	})
}

func TestResetRequestAnsweredBeforeItsWork(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		e.register("known@example.com")
		entered, release := make(chan struct{}, 4), make(chan struct{})
		gate := func() { entered <- struct{}{}; <-release }
		e.svc.jobs.gate.Store(&gate)
		before := e.snapshot()
		e.c.Do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "known@example.com"}).WantStatus(t, http.StatusAccepted)
		<-entered // the worker holds the first request's job
		e.c.Do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "unknown@example.com"}).WantStatus(t, http.StatusAccepted)
		// Both were answered while no reset work had run: the request path
		// did the same for both (validate, queue).
		if got := e.svc.jobs.waiting(); got != 1 {
			t.Errorf("%d jobs waiting, want 1 (the other is held)", got)
		}
		e.assertUnchanged(before)
		close(release)
		if m := <-e.mail.ch; m.To != "known@example.com" || m.Kind != purposeReset {
			t.Errorf("mail %q to %q", m.Kind, m.To)
		}
		e.svc.Close() // drains the queue
		if n := e.count("accounts_password_resets", ""); n != 1 || len(e.mail.ch) != 0 {
			t.Errorf("%d resets stored and %d more mails after draining; want 1 and 0", n, len(e.mail.ch))
		}
		webtest.AssertProblem(t, e.c.Do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "known@example.com"}),
			503, "unavailable")
	})
}

func TestResetQueueBounded(t *testing.T) {
	e := sqliteEnv(t, Config{MailQueue: 1})
	entered, release := make(chan struct{}, 4), make(chan struct{})
	gate := func() { entered <- struct{}{}; <-release }
	e.svc.jobs.gate.Store(&gate)
	defer close(release)
	ask := func() *webtest.Response {
		return e.c.Do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "someone@example.com"})
	}
	ask().WantStatus(t, http.StatusAccepted)
	<-entered
	ask().WantStatus(t, http.StatusAccepted) // waits in the queue
	webtest.AssertProblem(t, ask(), 429, "rate_limited")
}
