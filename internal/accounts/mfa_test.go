package accounts

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"mercato/internal/platform/totp"
	"mercato/internal/platform/web/webtest"
)

// code returns the TOTP code of secret at the env's clock.
func (e *env) code(secret string) string {
	e.t.Helper()
	c, err := totp.Code(secret, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// enrol enrols and verifies MFA for the holder of tok; returns the secret
// and the recovery codes.
func (e *env) enrol(tok string) (string, []string) {
	e.t.Helper()
	r := e.as(tok).Do("POST", "/api/v1/me/mfa/enroll", map[string]string{"password": goodPassword})
	r.WantStatus(e.t, http.StatusOK)
	var en EnrollResponse
	r.Decode(e.t, &en)
	r = e.as(tok).Do("POST", "/api/v1/me/mfa/verify", map[string]string{"code": e.code(en.Secret)})
	r.WantStatus(e.t, http.StatusOK)
	var v VerifyMFAResponse
	r.Decode(e.t, &v)
	return en.Secret, v.RecoveryCodes
}

func TestMFA(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		_, tok := e.staff("mia@example.com", RoleOperator)
		me := e.as(tok)
		var secret string
		var recovery []string

		t.Run("verify before enrolling", func(t *testing.T) {
			webtest.AssertProblem(t, me.Do("POST", "/api/v1/me/mfa/verify", map[string]string{"code": "123456"}), 409, "conflict")
		})
		t.Run("enrol and verify", func(t *testing.T) {
			r := me.Do("POST", "/api/v1/me/mfa/enroll", map[string]string{"password": goodPassword})
			r.WantStatus(t, http.StatusOK)
			var en EnrollResponse
			r.Decode(t, &en)
			secret = en.Secret
			if !strings.HasPrefix(en.OTPAuthURL, "otpauth://totp/") || !strings.Contains(en.OTPAuthURL, "secret="+secret) ||
				!strings.Contains(en.OTPAuthURL, "mercato") {
				t.Errorf("otpauth URL %q", en.OTPAuthURL)
			}
			wrong := "000000"
			if e.code(secret) == wrong {
				wrong = "111111"
			}
			before := e.snapshot()
			p := webtest.AssertProblem(t, me.Do("POST", "/api/v1/me/mfa/verify", map[string]string{"code": wrong}), 422, "validation_failed")
			webtest.AssertFieldError(t, p, "code")
			e.assertUnchanged(before)

			r = me.Do("POST", "/api/v1/me/mfa/verify", map[string]string{"code": e.code(secret)})
			r.WantStatus(t, http.StatusOK)
			var v VerifyMFAResponse
			r.Decode(t, &v)
			recovery = v.RecoveryCodes
			if len(recovery) != 10 || e.count("accounts_recovery_codes", "used_at = 0") != 10 {
				t.Fatalf("recovery codes %v", recovery)
			}
			if e.count("accounts_recovery_codes", "code_hash = $1", recovery[0]) != 0 {
				t.Errorf("a recovery code is stored in the clear")
			}
			webtest.AssertProblem(t, me.Do("POST", "/api/v1/me/mfa/enroll", map[string]string{"password": goodPassword}), 409, "conflict")
		})
		login := func(otp string) *webtest.Response {
			body := map[string]string{"email": "mia@example.com", "password": goodPassword}
			if otp != "" {
				body["otp"] = otp
			}
			return e.c.Do("POST", "/api/v1/auth/login", body)
		}
		t.Run("login without the code", func(t *testing.T) {
			webtest.AssertProblem(t, login(""), 401, "mfa_required")
			if n := e.failures("mia@example.com"); n != 0 {
				t.Errorf("a missing code counted as a failure")
			}
		})
		t.Run("login with a wrong code counts as a failure", func(t *testing.T) {
			webtest.AssertProblem(t, login("999999x"), 401, "unauthorized")
			if n := e.failures("mia@example.com"); n != 1 {
				t.Errorf("a wrong code did not count")
			}
		})
		t.Run("a code is accepted once", func(t *testing.T) {
			webtest.AssertProblem(t, login(e.code(secret)), 401, "unauthorized") // used by verify
			e.clock.Advance(30 * time.Second)
			c := e.code(secret)
			login(c).WantStatus(t, http.StatusOK)
			webtest.AssertProblem(t, login(c), 401, "unauthorized")
			if n := e.failures("mia@example.com"); n != 1 { // the replay counted; the success before reset
				t.Errorf("failures in a row = %d, want 1", n)
			}
		})
		t.Run("a recovery code works once, however typed", func(t *testing.T) {
			typed := strings.ToUpper(strings.ReplaceAll(recovery[3], "-", " "))
			login(typed).WantStatus(t, http.StatusOK)
			webtest.AssertProblem(t, login(recovery[3]), 401, "unauthorized")
			if n := e.count("accounts_recovery_codes", "used_at <> 0"); n != 1 {
				t.Errorf("%d used recovery codes, want 1", n)
			}
		})
		t.Run("audited", func(t *testing.T) {
			if n := e.count("audit_log", "action = 'user.mfa_enabled'"); n != 1 {
				t.Errorf("user.mfa_enabled entries = %d", n)
			}
		})
	})
}

func TestMFARequiredForStaff(t *testing.T) {
	forEachEngine(t, Config{StaffMFARequired: true}, func(t *testing.T, e *env) {
		e.svc.CreateUser(t.Context(), "boss@example.com", goodPassword, "Boss", []string{RoleAdmin})
		r := e.loginAttempt("boss@example.com", goodPassword)
		r.WantStatus(t, http.StatusOK)
		if r.Field("mfa_setup_required") != true {
			t.Fatalf("staff login without MFA: %s", r.Body)
		}
		tok := r.Field("token").(string)
		boss := e.as(tok)
		webtest.AssertProblem(t, boss.Do("GET", "/api/v1/admin/staff", nil), 403, "forbidden")
		boss.Do("GET", "/api/v1/me", nil).WantStatus(t, http.StatusOK)

		t.Run("the setup token lives 15 minutes", func(t *testing.T) {
			r := e.loginAttempt("boss@example.com", goodPassword)
			short := r.Field("token").(string)
			e.clock.Advance(15*time.Minute + time.Second)
			webtest.AssertProblem(t, e.as(short).Do("GET", "/api/v1/me", nil), 401, "unauthorized")
			tok = e.loginAttempt("boss@example.com", goodPassword).Field("token").(string)
			boss = e.as(tok)
		})
		t.Run("verifying MFA lifts the token", func(t *testing.T) {
			e.enrol(tok)
			boss.Do("GET", "/api/v1/admin/staff", nil).WantStatus(t, http.StatusOK)
			e.clock.Advance(time.Hour) // now a 12 h staff session
			boss.Do("GET", "/api/v1/admin/staff", nil).WantStatus(t, http.StatusOK)
		})
		t.Run("customers are not concerned", func(t *testing.T) {
			e.register("shopper@example.com")
			r := e.loginAttempt("shopper@example.com", goodPassword)
			r.WantStatus(t, http.StatusOK)
			if r.Field("mfa_setup_required") != nil {
				t.Errorf("customer login: %s", r.Body)
			}
		})
	})
}
