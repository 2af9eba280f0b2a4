package accounts

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web/webtest"
)

func TestRegisterAndLogin(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		r := e.c.Do("POST", "/api/v1/auth/register", map[string]string{
			"email": "  Alice@Example.COM ", "password": goodPassword, "name": "Alice"})
		r.WantStatus(t, http.StatusCreated)
		var reg AuthResponse
		r.Decode(t, &reg)
		if reg.User.Email != "alice@example.com" || reg.User.Name != "Alice" || !slices.Equal(reg.User.Roles, []string{"customer"}) {
			t.Errorf("registered user = %+v", reg.User)
		}
		if !strings.HasPrefix(reg.Token, "mct_") || len(reg.Token) != 47 {
			t.Errorf("token %q is not mct_ + 43 base64url characters", reg.Token)
		}
		if n := e.count("outbox", "type = 'customer.registered' AND aggregate_id = $1", reg.User.ID); n != 1 {
			t.Errorf("customer.registered events = %d, want 1", n)
		}
		if n := e.count("accounts_tokens", "token_hash = $1", hashToken(reg.Token)); n != 1 {
			t.Errorf("the token's hash is stored %d times, want 1", n)
		}
		if n := e.count("accounts_tokens", "token_hash = $1", reg.Token); n != 0 {
			t.Errorf("the plain token is stored")
		}

		me := e.as(reg.Token).Do("GET", "/api/v1/me", nil)
		me.WantStatus(t, http.StatusOK)
		var u User
		me.Decode(t, &u)
		if u.ID != reg.User.ID || u.Email != "alice@example.com" {
			t.Errorf("GET /me = %+v", u)
		}

		login := e.c.Do("POST", "/api/v1/auth/login", map[string]string{"email": "ALICE@example.com", "password": goodPassword})
		login.WantStatus(t, http.StatusOK)
		if login.Field("user.id") != reg.User.ID || login.Field("token") == reg.Token {
			t.Errorf("login = %s", login.Body)
		}

		tests := []struct {
			name   string
			body   any
			status int
			code   string
			field  string
		}{
			{"duplicate e-mail", map[string]string{"email": "alice@example.com", "password": goodPassword, "name": "A"}, 409, "email_taken", "email"},
			{"duplicate e-mail in another case", map[string]string{"email": " ALICE@EXAMPLE.com", "password": goodPassword, "name": "A"}, 409, "email_taken", "email"},
			{"short password", map[string]string{"email": "bob@example.com", "password": "short1!", "name": "Bob"}, 422, "validation_failed", "password"},
			{"common password", map[string]string{"email": "bob@example.com", "password": "Password123!", "name": "Bob"}, 422, "validation_failed", "password"},
			{"common password in leetspeak", map[string]string{"email": "bob@example.com", "password": "P@ssw0rd2024", "name": "Bob"}, 422, "validation_failed", "password"},
			{"malformed e-mail", map[string]string{"email": "bob-at-example.com", "password": goodPassword, "name": "Bob"}, 422, "validation_failed", "email"},
			{"e-mail with a display name", map[string]string{"email": "Bob <bob@example.com>", "password": goodPassword, "name": "Bob"}, 422, "validation_failed", "email"},
			{"e-mail without a dotted domain", map[string]string{"email": "bob@localhost", "password": goodPassword, "name": "Bob"}, 422, "validation_failed", "email"},
			{"unknown field", map[string]any{"email": "bob@example.com", "password": goodPassword, "name": "Bob", "role": "admin"}, 400, "malformed_request", "role"},
			{"empty body", "", 400, "malformed_request", ""},
			{"not JSON", "{email", 400, "malformed_request", ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := e.snapshot()
				r := e.c.Do("POST", "/api/v1/auth/register", tc.body)
				p := webtest.AssertProblem(t, r, tc.status, tc.code)
				if tc.field != "" {
					webtest.AssertFieldError(t, p, tc.field)
				}
				e.assertUnchanged(before)
			})
		}
	})
}

