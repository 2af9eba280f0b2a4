package accounts

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web/webtest"
)

// fakeOrders is another module's privacy part: it exports one order and
// records the erasures it was asked for (with the unit's tx).
type fakeOrders struct {
	mu     sync.Mutex
	erased []string
}

func (f *fakeOrders) privacy() module.Privacy {
	return module.Privacy{
		Section: "orders",
		Export: func(_ context.Context, userID string) (any, error) {
			return []map[string]string{{"id": "o1", "customer_id": userID}}, nil
		},
		Erase: func(_ context.Context, tx *sqldb.Tx, userID string) error {
			if tx == nil {
				return errors.New("no unit transaction")
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			f.erased = append(f.erased, userID)
			return nil
		},
	}
}

// personalFragments fails the test when any text column of any accounts
// table still holds one of frags.
func (e *env) assertNoneHolds(frags ...string) {
	e.t.Helper()
	for _, table := range allTables[:6] {
		rows, err := e.db.Reader().Query("SELECT * FROM " + table)
		if err != nil {
			e.t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.t.Fatal(err)
			}
			for i, v := range vals {
				for _, f := range frags {
					if strings.Contains(strings.ToLower(v.String), strings.ToLower(f)) {
						e.t.Errorf("%s.%s still holds %q: %q", table, cols[i], f, v.String)
					}
				}
			}
		}
		rows.Close()
	}
}

