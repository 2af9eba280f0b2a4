package accounts

import (
	"net/http"
	"testing"
	"time"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

// waitTrusted waits until e's token cache hears invalidations (at once on
// SQLite; on PostgreSQL once its LISTEN connection is up).
func (e *env) waitTrusted() { e.t.Helper(); waitTrusted(e.t, e.svc) }

// renameBehindItsBack changes a user's name in the database without the
// service, so only a cached answer still shows the old one.
func (e *env) renameBehindItsBack(id, name string) {
	e.t.Helper()
	if _, err := e.db.Writer().Exec(`UPDATE accounts_users SET name = $1 WHERE id = $2`, name, id); err != nil {
		e.t.Fatal(err)
	}
}

// Every change that can make a cached session wrong takes effect on the very
// next request: the cache is dropped when the change commits.
func TestTokenCacheInvalidatedByEveryChange(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		e.waitTrusted()
		_, admin := e.staff("boss@example.com", RoleAdmin)
		tests := []struct {
			name   string
			change func(id, tok string)
			check  func(t *testing.T, r *webtest.Response)
		}{
			{"logout", func(_, tok string) {
				e.as(tok).Do("POST", "/api/v1/auth/logout", nil).WantStatus(t, http.StatusNoContent)
			}, unauthorized},
			{"password change (other sessions)", func(id, _ string) {
				other := e.login(e.emailOf(id), goodPassword)
				e.as(other).Do("POST", "/api/v1/me/password", map[string]string{"current_password": goodPassword,
					"new_password": "a brand new passphrase"}).WantStatus(t, http.StatusNoContent)
			}, unauthorized},
			{"profile change", func(_, tok string) {
				e.as(tok).Do("PATCH", "/api/v1/me", map[string]string{"name": "Renamed"}).WantStatus(t, http.StatusOK)
			}, func(t *testing.T, r *webtest.Response) {
				r.WantStatus(t, http.StatusOK)
				if r.Field("name") != "Renamed" {
					t.Errorf("name = %v after the change", r.Field("name"))
				}
			}},
			{"erasure", func(_, tok string) {
				e.as(tok).Do("POST", "/api/v1/me/erase", map[string]string{"password": goodPassword}).WantStatus(t, http.StatusOK)
			}, unauthorized},
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				id, tok := e.register(string(rune('a'+i)) + "-cache@example.com")
				e.as(tok).Do("GET", "/api/v1/me", nil).WantStatus(t, http.StatusOK) // cached now
				e.renameBehindItsBack(id, "Stale")
				if r := e.as(tok).Do("GET", "/api/v1/me", nil); r.Field("name") == "Stale" {
					t.Fatalf("the second read was not served from the cache")
				}
				tc.change(id, tok)
				tc.check(t, e.as(tok).Do("GET", "/api/v1/me", nil))
			})
		}
		t.Run("staff disabled and roles changed", func(t *testing.T) {
			opID, op := e.staff("op-cache@example.com", RoleOperator)
			e.as(op).Do("GET", "/api/v1/admin/customers", nil).WantStatus(t, http.StatusOK)
			e.as(admin).Do("PUT", "/api/v1/admin/staff/"+opID+"/roles", map[string]any{"roles": []string{RoleAdmin}}).WantStatus(t, http.StatusOK)
			e.as(op).Do("GET", "/api/v1/admin/staff", nil).WantStatus(t, http.StatusOK) // staff.manage: admin now
			e.as(admin).Do("PUT", "/api/v1/admin/staff/"+opID+"/roles", map[string]any{"roles": []string{RoleCustomerService}}).WantStatus(t, http.StatusOK)
			webtest.AssertProblem(t, e.as(op).Do("GET", "/api/v1/admin/staff", nil), 403, "forbidden")
			e.as(admin).Do("POST", "/api/v1/admin/staff/"+opID+"/disable", nil).WantStatus(t, http.StatusOK)
			unauthorized(t, e.as(op).Do("GET", "/api/v1/me", nil))
		})
	})
}

func unauthorized(t *testing.T, r *webtest.Response) {
	t.Helper()
	webtest.AssertProblem(t, r, http.StatusUnauthorized, "unauthorized")
}

// emailOf reads a user's address.
func (e *env) emailOf(id string) string {
	e.t.Helper()
	u, err := e.svc.User(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.Email
}

// Two replicas on one PostgreSQL database: a change committed through one
// drops the other's cached sessions (LISTEN/NOTIFY), and a replica that does
// not listen does not cache at all.
func TestTokenCacheAcrossReplicas(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.Postgres, sources()...)
	a, b := newEnv(t, db, Config{}), newEnv(t, db, Config{})
	a.waitTrusted()
	b.waitTrusted()
	_, admin := a.staff("root@example.com", RoleAdmin)
	opID, op := a.staff("op@example.com", RoleOperator)
	a.as(op).Do("GET", "/api/v1/me", nil).WantStatus(t, http.StatusOK)
	a.renameBehindItsBack(opID, "Stale")
	if r := a.as(op).Do("GET", "/api/v1/me", nil); r.Field("name") == "Stale" {
		t.Fatal("replica a does not cache")
	}
	b.as(admin).Do("POST", "/api/v1/admin/staff/"+opID+"/disable", nil).WantStatus(t, http.StatusOK)
	deadline := time.Now().Add(10 * time.Second) // the notification's delivery, not a speed bound
	for a.as(op).Do("GET", "/api/v1/me", nil).Status != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("replica a still accepts a token that replica b's disable revoked")
		}
		time.Sleep(10 * time.Millisecond)
	}

	t.Run("not listening: no cache", func(t *testing.T) {
		a.svc.cache.setTrusted(func() bool { return false }) // as while its LISTEN connection is down
		id, tok := a.register("fresh@example.com")
		a.as(tok).Do("GET", "/api/v1/me", nil).WantStatus(t, http.StatusOK)
		a.renameBehindItsBack(id, "Changed")
		if r := a.as(tok).Do("GET", "/api/v1/me", nil); r.Field("name") != "Changed" {
			t.Errorf("an untrusted cache answered %v", r.Field("name"))
		}
	})
}

// A read that raced an invalidation does not put what it read back.
func TestTokenCacheEpoch(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newAuthCache(func() time.Time { return now }, func() bool { return true })
	_, _, epoch := c.get("h")
	c.forget("u1") // a change commits while the read is in flight
	c.put("h", authEntry{p: webPrincipal("u1")}, epoch)
	if _, ok, _ := c.get("h"); ok {
		t.Fatal("a read older than an invalidation was cached")
	}
	_, _, epoch = c.get("h")
	c.put("h", authEntry{p: webPrincipal("u1")}, epoch)
	if _, ok, _ := c.get("h"); !ok {
		t.Fatal("a fresh read was not cached")
	}
	now = now.Add(authCacheTTL)
	if _, ok, _ := c.get("h"); ok {
		t.Fatal("an entry outlived authCacheTTL")
	}
}

func webPrincipal(id string) web.Principal { return web.Principal{UserID: id} }
