package webhooks

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web/webtest"
)

// ssrfResolver resolves the table's host names.
var ssrfResolver = fakeResolver{
	"loopback.example": {"127.0.0.1"},
	"mixed.example":    {"93.184.216.34", "10.1.2.3"},
	"public.example":   {"93.184.216.34"},
}

// Non-public addresses are refused at registration (422 naming url) and at
// dial time; a public one is accepted (nothing is sent to it).
func TestSSRFGuard(t *testing.T) {
	hosts := []struct{ name, url string }{
		{"ipv4 loopback", "http://127.0.0.1/hook"},
		{"ipv6 loopback", "http://[::1]/hook"},
		{"10/8", "https://10.0.0.1/hook"},
		{"172.16/12", "https://172.16.5.4/hook"},
		{"192.168/16", "https://192.168.1.1:8443/hook"},
		{"169.254/16 (cloud metadata)", "http://169.254.169.254/latest/meta-data"},
		{"fc00::/7", "https://[fd12:3456::1]/hook"},
		{"ipv4-mapped loopback", "http://[::ffff:127.0.0.1]/hook"},
		{"unspecified", "http://0.0.0.0/hook"},
		{"hostname resolving to loopback", "https://loopback.example/hook"},
		{"hostname with one private answer", "https://mixed.example/hook"},
	}
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		e := newEnv(t, db, Config{Resolver: ssrfResolver})
		for _, h := range hosts {
			t.Run(h.name, func(t *testing.T) {
				r := e.op.Do("POST", "/api/v1/admin/webhooks", map[string]any{"url": h.url, "events": []string{"*"}})
				webtest.AssertFieldError(t, webtest.AssertProblem(t, r, http.StatusUnprocessableEntity, "validation_failed"), "url")
			})
		}
		e.op.Do("POST", "/api/v1/admin/webhooks", map[string]any{"url": "https://public.example/hook",
			"events": []string{"*"}}).WantStatus(t, http.StatusCreated)
		if n := sqldbtest.Count(t, db, `SELECT count(*) FROM webhooks_endpoints`); n != 1 {
			t.Fatalf("%d endpoints, want 1", n)
		}
	}, sources()...)

	// At dial time, whatever the URL resolved to at registration.
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	g := &Guard{Resolver: ssrfResolver}
	for _, addr := range []string{"127.0.0.1", "[::1]", "10.0.0.1", "172.16.0.1", "192.168.0.1", "169.254.169.254",
		"[fc00::1]", "loopback.example", "mixed.example"} {
		if _, err := g.DialContext(context.Background(), "tcp", addr+":"+port); !errors.Is(err, ErrPrivateAddress) {
			t.Errorf("dial %s: %v, want ErrPrivateAddress", addr, err)
		}
	}
	// The dialer's Control refuses what a resolver would let slip.
	if err := g.control("tcp", "127.0.0.1:"+port, nil); !errors.Is(err, ErrPrivateAddress) {
		t.Errorf("control: %v", err)
	}
	// --webhook-allow-private lets loopback through.
	open := &Guard{AllowPrivate: true, Resolver: ssrfResolver}
	c, err := open.DialContext(context.Background(), "tcp", "loopback.example:"+port)
	if err != nil {
		t.Fatalf("allowed dial: %v", err)
	}
	c.Close()
}

// A redirect is not followed: it is a failed attempt.
func TestRedirectIsFailure(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		target := newReceiver(t, e.clock.Now)
		rc := newReceiver(t, e.clock.Now)
		rc.answer = func(int, received) (int, http.Header) {
			return http.StatusFound, http.Header{"Location": {target.URL()}}
		}
		c := e.register(rc.URL(), []string{"*"}, false)
		ev := e.emit("order.paid", "o1")[0]
		e.flush()
		if st, n, _ := e.delivery(c.ID, ev.ID); st != "pending" || n != 1 || len(target.requests()) != 0 {
			t.Fatalf("after a 302: %s after %d tries, redirect target got %d", st, n, len(target.requests()))
		}
	})
}