func TestExportAndErase(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		orders := &fakeOrders{}
		p := orders.privacy()
		e.svc.UseModules([]module.Module{e.svc.Module(), {Name: "orders", Privacy: &p}})
		id, tok := e.register("dana.privacy@example.com")
		dana := e.as(tok)
		dana.Do("PATCH", "/api/v1/me", map[string]string{"name": "Dana Quintessa"}).WantStatus(t, http.StatusOK)
		dana.Do("POST", "/api/v1/me/addresses", with(sampleAddress(), "name", "Dana Quintessa", "line1", "77 Quintessa Lane")).WantStatus(t, http.StatusCreated)
		e.enrol(tok)
		e.c.Do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "dana.privacy@example.com"}).WantStatus(t, http.StatusAccepted)
		<-e.mail.ch
		webtest.AssertProblem(t, e.loginAttempt("dana.privacy@example.com", "a-wrong-password"), 401, "unauthorized") // a throttle row
		if e.failures("dana.privacy@example.com") != 1 || e.count("accounts_password_resets", "") != 1 {
			t.Fatalf("setup: throttle/reset rows missing")
		}

		t.Run("export", func(t *testing.T) {
			r := dana.Do("GET", "/api/v1/me/export", nil)
			r.WantStatus(t, http.StatusOK)
			if r.Field("profile.email") != "dana.privacy@example.com" || r.Field("profile.name") != "Dana Quintessa" ||
				r.Field("profile.mfa_enabled") != true || r.Field("addresses.0.line1") != "77 Quintessa Lane" ||
				r.Field("orders.0.customer_id") != id || r.Field("exported_at") == nil {
				t.Errorf("export = %s", r.Body)
			}
			// The throttle's memory of the addresses that tried to sign in is
			// personal data too (the wrong password above came from here).
			if r.Field("login_addresses.0.address") != "127.0.0.1" || r.Field("login_addresses.0.failures") == nil {
				t.Errorf("export lacks the login addresses: %s", r.Body)
			}
		})
		t.Run("wrong password", func(t *testing.T) {
			users := e.count("accounts_users", "erased_at = 0")
			p := webtest.AssertProblem(t, dana.Do("POST", "/api/v1/me/erase", map[string]string{"password": "not-my-password"}), 422, "validation_failed")
			webtest.AssertFieldError(t, p, "password")
			if e.count("accounts_users", "erased_at = 0") != users || e.count("outbox", "type = 'customer.erased'") != 0 {
				t.Errorf("a refused erasure changed something")
			}
			if len(orders.erased) != 0 {
				t.Errorf("a refused erasure erased the orders module's data: %v", orders.erased)
			}
		})
		t.Run("staff cannot erase themselves", func(t *testing.T) {
			_, staffTok := e.staff("stella@example.com", RoleOperator)
			webtest.AssertProblem(t, e.as(staffTok).Do("POST", "/api/v1/me/erase", map[string]string{"password": goodPassword}), 403, "forbidden")
		})
		t.Run("erase", func(t *testing.T) {
			r := dana.Do("POST", "/api/v1/me/erase", map[string]string{"password": goodPassword})
			r.WantStatus(t, http.StatusOK)
			if r.Field("id") != id || r.Field("erased") != true {
				t.Errorf("erase = %s", r.Body)
			}
			orders.mu.Lock()
			if !slices.Equal(orders.erased, []string{id}) {
				t.Errorf("the orders module was asked to erase %v, want [%s]", orders.erased, id)
			}
			orders.mu.Unlock()
			e.assertNoneHolds("dana", "quintessa", "privacy@")
			var email, name, hash, secret, pending string
			if err := e.db.Reader().QueryRow(`SELECT email, name, password_hash, mfa_secret, mfa_pending FROM accounts_users WHERE id = $1`, id).
				Scan(&email, &name, &hash, &secret, &pending); err != nil {
				t.Fatalf("the user row is gone: %v", err)
			}
			if email != "erased-"+id+"@invalid" || name != "" || hash != "" || secret != "" || pending != "" {
				t.Errorf("erased row: %q %q %q %q %q", email, name, hash, secret, pending)
			}
			for _, table := range []string{"accounts_addresses", "accounts_tokens", "accounts_recovery_codes", "accounts_password_resets"} {
				if n := e.count(table, "user_id = $1", id); n != 0 {
					t.Errorf("%s keeps %d rows of the erased user", table, n)
				}
			}
			if n := e.count("accounts_login_throttle", "email = 'dana.privacy@example.com'"); n != 0 {
				t.Errorf("the throttle keeps the erased address")
			}
			if n := e.count("outbox", "type = 'customer.erased' AND aggregate_id = $1", id); n != 1 {
				t.Errorf("customer.erased events = %d", n)
			}
			webtest.AssertProblem(t, dana.Do("GET", "/api/v1/me", nil), 401, "unauthorized")
			webtest.AssertProblem(t, e.loginAttempt("dana.privacy@example.com", goodPassword), 401, "unauthorized")
			e.register("dana.privacy@example.com") // the address is free again
		})
		t.Run("staff erase a customer", func(t *testing.T) {
			w := newStaffWorld(t, e)
			cs := e.as(w.cs)
			r := cs.Do("POST", "/api/v1/admin/customers/"+w.custID+"/erase", nil)
			r.WantStatus(t, http.StatusOK)
			var actor, before, after string
			if err := e.db.Reader().QueryRow(`SELECT actor_id, before_json, after_json FROM audit_log WHERE action = 'customer.erased' AND target_id = $1`,
				w.custID).Scan(&actor, &before, &after); err != nil || actor != w.csID {
				t.Errorf("audit of the erasure: actor %q, %v", actor, err)
			}
			if strings.Contains(before+after, "cust@") {
				t.Errorf("the audit entry keeps personal data: %s %s", before, after)
			}
			cs.Do("POST", "/api/v1/admin/customers/"+w.custID+"/erase", nil).WantStatus(t, http.StatusOK) // again: no change
			if n := e.count("outbox", "type = 'customer.erased' AND aggregate_id = $1", w.custID); n != 1 {
				t.Errorf("erasing twice emitted %d events", n)
			}
			webtest.AssertProblem(t, cs.Do("POST", "/api/v1/admin/customers/"+w.opID+"/erase", nil), 404, "not_found")
			var c Customer
			cs.Do("GET", "/api/v1/admin/customers/"+w.custID, nil).Decode(t, &c)
			if !c.Erased || c.Name != "" || !strings.HasPrefix(c.Email, "erased-") {
				t.Errorf("erased customer as staff see it: %+v", c)
			}
		})
	})
}
