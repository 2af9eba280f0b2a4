package accounts

import (
	"context"
	"fmt"
	"mercato/internal/platform/module"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web/webtest"
)

// staffWorld is an env with an admin, an operator, a customer-service agent
// and a customer, each signed in.
type staffWorld struct {
	*env
	adminID, opID, csID, custID string
	admin, op, cs, cust         string // tokens
	opNow                       string // the operator's token after a disable
}

func newStaffWorld(t *testing.T, e *env) *staffWorld {
	t.Helper()
	created, err := e.svc.BootstrapAdmin(context.Background(), "root@example.com", goodPassword)
	if err != nil || !created {
		t.Fatalf("BootstrapAdmin = %v, %v; want created", created, err)
	}
	if again, err := e.svc.BootstrapAdmin(context.Background(), "other@example.com", goodPassword); err != nil || again {
		t.Fatalf("second BootstrapAdmin = %v, %v; want nothing created", again, err)
	}
	w := &staffWorld{env: e}
	w.admin = e.login("root@example.com", goodPassword)
	w.adminID = e.as(w.admin).Do("GET", "/api/v1/me", nil).Field("id").(string)
	w.opID, w.op = e.staff("op@example.com", RoleOperator)
	w.csID, w.cs = e.staff("cs@example.com", RoleCustomerService)
	w.custID, w.cust = e.register("cust@example.com")
	return w
}

func TestPermissions(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		w := newStaffWorld(t, e)
		type call struct{ method, path string }
		calls := []call{
			{"GET", "/api/v1/admin/staff"},
			{"GET", "/api/v1/admin/customers"},
			{"GET", "/api/v1/admin/customers/" + w.custID},
		}
		tests := []struct {
			who   string
			token string
			want  []int // per call
		}{
			{"anonymous", "", []int{401, 401, 401}},
			{"customer", w.cust, []int{403, 403, 403}},
			{"operator", w.op, []int{403, 200, 200}},
			{"customer service", w.cs, []int{403, 200, 200}},
			{"admin", w.admin, []int{200, 200, 200}},
		}
		for _, tc := range tests {
			t.Run(tc.who, func(t *testing.T) {
				c := e.c
				if tc.token != "" {
					c = e.as(tc.token)
				}
				for i, cl := range calls {
					r := c.Do(cl.method, cl.path, nil)
					if r.Status != tc.want[i] {
						t.Errorf("%s %s = %d, want %d", cl.method, cl.path, r.Status, tc.want[i])
					}
					if r.Status >= 400 {
						webtest.AssertProblem(t, r, tc.want[i], map[int]string{401: "unauthorized", 403: "forbidden"}[tc.want[i]])
					}
				}
			})
		}
		t.Run("operator may not erase customers", func(t *testing.T) {
			webtest.AssertProblem(t, e.as(w.op).Do("POST", "/api/v1/admin/customers/"+w.custID+"/erase", nil), 403, "forbidden")
		})
	})
}