func TestLoginFailuresLookAlike(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		e.register("carol@example.com")
		e.svc.CreateUser(t.Context(), "dora@example.com", goodPassword, "Dora", []string{RoleOperator})
		if _, err := e.svc.setDisabledByEmail(t, "dora@example.com"); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			body map[string]string
		}{
			{"unknown e-mail", map[string]string{"email": "nobody@example.com", "password": goodPassword}},
			{"wrong password", map[string]string{"email": "carol@example.com", "password": goodPassword + "x"}},
			{"disabled staff", map[string]string{"email": "dora@example.com", "password": goodPassword}},
		}
		var details []string
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := e.count("accounts_tokens", "")
				r := e.c.Do("POST", "/api/v1/auth/login", tc.body)
				p := webtest.AssertProblem(t, r, 401, "unauthorized")
				details = append(details, p.Detail)
				if n := e.count("accounts_tokens", ""); n != before {
					t.Errorf("a failed login stored a token")
				}
			})
		}
		if len(details) == 3 && (details[0] != details[1] || details[1] != details[2]) {
			t.Errorf("the failures are told apart: %q", details)
		}
		t.Run("missing fields", func(t *testing.T) {
			before := e.snapshot()
			p := webtest.AssertProblem(t, e.c.Do("POST", "/api/v1/auth/login", map[string]string{"email": ""}), 422, "validation_failed")
			webtest.AssertFieldError(t, p, "email")
			webtest.AssertFieldError(t, p, "password")
			e.assertUnchanged(before)
		})
	})
}

// setDisabledByEmail disables the staff member with email (test helper).
func (s *Service) setDisabledByEmail(t *testing.T, email string) (StaffUser, error) {
	a, err := userByEmail(t.Context(), s.db.Reader(), email)
	if err != nil {
		return StaffUser{}, err
	}
	var u StaffUser
	err = s.db.InTx(t.Context(), func(tx *sqldb.Tx) error {
		u, err = s.setDisabled(t.Context(), tx, systemActor, a.ID, true)
		return err
	})
	return u, err
}

func TestTokens(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		_, tok := e.register("erin@example.com")
		_, staffTok := e.staff("sam@example.com", RoleOperator)
		_, other := e.register("frank@example.com")

		t.Run("missing, malformed and unknown tokens", func(t *testing.T) {
			for _, h := range []string{"", "Bearer ", "Bearer garbage", "Basic dXNlcjpwYXNz",
				"Bearer mct_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Bearer " + tok + "x"} {
				var r *webtest.Response
				if h == "" {
					r = e.c.Do("GET", "/api/v1/me", nil)
				} else {
					r = e.c.Do("GET", "/api/v1/me", nil, "Authorization: "+h)
				}
				webtest.AssertProblem(t, r, 401, "unauthorized")
			}
		})
		t.Run("session cookie", func(t *testing.T) {
			r := e.c.Do("GET", "/api/v1/me", nil, "Cookie: "+CookieName+"="+tok)
			r.WantStatus(t, http.StatusOK)
			if r.Field("email") != "erin@example.com" {
				t.Errorf("cookie session = %s", r.Body)
			}
		})
		t.Run("customer on a staff route", func(t *testing.T) {
			webtest.AssertProblem(t, e.as(tok).Do("GET", "/api/v1/admin/customers", nil), 403, "forbidden")
			webtest.AssertProblem(t, e.as(staffTok).Do("GET", "/api/v1/admin/staff", nil), 403, "forbidden")
		})
		t.Run("logout revokes only that token", func(t *testing.T) {
			second := e.login("erin@example.com", goodPassword)
			r := e.as(second).Do("POST", "/api/v1/auth/logout", nil, "Cookie: "+CookieName+"="+second)
			r.WantStatus(t, http.StatusNoContent)
			if c := r.Header.Get("Set-Cookie"); !strings.Contains(c, CookieName+"=;") || !strings.Contains(c, "Max-Age=0") {
				t.Errorf("logout with a cookie does not clear it: %q", c)
			}
			webtest.AssertProblem(t, e.as(second).Do("GET", "/api/v1/me", nil), 401, "unauthorized")
			webtest.AssertProblem(t, e.c.Do("GET", "/api/v1/me", nil, "Cookie: "+CookieName+"="+second), 401, "unauthorized")
			e.as(tok).Do("GET", "/api/v1/me", nil).WantStatus(t, http.StatusOK)
		})
		t.Run("expiry: staff after 12 h, customers after 30 days", func(t *testing.T) {
			e.as(staffTok).Do("GET", "/api/v1/me", nil).WantStatus(t, http.StatusOK)
			e.clock.Advance(12*time.Hour + time.Second)
			webtest.AssertProblem(t, e.as(staffTok).Do("GET", "/api/v1/me", nil), 401, "unauthorized")
			e.as(other).Do("GET", "/api/v1/me", nil).WantStatus(t, http.StatusOK)
			e.clock.Advance(30 * 24 * time.Hour)
			webtest.AssertProblem(t, e.as(other).Do("GET", "/api/v1/me", nil), 401, "unauthorized")
		})
	})
}