// Registration and changes are validated: 422 with the field, 400 for
// unknown fields, 403 without the permission, 404 for a missing endpoint.
func TestEndpointValidation(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		cases := []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"unknown event type", map[string]any{"url": "http://127.0.0.1/h", "events": []string{"order.exploded"}}, "events.0"},
			{"pattern matching nothing", map[string]any{"url": "http://127.0.0.1/h", "events": []string{"parcel.*"}}, "events.0"},
			{"malformed pattern", map[string]any{"url": "http://127.0.0.1/h", "events": []string{"order"}}, "events.0"},
			{"no events", map[string]any{"url": "http://127.0.0.1/h", "events": []string{}}, "events"},
			{"no url", map[string]any{"events": []string{"*"}}, "url"},
			{"not http", map[string]any{"url": "ftp://127.0.0.1/h", "events": []string{"*"}}, "url"},
			{"user info", map[string]any{"url": "http://u:p@127.0.0.1/h", "events": []string{"*"}}, "url"},
			{"url too long", map[string]any{"url": "http://127.0.0.1/" + strings.Repeat("a", 2100), "events": []string{"*"}}, "url"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := e.op.Do("POST", "/api/v1/admin/webhooks", tc.body)
				webtest.AssertFieldError(t, webtest.AssertProblem(t, r, http.StatusUnprocessableEntity, "validation_failed"), tc.field)
			})
		}
		e.op.Do("POST", "/api/v1/admin/webhooks", map[string]any{"url": "http://127.0.0.1/h", "events": []string{"*"},
			"colour": "red"}).WantStatus(t, http.StatusBadRequest)
		e.cs.Do("POST", "/api/v1/admin/webhooks", map[string]any{"url": "http://127.0.0.1/h",
			"events": []string{"*"}}).WantStatus(t, http.StatusForbidden)
		e.cs.Do("GET", "/api/v1/admin/webhooks", nil).WantStatus(t, http.StatusForbidden)
		e.op.Do("GET", "/api/v1/admin/webhooks/nope", nil).WantStatus(t, http.StatusNotFound)
		e.op.Do("PATCH", "/api/v1/admin/webhooks/nope", map[string]any{"enabled": false}).WantStatus(t, http.StatusNotFound)
		e.op.Do("DELETE", "/api/v1/admin/webhooks/nope", nil).WantStatus(t, http.StatusNotFound)

		c := e.register("http://127.0.0.1:9/h", []string{"order.*", "product.created"}, false)
		r := e.op.Do("PATCH", "/api/v1/admin/webhooks/"+c.ID, map[string]any{"events": []string{"order.nope"}})
		webtest.AssertFieldError(t, webtest.AssertProblem(t, r, http.StatusUnprocessableEntity, "validation_failed"), "events.0")
		r = e.op.Do("PATCH", "/api/v1/admin/webhooks/"+c.ID, map[string]any{"description": "ERP", "fifo": true, "enabled": false})
		r.WantStatus(t, http.StatusOK)
		if r.Field("description") != "ERP" || r.Field("fifo") != true || r.Field("disabled_reason") != "staff" {
			t.Fatalf("patched: %s", r.Body)
		}
		var n int
		db := e.db.Reader()
		db.QueryRow(`SELECT count(*) FROM audit_log WHERE target_id = $1`, c.ID).Scan(&n)
		if n != 2 {
			t.Fatalf("%d audit entries for the endpoint, want 2 (created, updated)", n)
		}
		e.op.Do("DELETE", "/api/v1/admin/webhooks/"+c.ID, nil).WantStatus(t, http.StatusNoContent)
		e.op.Do("GET", "/api/v1/admin/webhooks/"+c.ID, nil).WantStatus(t, http.StatusNotFound)
	})
}

