package accounts

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

const newPassword = "lantern-quarry-meadow-17"

func TestChangePassword(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		_, tok := e.register("gina@example.com")
		other := e.login("gina@example.com", goodPassword)
		gina := e.as(tok)
		failures := []struct {
			name        string
			body        any
			status      int
			code, field string
		}{
			{"wrong current password", map[string]string{"current_password": "not-the-password", "new_password": newPassword}, 422, "validation_failed", "current_password"},
			{"weak new password", map[string]string{"current_password": goodPassword, "new_password": "qwerty12345"}, 422, "validation_failed", "new_password"},
			{"short new password", map[string]string{"current_password": goodPassword, "new_password": "abc"}, 422, "validation_failed", "new_password"},
			{"missing current password", map[string]string{"new_password": newPassword}, 422, "validation_failed", "current_password"},
		}
		for _, tc := range failures {
			t.Run(tc.name, func(t *testing.T) {
				before := e.snapshot()
				p := webtest.AssertProblem(t, gina.Do("POST", "/api/v1/me/password", tc.body), tc.status, tc.code)
				webtest.AssertFieldError(t, p, tc.field)
				before["accounts_login_throttle"] = e.count("accounts_login_throttle", "") // a wrong password counts, by design
				e.assertUnchanged(before)
			})
		}
		t.Run("change revokes the other sessions", func(t *testing.T) {
			gina.Do("POST", "/api/v1/me/password", map[string]string{"current_password": goodPassword, "new_password": newPassword}).
				WantStatus(t, http.StatusNoContent)
			gina.Do("GET", "/api/v1/me", nil).WantStatus(t, http.StatusOK)
			webtest.AssertProblem(t, e.as(other).Do("GET", "/api/v1/me", nil), 401, "unauthorized")
			webtest.AssertProblem(t, e.loginAttempt("gina@example.com", goodPassword), 401, "unauthorized")
			e.login("gina@example.com", newPassword)
		})
	})
}

var resetToken = regexp.MustCompile(`mct_[A-Za-z0-9_-]{43}`)

// resetMail requests a reset for email and returns the token from the mail.
func (e *env) resetMail(email string) string {
	e.t.Helper()
	e.c.Do("POST", "/api/v1/auth/password-reset", map[string]string{"email": email}).WantStatus(e.t, http.StatusAccepted)
	select {
	case m := <-e.mail.ch:
		if m.To != email {
			e.t.Fatalf("reset mail to %q, want %q", m.To, email)
		}
		tok := resetToken.FindString(m.Text)
		if tok == "" {
			e.t.Fatalf("no token in the reset mail: %q", m.Text)
		}
		return tok
	case <-time.After(10 * time.Second):
		e.t.Fatal("no reset mail")
	}
	return ""
}

func TestPasswordReset(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		_, tok := e.register("hugo@example.com")

		t.Run("unknown address: 202 and nothing stored", func(t *testing.T) {
			r := e.c.Do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "nobody@example.com"})
			r.WantStatus(t, http.StatusAccepted)
			if n := e.count("accounts_password_resets", ""); n != 0 {
				t.Errorf("a reset was stored for an unknown address")
			}
		})
		t.Run("malformed address", func(t *testing.T) {
			p := webtest.AssertProblem(t, e.c.Do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "nope"}), 422, "validation_failed")
			webtest.AssertFieldError(t, p, "email")
		})
		reset := e.resetMail("hugo@example.com")
		t.Run("only the hash is stored; one mail a minute", func(t *testing.T) {
			if e.count("accounts_password_resets", "token_hash = $1", hashToken(reset)) != 1 {
				t.Errorf("the reset token's hash is not stored")
			}
			e.c.Do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "HUGO@example.com"}).WantStatus(t, http.StatusAccepted)
			if n := e.count("accounts_password_resets", ""); n != 1 {
				t.Errorf("%d resets after a second request within a minute", n)
			}
		})
		failures := []struct {
			name        string
			body        any
			status      int
			code, field string
		}{
			{"unknown token", map[string]string{"token": "mct_nope", "new_password": newPassword}, 422, "validation_failed", "token"},
			{"weak password", map[string]string{"token": reset, "new_password": "letmein1234"}, 422, "validation_failed", "new_password"},
			{"no token", map[string]string{"new_password": newPassword}, 422, "validation_failed", "token"},
		}
		for _, tc := range failures {
			t.Run(tc.name, func(t *testing.T) {
				before := e.snapshot()
				p := webtest.AssertProblem(t, e.c.Do("POST", "/api/v1/auth/password-reset/confirm", tc.body), tc.status, tc.code)
				webtest.AssertFieldError(t, p, tc.field)
				e.assertUnchanged(before)
			})
		}
		t.Run("confirm sets the password and ends every session", func(t *testing.T) {
			e.c.Do("POST", "/api/v1/auth/password-reset/confirm", map[string]string{"token": reset, "new_password": newPassword}).
				WantStatus(t, http.StatusNoContent)
			webtest.AssertProblem(t, e.as(tok).Do("GET", "/api/v1/me", nil), 401, "unauthorized")
			webtest.AssertProblem(t, e.loginAttempt("hugo@example.com", goodPassword), 401, "unauthorized")
			e.login("hugo@example.com", newPassword)
			p := webtest.AssertProblem(t, e.c.Do("POST", "/api/v1/auth/password-reset/confirm",
				map[string]string{"token": reset, "new_password": goodPassword}), 422, "validation_failed")
			webtest.AssertFieldError(t, p, "token")
		})
		t.Run("an expired token", func(t *testing.T) {
			e.clock.Advance(2 * time.Minute)
			late := e.resetMail("hugo@example.com")
			e.clock.Advance(time.Hour + time.Second)
			webtest.AssertProblem(t, e.c.Do("POST", "/api/v1/auth/password-reset/confirm",
				map[string]string{"token": late, "new_password": goodPassword}), 422, "validation_failed")
		})
	})
}