func TestPermissionTable(t *testing.T) {
	perms := append([]module.Permission{
		{Name: "catalog.write", Roles: []string{RoleOperator}},
		{Name: "orders.refund", Roles: []string{RoleCustomerService, RoleCustomer, RoleChannel, "wizard"}},
	}, Permissions...)
	table := newRoleTable(perms)
	tests := []struct {
		role string
		want []string
	}{
		{RoleAdmin, []string{"catalog.write", PermCustomersMFA, PermCustomersRead, PermCustomersWrite, "orders.refund", PermStaffManage}},
		{RoleOperator, []string{"catalog.write", PermCustomersRead}},
		{RoleCustomerService, []string{PermCustomersMFA, PermCustomersRead, PermCustomersWrite, "orders.refund"}},
		{RoleCustomer, nil}, // a definition cannot grant a customer or a channel a staff permission
		{RoleChannel, nil},
		{"wizard", nil},
	}
	for _, tc := range tests {
		t.Run(tc.role, func(t *testing.T) {
			var got []string
			for _, p := range perms {
				if table.allows([]string{tc.role}, p.Name) {
					got = append(got, p.Name)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s may %v, want %v", tc.role, got, tc.want)
			}
		})
	}
}

func TestStaffManagement(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		w := newStaffWorld(t, e)
		admin := e.as(w.admin)
		var newID string

		t.Run("create", func(t *testing.T) {
			r := admin.Do("POST", "/api/v1/admin/staff", map[string]any{"email": "New@Example.com", "name": "Nina",
				"password": goodPassword, "roles": []string{"operator", "customer_service", "operator"}})
			r.WantStatus(t, http.StatusCreated)
			var u StaffUser
			r.Decode(t, &u)
			newID = u.ID
			if u.Email != "new@example.com" || !slices.Equal(u.Roles, []string{"customer_service", "operator"}) || u.Disabled {
				t.Errorf("created %+v", u)
			}
			e.login("new@example.com", goodPassword)
		})
		t.Run("list", func(t *testing.T) {
			r := admin.Do("GET", "/api/v1/admin/staff?limit=2", nil)
			r.WantStatus(t, http.StatusOK)
			var p Page[StaffUser]
			r.Decode(t, &p)
			if len(p.Items) != 2 || p.NextCursor == "" || p.Items[0].ID != newID {
				t.Fatalf("first page = %s", r.Body)
			}
			var all []string
			for cur := ""; ; {
				var p Page[StaffUser]
				admin.Do("GET", "/api/v1/admin/staff?limit=2&cursor="+cur, nil).Decode(t, &p)
				for _, u := range p.Items {
					all = append(all, u.Email)
				}
				if cur = p.NextCursor; cur == "" {
					break
				}
			}
			if len(all) != 4 || slices.Contains(all, "cust@example.com") {
				t.Errorf("staff = %v, want the 4 staff members and no customer", all)
			}
		})

		failures := []struct {
			name, method, path string
			body               any
			status             int
			code, field        string
		}{
			{"duplicate e-mail", "POST", "/api/v1/admin/staff", map[string]any{"email": "OP@example.com", "name": "X", "password": goodPassword, "roles": []string{"operator"}}, 409, "email_taken", "email"},
			{"customer role", "POST", "/api/v1/admin/staff", map[string]any{"email": "x@example.com", "name": "X", "password": goodPassword, "roles": []string{"customer"}}, 422, "validation_failed", "roles"},
			{"unknown role", "POST", "/api/v1/admin/staff", map[string]any{"email": "x@example.com", "name": "X", "password": goodPassword, "roles": []string{"wizard"}}, 422, "validation_failed", "roles"},
			{"no role", "POST", "/api/v1/admin/staff", map[string]any{"email": "x@example.com", "name": "X", "password": goodPassword, "roles": []string{}}, 422, "validation_failed", "roles"},
			{"weak password", "POST", "/api/v1/admin/staff", map[string]any{"email": "x@example.com", "name": "X", "password": "admin12345", "roles": []string{"operator"}}, 422, "validation_failed", "password"},
			{"no name", "POST", "/api/v1/admin/staff", map[string]any{"email": "x@example.com", "name": " ", "password": goodPassword, "roles": []string{"operator"}}, 422, "validation_failed", "name"},
			{"disable an unknown id", "POST", "/api/v1/admin/staff/nope/disable", nil, 404, "not_found", ""},
			{"disable a customer", "POST", "/api/v1/admin/staff/" + w.custID + "/disable", nil, 404, "not_found", ""},
			{"disable the last admin", "POST", "/api/v1/admin/staff/" + w.adminID + "/disable", nil, 409, "conflict", ""},
			{"take admin from the last admin", "PUT", "/api/v1/admin/staff/" + w.adminID + "/roles", map[string]any{"roles": []string{"operator"}}, 409, "conflict", ""},
			{"give the customer role", "PUT", "/api/v1/admin/staff/" + w.opID + "/roles", map[string]any{"roles": []string{"customer"}}, 422, "validation_failed", "roles"},
			{"roles of a customer", "PUT", "/api/v1/admin/staff/" + w.custID + "/roles", map[string]any{"roles": []string{"operator"}}, 404, "not_found", ""},
		}
		for _, tc := range failures {
			t.Run(tc.name, func(t *testing.T) {
				before := e.snapshot()
				p := webtest.AssertProblem(t, admin.Do(tc.method, tc.path, tc.body), tc.status, tc.code)
				if tc.field != "" {
					webtest.AssertFieldError(t, p, tc.field)
				}
				if tc.status != 409 { // a 409 is recorded for idempotent replay; nothing else is
					e.assertUnchanged(before)
				} else if n, m := e.count("accounts_users", ""), before["accounts_users"]; n != m {
					t.Errorf("users %d → %d on a conflict", m, n)
				}
			})
		}

		t.Run("disable revokes and refuses; enable lets back in", func(t *testing.T) {
			opTok := e.login("op@example.com", goodPassword)
			r := admin.Do("POST", "/api/v1/admin/staff/"+w.opID+"/disable", nil)
			r.WantStatus(t, http.StatusOK)
			if r.Field("disabled") != true {
				t.Errorf("disable answered %s", r.Body)
			}
			webtest.AssertProblem(t, e.as(opTok).Do("GET", "/api/v1/me", nil), 401, "unauthorized")
			webtest.AssertProblem(t, e.loginAttempt("op@example.com", goodPassword), 401, "unauthorized")
			admin.Do("POST", "/api/v1/admin/staff/"+w.opID+"/enable", nil).WantStatus(t, http.StatusOK)
			webtest.AssertProblem(t, e.as(opTok).Do("GET", "/api/v1/me", nil), 401, "unauthorized") // revoked for good
			w.opNow = e.login("op@example.com", goodPassword)
		})
		t.Run("change roles", func(t *testing.T) {
			r := admin.Do("PUT", "/api/v1/admin/staff/"+w.opID+"/roles", map[string]any{"roles": []string{"admin"}})
			r.WantStatus(t, http.StatusOK)
			e.as(w.opNow).Do("GET", "/api/v1/admin/staff", nil).WantStatus(t, http.StatusOK) // roles are read per request
			admin.Do("PUT", "/api/v1/admin/staff/"+w.adminID+"/roles", map[string]any{"roles": []string{"operator"}}).WantStatus(t, http.StatusOK)
			webtest.AssertProblem(t, admin.Do("GET", "/api/v1/admin/staff", nil), 403, "forbidden")
		})
		t.Run("audit log", func(t *testing.T) {
			acts := e.auditActions()
			for _, want := range []string{"staff.created", "staff.disabled", "staff.enabled", "staff.roles_changed", "user.logged_in"} {
				if !slices.Contains(acts, want) {
					t.Errorf("audit log lacks %s: %v", want, acts)
				}
			}
			var actor, ip, before, after string
			err := e.db.Reader().QueryRow(`SELECT actor_id, ip, before_json, after_json FROM audit_log
				WHERE action = 'staff.disabled' AND target_id = $1`, w.opID).Scan(&actor, &ip, &before, &after)
			if err != nil {
				t.Fatal(err)
			}
			if actor != w.adminID || ip != "127.0.0.1" || !strings.Contains(before, `"disabled":false`) || !strings.Contains(after, `"disabled":true`) {
				t.Errorf("staff.disabled entry: actor %s ip %s before %s after %s", actor, ip, before, after)
			}
			if n := e.count("audit_log", "action = 'staff.created' AND actor_id = 'system'"); n != 3 {
				t.Errorf("%d staff.created entries by system (bootstrap, 2 CreateUser), want 3", n)
			}
		})
	})
}

