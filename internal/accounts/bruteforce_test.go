package accounts

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"mercato/internal/platform/web/webtest"
)

// loginAs posts a login and returns the response.
func (e *env) loginAttempt(email, password string) *webtest.Response {
	e.t.Helper()
	return e.c.Do("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password})
}

// wantRateLimited asserts a 429 with Retry-After retry seconds.
func wantRateLimited(t *testing.T, r *webtest.Response, retry int) {
	t.Helper()
	webtest.AssertProblem(t, r, http.StatusTooManyRequests, "rate_limited")
	if got := r.Header.Get("Retry-After"); got != strconv.Itoa(retry) {
		t.Errorf("Retry-After = %q, want %d", got, retry)
	}
}

func TestBruteForceAccount(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		const victim = "victim@example.com"
		e.register(victim)
		fail := func(n int) {
			t.Helper()
			for i := range n {
				webtest.AssertProblem(t, e.loginAttempt(victim, fmt.Sprintf("guess-number-%03d", i)), 401, "unauthorized")
			}
		}

		t.Run("the 11th attempt within the window is 429, the right password too", func(t *testing.T) {
			fail(10)
			wantRateLimited(t, e.loginAttempt(victim, "guess-number-999"), 30)
			wantRateLimited(t, e.loginAttempt(victim, goodPassword), 30)
			e.clock.Advance(10 * time.Second)
			wantRateLimited(t, e.loginAttempt(victim, goodPassword), 20)
		})
		t.Run("after the window the owner gets in and the count starts again", func(t *testing.T) {
			e.clock.Advance(21 * time.Second)
			e.loginAttempt(victim, goodPassword).WantStatus(t, http.StatusOK)
			if n := e.failures(victim); n != 0 {
				t.Errorf("a success left the failure count")
			}
			fail(10)
			wantRateLimited(t, e.loginAttempt(victim, goodPassword), 30)
		})
		t.Run("the window grows with further failures, capped at 15 min", func(t *testing.T) {
			for _, want := range []int{60, 120, 240, 480, 900, 900} {
				e.clock.Advance(15 * time.Minute)
				fail(1) // counted: the window is over
				wantRateLimited(t, e.loginAttempt(victim, goodPassword), want)
			}
			e.clock.Advance(15 * time.Minute)
			e.loginAttempt(victim, goodPassword).WantStatus(t, http.StatusOK)
		})
		t.Run("unknown addresses are throttled alike", func(t *testing.T) {
			for i := range 10 {
				webtest.AssertProblem(t, e.loginAttempt("ghost@example.com", fmt.Sprintf("guess-number-%03d", i)), 401, "unauthorized")
			}
			wantRateLimited(t, e.loginAttempt("ghost@example.com", goodPassword), 30)
		})
		t.Run("successes do not count", func(t *testing.T) {
			e.register("happy@example.com")
			for range 12 {
				e.loginAttempt("happy@example.com", goodPassword).WantStatus(t, http.StatusOK)
			}
		})
	})
}

func TestBruteForceIP(t *testing.T) {
	e := sqliteEnv(t, Config{})
	_, _ = e.register("owner@example.com")
	// 50 failures against 50 addresses: no account reaches its threshold,
	// the client address does.
	for i := range 50 {
		webtest.AssertProblem(t, e.loginAttempt(fmt.Sprintf("spray%02d@example.com", i), "guess-password-1"), 401, "unauthorized")
	}
	wantRateLimited(t, e.loginAttempt("owner@example.com", goodPassword), 30)
	e.clock.Advance(31 * time.Second)
	e.loginAttempt("owner@example.com", goodPassword).WantStatus(t, http.StatusOK)
	webtest.AssertProblem(t, e.loginAttempt("spray99@example.com", "guess-password-1"), 401, "unauthorized")
	wantRateLimited(t, e.loginAttempt("owner@example.com", goodPassword), 60)
}

func TestThrottleLockFor(t *testing.T) {
	c := ThrottleConfig{}.withDefaults()
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{0, 0}, {9, 0}, {10, 30 * time.Second}, {11, time.Minute}, {14, 8 * time.Minute},
		{15, 15 * time.Minute}, {40, 15 * time.Minute}, {1000, 15 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.failures), func(t *testing.T) {
			if got := c.lockFor(tc.failures, c.AccountFailures); got != tc.want {
				t.Errorf("lockFor(%d) = %v, want %v", tc.failures, got, tc.want)
			}
		})
	}
}
