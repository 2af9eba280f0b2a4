package accounts

import (
	"net/http"
	"testing"
	"time"

	"mercato/internal/platform/web/webtest"
)

func TestMFAChangesNeedThePassword(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		_, tok := e.register("nina@example.com")
		nina := e.as(tok)
		t.Run("enrolment", func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				body   any
				status int
				code   string
				field  string
			}{
				{"no body", nil, 400, "malformed_request", ""},
				{"no password", map[string]string{}, 422, "validation_failed", "password"},
				{"wrong password", map[string]string{"password": "not-the-password"}, 422, "validation_failed", "password"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					p := webtest.AssertProblem(t, nina.Do("POST", "/api/v1/me/mfa/enroll", tc.body), tc.status, tc.code)
					if tc.field != "" {
						webtest.AssertFieldError(t, p, tc.field)
					}
					if e.count("accounts_users", "mfa_pending <> ''") != 0 {
						t.Errorf("an unconfirmed enrolment started")
					}
				})
			}
			if n := e.failures("nina@example.com"); n != 1 {
				t.Errorf("failures after a wrong password = %d, want 1", n)
			}
		})
		secret, recovery := e.enrol(tok)
		disable := func(body map[string]string) *webtest.Response {
			return nina.Do("POST", "/api/v1/me/mfa/disable", body)
		}
		t.Run("disabling", func(t *testing.T) {
			wrong := "000000"
			if e.code(secret) == wrong {
				wrong = "111111"
			}
			for _, tc := range []struct {
				name  string
				body  map[string]string
				field string
			}{
				{"no code", map[string]string{"password": goodPassword}, "otp"},
				{"wrong code", map[string]string{"password": goodPassword, "otp": wrong}, "otp"},
				{"wrong password", map[string]string{"password": "not-the-password", "otp": recovery[0]}, "password"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					p := webtest.AssertProblem(t, disable(tc.body), 422, "validation_failed")
					webtest.AssertFieldError(t, p, tc.field)
					if e.count("accounts_users", "mfa_secret <> ''") != 1 {
						t.Errorf("MFA was turned off")
					}
				})
			}
			if n := e.failures("nina@example.com"); n != 2 {
				t.Errorf("failures after a wrong code and a wrong password = %d, want 2", n)
			}
			disable(map[string]string{"password": goodPassword, "otp": recovery[0]}).WantStatus(t, http.StatusNoContent)
			if e.count("accounts_users", "mfa_secret <> ''") != 0 || e.count("accounts_recovery_codes", "") != 0 {
				t.Errorf("MFA or recovery codes left after disabling")
			}
			nina.Do("GET", "/api/v1/me", nil).WantStatus(t, http.StatusOK) // the session stays
			e.login("nina@example.com", goodPassword)                      // no otp needed
			webtest.AssertProblem(t, disable(map[string]string{"password": goodPassword, "otp": recovery[1]}), 409, "conflict")
		})
		t.Run("a password reset leaves MFA on", func(t *testing.T) {
			e.enrol(tok)
			e.clock.Advance(time.Minute)
			reset := e.resetMail("nina@example.com")
			e.c.Do("POST", "/api/v1/auth/password-reset/confirm", map[string]string{"token": reset, "new_password": newPassword}).
				WantStatus(t, http.StatusNoContent)
			webtest.AssertProblem(t, e.loginAttempt("nina@example.com", newPassword), 401, "mfa_required")
		})
	})
}

func TestStaffResetsMFA(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		custID, custTok := e.register("lost@example.com")
		e.enrol(custTok)
		opID, opTok := e.staff("op@example.com", RoleOperator)
		e.enrol(opTok)
		csID, csTok := e.staff("cs@example.com", RoleCustomerService)
		_, adminTok := e.staff("admin@example.com", RoleAdmin)
		cs, admin, op := e.as(csTok), e.as(adminTok), e.as(opTok)
		customerPath, staffPath := "/api/v1/admin/customers/"+custID+"/mfa/reset", "/api/v1/admin/staff/"+opID+"/mfa/reset"

		tests := []struct {
			name   string
			c      *webtest.Client
			path   string
			status int
			code   string
		}{
			{"an operator may not reset a customer", op, customerPath, 403, "forbidden"},
			{"the customer may not reset itself", e.as(custTok), customerPath, 403, "forbidden"},
			{"customer service may not reset staff", cs, staffPath, 403, "forbidden"},
			{"a staff id on the customers route", cs, "/api/v1/admin/customers/" + opID + "/mfa/reset", 404, "not_found"},
			{"a customer id on the staff route", admin, "/api/v1/admin/staff/" + custID + "/mfa/reset", 404, "not_found"},
			{"an unknown id", cs, "/api/v1/admin/customers/nope/mfa/reset", 404, "not_found"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := e.snapshot()
				webtest.AssertProblem(t, tc.c.Do("POST", tc.path, nil), tc.status, tc.code)
				e.assertUnchanged(before)
			})
		}
		t.Run("customer service resets a customer", func(t *testing.T) {
			cs.Do("POST", customerPath, nil).WantStatus(t, http.StatusNoContent)
			webtest.AssertProblem(t, e.as(custTok).Do("GET", "/api/v1/me", nil), 401, "unauthorized") // sessions revoked
			e.login("lost@example.com", goodPassword)                                                 // no otp needed
			if n := e.count("audit_log", "action = 'customer.mfa_reset' AND actor_id = $1 AND target_id = $2", csID, custID); n != 1 {
				t.Errorf("customer.mfa_reset audit entries = %d", n)
			}
		})
		t.Run("an admin resets staff", func(t *testing.T) {
			admin.Do("POST", staffPath, nil).WantStatus(t, http.StatusNoContent)
			e.login("op@example.com", goodPassword)
			if n := e.count("audit_log", "action = 'staff.mfa_reset' AND target_id = $1", opID); n != 1 {
				t.Errorf("staff.mfa_reset audit entries = %d", n)
			}
		})
		t.Run("from the command line, audited as system", func(t *testing.T) {
			e.enrol(e.login("op@example.com", goodPassword))
			u, err := e.svc.ResetMFAByEmail(t.Context(), " OP@example.com ")
			if err != nil || u.ID != opID {
				t.Fatalf("ResetMFAByEmail = %+v, %v", u, err)
			}
			if n := e.count("audit_log", "action = 'staff.mfa_reset' AND actor_id = 'system' AND target_id = $1", opID); n != 1 {
				t.Errorf("system staff.mfa_reset audit entries = %d", n)
			}
			if _, err := e.svc.ResetMFAByEmail(t.Context(), "ghost@example.com"); err == nil {
				t.Errorf("an unknown address was reset")
			}
		})
	})
}