func TestChannelTokens(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		var tok string
		err := e.db.InTx(t.Context(), func(tx *sqldb.Tx) (err error) {
			tok, err = e.svc.IssueChannelToken(t.Context(), tx, "amazon")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		p, ok, err := e.svc.Authenticate(req)
		if err != nil || !ok || p.Channel != "amazon" || len(p.Roles) != 1 || p.Roles[0] != RoleChannel || p.UserID != "channel:amazon" {
			t.Fatalf("Authenticate(channel token) = %+v, %v, %v", p, ok, err)
		}
		c := e.as(tok)
		webtest.AssertProblem(t, c.Do("GET", "/api/v1/me", nil), 403, "forbidden")
		webtest.AssertProblem(t, c.Do("GET", "/api/v1/admin/customers", nil), 403, "forbidden")
		if err := e.db.InTx(t.Context(), func(tx *sqldb.Tx) error { return e.svc.RevokeChannelTokens(t.Context(), tx, "amazon") }); err != nil {
			t.Fatal(err)
		}
		webtest.AssertProblem(t, c.Do("GET", "/api/v1/me", nil), 401, "unauthorized")
		if err := e.db.InTx(t.Context(), func(tx *sqldb.Tx) error {
			_, err := e.svc.IssueChannelToken(t.Context(), tx, "")
			return err
		}); err == nil {
			t.Errorf("a channel token without a channel code was issued")
		}
	})
}

func TestIdempotentRegistration(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		body := map[string]string{"email": "ivy@example.com", "password": goodPassword, "name": "Ivy"}
		first := e.c.Do("POST", "/api/v1/auth/register", body, "Idempotency-Key: reg-1")
		first.WantStatus(t, http.StatusCreated)
		again := e.c.Do("POST", "/api/v1/auth/register", body, "Idempotency-Key: reg-1")
		again.WantStatus(t, http.StatusCreated)
		if string(again.Body) != string(first.Body) || again.Header.Get(web.HeaderReplayed) != "true" {
			t.Errorf("replay differs:\n%s\n%s", first.Body, again.Body)
		}
		if n := e.count("accounts_users", ""); n != 1 {
			t.Errorf("%d users after a replayed registration", n)
		}
		dup := e.c.Do("POST", "/api/v1/auth/register", body, "Idempotency-Key: reg-2")
		webtest.AssertProblem(t, dup, 409, "email_taken")
		// Anonymous keys are scoped by the address the request names: a
		// stranger using the same key for another address is not blocked...
		e.c.Do("POST", "/api/v1/auth/register", map[string]string{"email": "x@example.com",
			"password": goodPassword, "name": "X"}, "Idempotency-Key: reg-1").WantStatus(t, http.StatusCreated)
		// ...while the same address with another body is a reused key.
		webtest.AssertProblem(t, e.c.Do("POST", "/api/v1/auth/register", map[string]string{"email": "ivy@example.com",
			"password": goodPassword, "name": "Ivy Two"}, "Idempotency-Key: reg-1"), 422, "idempotency_key_reused")
	})
}

func TestOpenAPI(t *testing.T) {
	e := sqliteEnv(t, Config{})
	spec := webtest.CheckOpenAPI(t, e.router)
	_, tok := e.register("olga@example.com")
	olga := e.as(tok)
	olga.Do("POST", "/api/v1/me/addresses", sampleAddress()).WantStatus(t, http.StatusCreated)
	for _, tc := range []struct{ method, path, openapi string }{
		{"GET", "/api/v1/me", "/api/v1/me"},
		{"GET", "/api/v1/me/addresses", "/api/v1/me/addresses"},
	} {
		spec.ValidateResponse(t, tc.method, tc.openapi, olga.Do(tc.method, tc.path, nil))
	}
	spec.ValidateResponse(t, "POST", "/api/v1/auth/login", e.loginAttempt("olga@example.com", goodPassword))
	spec.ValidateResponse(t, "POST", "/api/v1/auth/login", e.loginAttempt("olga@example.com", "wrong-password"))
}
