package accounts

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"testing"

	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web/webtest"
)

// A copy of the database after register, login, MFA enrolment and
// verification — every one sent with an Idempotency-Key, so its answer is
// recorded — holds no token, TOTP secret or recovery code, nor the
// password, nor an unsalted digest of a request body.
func TestIdempotencyRecordsHoldNoSecret(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		reg := map[string]string{"email": "sec@example.com", "password": goodPassword, "name": "Sec"}
		r := e.c.Do("POST", "/api/v1/auth/register", reg, "Idempotency-Key: k-reg")
		r.WantStatus(t, http.StatusCreated)
		secrets := []string{r.Field("token").(string), goodPassword}
		login := map[string]string{"email": "sec@example.com", "password": goodPassword}
		r = e.c.Do("POST", "/api/v1/auth/login", login, "Idempotency-Key: k-login")
		r.WantStatus(t, http.StatusOK)
		tok := r.Field("token").(string)
		secrets = append(secrets, tok)
		r = e.as(tok).Do("POST", "/api/v1/me/mfa/enroll", map[string]string{"password": goodPassword}, "Idempotency-Key: k-enrol")
		r.WantStatus(t, http.StatusOK)
		secret := r.Field("secret").(string)
		secrets = append(secrets, secret)
		r = e.as(tok).Do("POST", "/api/v1/me/mfa/verify", map[string]string{"code": e.code(secret)}, "Idempotency-Key: k-verify")
		r.WantStatus(t, http.StatusOK)
		for _, c := range r.Field("recovery_codes").([]any) {
			secrets = append(secrets, c.(string))
		}
		// The replays work: the answers are recorded.
		again := e.c.Do("POST", "/api/v1/auth/login", login, "Idempotency-Key: k-login")
		again.WantStatus(t, http.StatusOK)
		if again.Field("token") != tok {
			t.Fatalf("the login replay answered another token")
		}
		if n := e.count("idempotency_records", ""); n != 4 {
			t.Fatalf("%d idempotency records, want 4", n)
		}
		var digests [][]byte
		for _, body := range []map[string]string{reg, login} {
			b, _ := json.Marshal(body)
			sum := sha256.Sum256(b)
			digests = append(digests, sum[:])
		}
		sqldbtest.AssertNoSecret(t, e.db, "idempotency_records", secrets, digests)
	})
}

// A login sent again with a used key and another body is a guess at the
// password: it is answered like a wrong password and counted by the
// throttle, never as "same key, other body".
func TestLoginReplayWithAnotherBodyIsAFailedLogin(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		e.register("victim@example.com")
		good := map[string]string{"email": "victim@example.com", "password": goodPassword}
		e.c.Do("POST", "/api/v1/auth/login", good, "Idempotency-Key: victims-key").WantStatus(t, http.StatusOK)
		for i := range 10 {
			guess := map[string]string{"email": "victim@example.com", "password": "guess number " + string(rune('a'+i))}
			r := e.c.Do("POST", "/api/v1/auth/login", guess, "Idempotency-Key: victims-key")
			webtest.AssertProblem(t, r, http.StatusUnauthorized, "unauthorized")
		}
		if n := e.count("accounts_login_throttle", "failures >= 10"); n == 0 {
			t.Errorf("replays with other bodies were not counted as failures (no throttle row at 10)")
		}
		r := e.c.Do("POST", "/api/v1/auth/login", map[string]string{"email": "victim@example.com", "password": "one more"}, "Idempotency-Key: victims-key")
		webtest.AssertProblem(t, r, http.StatusTooManyRequests, "rate_limited")
	})
}

// Erasure removes the answers idempotency recorded for the customer: those
// of their signed-in requests and those of the anonymous ones naming their
// address.
func TestErasureForgetsRecordedAnswers(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		_, other := e.register("stays@example.com")
		e.as(other).Do("POST", "/api/v1/me/addresses", sampleAddress(), "Idempotency-Key: other-1").WantStatus(t, http.StatusCreated)
		reg := e.c.Do("POST", "/api/v1/auth/register", map[string]string{"email": "Gone@Example.com", "password": goodPassword, "name": "G"},
			"Idempotency-Key: g-reg")
		reg.WantStatus(t, http.StatusCreated)
		tok := reg.Field("token").(string)
		e.as(tok).Do("POST", "/api/v1/me/addresses", sampleAddress(), "Idempotency-Key: g-addr").WantStatus(t, http.StatusCreated)
		if n := e.count("idempotency_records", ""); n != 3 {
			t.Fatalf("%d records before the erasure, want 3", n)
		}
		e.as(tok).Do("POST", "/api/v1/me/erase", map[string]string{"password": goodPassword}).WantStatus(t, http.StatusOK)
		if n := e.count("idempotency_records", ""); n != 1 {
			t.Errorf("%d records after the erasure, want only the other customer's 1", n)
		}
	})
}