func TestCustomerList(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		w := newStaffWorld(t, e)
		cs := e.as(w.cs)
		for i := range 24 {
			e.svc.CreateUser(context.Background(), fmt.Sprintf("c%02d@shop.example", i), goodPassword, fmt.Sprintf("Customer %02d", i), []string{RoleCustomer})
		}
		e.register("zed_100%@example.com")
		all := 26 // 24 + cust + zed

		t.Run("pages of 20 by default", func(t *testing.T) {
			var p1, p2 Page[Customer]
			cs.Do("GET", "/api/v1/admin/customers", nil).Decode(t, &p1)
			if len(p1.Items) != 20 || p1.NextCursor == "" {
				t.Fatalf("first page has %d items, cursor %q", len(p1.Items), p1.NextCursor)
			}
			r := cs.Do("GET", "/api/v1/admin/customers?cursor="+p1.NextCursor, nil)
			r.Decode(t, &p2)
			if len(p2.Items) != all-20 || p2.NextCursor != "" || strings.Contains(string(r.Body), "next_cursor") {
				t.Errorf("last page has %d items, cursor %q", len(p2.Items), p2.NextCursor)
			}
			if p1.Items[0].Email != "zed_100%@example.com" {
				t.Errorf("newest first: got %s first", p1.Items[0].Email)
			}
		})
		searches := []struct {
			q    string
			want int
		}{
			{"customer 0", 10}, {"CUSTOMER 1", 10}, {"shop.example", 24}, {"_100%", 1}, {"%", 1}, {"_", 1}, {"nobody", 0},
		}
		for _, tc := range searches {
			t.Run("q="+tc.q, func(t *testing.T) {
				r := cs.Do("GET", "/api/v1/admin/customers?limit=100&q="+urlQuery(tc.q), nil)
				r.WantStatus(t, http.StatusOK)
				var p Page[Customer]
				r.Decode(t, &p)
				if len(p.Items) != tc.want || p.Items == nil || !strings.Contains(string(r.Body), `"items":[`) {
					t.Errorf("q=%q: %d items, want %d: %s", tc.q, len(p.Items), tc.want, r.Body)
				}
			})
		}
		t.Run("limit is capped at 100", func(t *testing.T) {
			var p Page[Customer]
			cs.Do("GET", "/api/v1/admin/customers?limit=5000", nil).Decode(t, &p)
			if len(p.Items) != all {
				t.Errorf("limit=5000 gave %d items, want all %d", len(p.Items), all)
			}
		})
		for _, bad := range []string{"limit=abc", "limit=-1", "limit=0", "cursor=***", "cursor=" + strings.Repeat("QUFB", 30)} {
			t.Run(bad, func(t *testing.T) {
				webtest.AssertProblem(t, cs.Do("GET", "/api/v1/admin/customers?"+bad, nil), 422, "validation_failed")
			})
		}
		t.Run("one customer, with addresses", func(t *testing.T) {
			e.as(w.cust).Do("POST", "/api/v1/me/addresses", sampleAddress()).WantStatus(t, http.StatusCreated)
			r := cs.Do("GET", "/api/v1/admin/customers/"+w.custID, nil)
			r.WantStatus(t, http.StatusOK)
			var c Customer
			r.Decode(t, &c)
			if c.Email != "cust@example.com" || len(c.Addresses) != 1 || c.Addresses[0].City != "Lyon" {
				t.Errorf("customer = %+v", c)
			}
			webtest.AssertProblem(t, cs.Do("GET", "/api/v1/admin/customers/"+w.opID, nil), 404, "not_found")
			webtest.AssertProblem(t, cs.Do("GET", "/api/v1/admin/customers/nope", nil), 404, "not_found")
		})
	})
}