// After a rotation both secrets sign (two v1 signatures) for the window,
// then only the new one.
func TestRotateSecret(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		rc := newReceiver(t, e.clock.Now)
		c := e.register(rc.URL(), []string{"order.*"}, false)
		r := e.op.Do("POST", "/api/v1/admin/webhooks/"+c.ID+"/rotate-secret", nil)
		r.WantStatus(t, http.StatusOK)
		var rot Rotated
		r.Decode(t, &rot)
		if rot.Secret == c.Secret || !rot.PreviousSecretExpiresAt.Equal(e.clock.Now().Add(24*time.Hour)) {
			t.Fatalf("rotation %+v", rot)
		}
		sqldbtest.AssertNoSecret(t, e.db, "webhooks_endpoints", []string{c.Secret, rot.Secret}, nil)
		e.emit("order.placed", "o1")
		e.flush()
		g := rc.requests()[0]
		if len(g.sigs) != 2 || !verify(c.Secret, g.id, g.ts, g.body, g.sigs, e.clock.Now()) ||
			!verify(rot.Secret, g.id, g.ts, g.body, g.sigs, e.clock.Now()) {
			t.Fatalf("during the window: signatures %v", g.sigs)
		}
		e.clock.Advance(24*time.Hour + time.Second)
		e.emit("order.placed", "o2")
		e.flush()
		g = rc.requests()[1]
		if len(g.sigs) != 1 || verify(c.Secret, g.id, g.ts, g.body, g.sigs, e.clock.Now()) ||
			!verify(rot.Secret, g.id, g.ts, g.body, g.sigs, e.clock.Now()) {
			t.Fatalf("after the window: signatures %v", g.sigs)
		}
	})
}

// "Send test event" delivers a webhook.test event whatever the filters;
// bulk replay sends the dead deliveries since a time again.
func TestSendTestAndBulkReplay(t *testing.T) {
	forEachEngine(t, Config{Schedule: []time.Duration{time.Second}}, func(t *testing.T, e *env) {
		rc := newReceiver(t, e.clock.Now)
		dead := true
		rc.answer = func(_ int, g received) (int, http.Header) {
			if dead && g.env.Type != TestEventType {
				return http.StatusBadGateway, nil
			}
			return http.StatusOK, nil
		}
		c := e.register(rc.URL(), []string{"order.paid"}, false)
		r := e.op.Do("POST", "/api/v1/admin/webhooks/"+c.ID+"/test", nil)
		r.WantStatus(t, http.StatusAccepted)
		e.flush()
		if got := rc.requests(); len(got) != 1 || got[0].env.Type != TestEventType || got[0].id != r.Field("event_id") {
			t.Fatalf("test event: %+v", got)
		}
		evs := e.emit("order.paid", "o1", "o2", "o3")
		e.flush()
		e.clock.Advance(2 * time.Second)
		e.flush()
		for _, ev := range evs {
			if st, _, _ := e.delivery(c.ID, ev.ID); st != "dead" {
				t.Fatalf("%s: %s, want dead", ev.ID, st)
			}
		}
		var st SyncStatus
		e.op.Do("GET", "/api/v1/admin/sync/webhooks", nil).Decode(t, &st)
		if len(st.Endpoints) != 1 || st.Endpoints[0].Dead != 3 || st.Endpoints[0].Pending != 0 {
			t.Fatalf("status %+v", st)
		}
		dead = false
		r = e.op.Do("POST", "/api/v1/admin/webhooks/"+c.ID+"/replay",
			map[string]any{"since": e.clock.Now().Add(time.Hour).Format(time.RFC3339)})
		if r.WantStatus(t, http.StatusOK); r.Field("replayed") != float64(0) {
			t.Fatalf("replay since the future: %v", r.Field("replayed"))
		}
		r = e.op.Do("POST", "/api/v1/admin/webhooks/"+c.ID+"/replay", map[string]any{})
		if r.WantStatus(t, http.StatusOK); r.Field("replayed") != float64(3) {
			t.Fatalf("replay all: %v", r.Field("replayed"))
		}
		e.clock.Advance(time.Minute) // the breaker's cool-down
		e.flush()
		for _, ev := range evs {
			if st, _, _ := e.delivery(c.ID, ev.ID); st != "delivered" {
				t.Fatalf("%s after replay: %s", ev.ID, st)
			}
		}
	})
}