func TestSessionCookie(t *testing.T) {
	tests := []struct {
		name   string
		tls    bool
		secure bool
	}{
		{"plain HTTP", false, false},
		{"TLS", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://shop.example/", nil)
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			SetSessionCookie(w, r, "mct_x", time.Now().Add(time.Hour))
			c := w.Header().Get("Set-Cookie")
			for _, want := range []string{CookieName + "=mct_x", "HttpOnly", "SameSite=Lax", "Path=/"} {
				if !strings.Contains(c, want) {
					t.Errorf("cookie %q lacks %q", c, want)
				}
			}
			if strings.Contains(c, "Secure") != tc.secure {
				t.Errorf("cookie %q: Secure should be %v", c, tc.secure)
			}
		})
	}
}

// Every route that is not public answers 401 without a token, and every
// admin route 403 to a customer, with nothing written.
func TestEveryRouteGuarded(t *testing.T) {
	e := sqliteEnv(t, Config{})
	_, tok := e.register("guard@example.com")
	for _, r := range e.svc.Routes() {
		if r.Access.IsPublic() {
			continue
		}
		path := strings.ReplaceAll(r.Path, "{id}", "x")
		t.Run(r.Pattern(), func(t *testing.T) {
			before := e.snapshot()
			webtest.AssertProblem(t, e.c.Do(r.Method, path, "{}"), 401, "unauthorized")
			if r.Access.Perm() != "" {
				webtest.AssertProblem(t, e.as(tok).Do(r.Method, path, "{}"), 403, "forbidden")
			}
			e.assertUnchanged(before)
		})
	}
}

func TestProfile(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		_, tok := e.register("pat@example.com")
		pat := e.as(tok)
		r := pat.Do("PATCH", "/api/v1/me", map[string]string{"name": "  Pat Doe "})
		r.WantStatus(t, http.StatusOK)
		if r.Field("name") != "Pat Doe" || r.Field("email") != "pat@example.com" {
			t.Errorf("PATCH /me = %s", r.Body)
		}
		pat.Do("PATCH", "/api/v1/me", map[string]string{}).WantStatus(t, http.StatusOK) // nothing to change
		failures := []struct {
			name   string
			body   any
			status int
			code   string
		}{
			{"name too long", map[string]string{"name": strings.Repeat("n", 201)}, 422, "validation_failed"},
			{"control characters", map[string]string{"name": "Pat\x00Doe"}, 422, "validation_failed"},
			{"e-mail is not editable here", map[string]string{"email": "x@example.com"}, 400, "malformed_request"},
			{"wrong type", map[string]any{"name": 42}, 422, "validation_failed"},
		}
		for _, tc := range failures {
			t.Run(tc.name, func(t *testing.T) {
				before := e.snapshot()
				webtest.AssertProblem(t, pat.Do("PATCH", "/api/v1/me", tc.body), tc.status, tc.code)
				e.assertUnchanged(before)
			})
		}
		if got := pat.Do("GET", "/api/v1/me", nil).Field("name"); got != "Pat Doe" {
			t.Errorf("name after failed updates = %v", got)
		}
	})
}