func urlQuery(s string) string {
	return strings.NewReplacer("%", "%25", " ", "+", "_", "%5F").Replace(s)
}

// Two admins disabling each other at once: exactly one wins, one admin stays.
func TestLastAdminRace(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		aID, aTok := e.staff("ada@example.com", RoleAdmin)
		bID, bTok := e.staff("bea@example.com", RoleAdmin)
		for round := range 5 {
			statuses := make(chan int, 2)
			var wg sync.WaitGroup
			for _, p := range [][2]string{{aTok, bID}, {bTok, aID}} {
				wg.Go(func() { statuses <- e.as(p[0]).Do("POST", "/api/v1/admin/staff/"+p[1]+"/disable", nil).Status })
			}
			wg.Wait()
			close(statuses)
			got := map[int]int{}
			for s := range statuses {
				got[s]++
			}
			// The loser is 409 (it saw no other admin) or 401 (its own token
			// was revoked by the winner before it was read).
			if got[200] != 1 || got[409]+got[401] != 1 {
				t.Fatalf("round %d: statuses %v, want one 200 and one 409 or 401", round, got)
			}
			if n := e.count("accounts_users", "disabled = 0 AND roles = 'admin'"); n != 1 {
				t.Fatalf("round %d: %d enabled admins, want 1", round, n)
			}
			// Re-enable the loser's victim and sign both in again.
			if err := e.db.InTx(t.Context(), func(tx *sqldb.Tx) error {
				_, err := tx.ExecContext(t.Context(), `UPDATE accounts_users SET disabled = 0`)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			aTok, bTok = e.login("ada@example.com", goodPassword), e.login("bea@example.com", goodPassword)
		}
	})
}

func TestBootstrapAdminOverACustomer(t *testing.T) {
	e := sqliteEnv(t, Config{})
	e.register("owner@example.com")
	created, err := e.svc.BootstrapAdmin(t.Context(), "OWNER@example.com", goodPassword)
	if created || errs.CodeOf(err) != errs.CodeEmailTaken {
		t.Errorf("BootstrapAdmin over a customer's address = %v, %v; want email_taken", created, err)
	}
	if _, err := e.svc.BootstrapAdmin(t.Context(), "root@example.com", "short"); !errs.Is(err, errs.Invalid) {
		t.Errorf("BootstrapAdmin with a weak password = %v, want Invalid", err)
	}
}

func TestPrune(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		_, tok := e.register("pru@example.com")
		e.login("pru@example.com", goodPassword)
		e.as(tok).Do("POST", "/api/v1/auth/logout", nil).WantStatus(t, http.StatusNoContent)
		e.loginAttempt("ghost@example.com", "wrong-password-1")
		e.resetMail("pru@example.com")
		if n, err := e.svc.Prune(t.Context()); err != nil || n != 0 {
			t.Fatalf("Prune at once = %d, %v; want nothing", n, err)
		}
		e.clock.Advance(25 * time.Hour)
		n, err := e.svc.Prune(t.Context())
		// the revoked token, the expired reset, the idle throttle rows
		// (ghost's pair and all-addresses rows, pru's all-addresses row); the
		// live session (30 days) and pru's known address (30 days) stay
		if err != nil || n != 5 {
			t.Errorf("Prune after 25 h = %d, %v; want 5", n, err)
		}
		if e.count("accounts_login_throttle", "email = 'pru@example.com' AND client <> '*'") != 1 {
			t.Errorf("the known address was pruned")
		}
		if e.count("accounts_tokens", "") != 1 {
			t.Errorf("the live session was pruned")
		}
	})
}
