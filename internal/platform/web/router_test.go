package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

// fakeAuth knows three tokens: "customer", "admin" and "broken" (an
// authenticator failure); any other bearer token is invalid.
type fakeAuth struct{}

func (fakeAuth) Authenticate(r *http.Request) (web.Principal, bool, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return web.Principal{}, false, nil
	}
	switch strings.TrimPrefix(h, "Bearer ") {
	case "customer":
		return web.Principal{UserID: "u-customer", Roles: []string{"customer"}}, true, nil
	case "customer2":
		return web.Principal{UserID: "u-customer2", Roles: []string{"customer"}}, true, nil
	case "admin":
		return web.Principal{UserID: "u-admin", Roles: []string{"admin"}}, true, nil
	case "broken":
		return web.Principal{}, false, errors.New("token store: sql: connection refused")
	}
	return web.Principal{}, false, errs.E("fakeAuth", errs.Unauthorized, "the token is invalid or expired")
}

func (fakeAuth) Allowed(p web.Principal, perm string) bool { return p.HasRole("admin") }

// logSink collects the router's JSON log lines; safe for concurrent use.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(b)
}

// lines returns the decoded log lines holding every fragment.
func (s *logSink) lines(t *testing.T, fragments ...string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
next:
	for _, line := range strings.Split(strings.TrimSpace(s.buf.String()), "\n") {
		for _, f := range fragments {
			if !strings.Contains(line, f) {
				continue next
			}
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		out = append(out, m)
	}
	return out
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

type thingIn struct {
	Name string `json:"name"`
	Qty  int    `json:"qty"`
}

type thing struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Qty  int    `json:"qty"`
	User string `json:"user,omitempty"`
}

// testRouter is a router with a few routes of every kind, its log and its
// metrics registry.
func testRouter(t *testing.T, checks map[string]func(context.Context) error) (*web.Router, *logSink, *prometheus.Registry) {
	logs := &logSink{}
	reg := prometheus.NewRegistry()
	rt := web.NewRouter(web.Config{Logger: slogJSON(logs), Registerer: reg, Auth: fakeAuth{},
		Service: "mercato-test", Version: "v0.0.1"})
	rt.Handle(web.Route{Method: "POST", Path: "/api/v1/things", Tag: "things", Summary: "Create a thing",
		Request: thingIn{}, Response: thing{}, Status: http.StatusCreated,
		Handler: func(w http.ResponseWriter, r *http.Request) {
			var in thingIn
			if err := web.Decode(r, &in); err != nil {
				web.Error(w, r, err)
				return
			}
			web.JSON(w, http.StatusCreated, thing{ID: "t1", Name: in.Name, Qty: in.Qty})
		}})
	rt.Handle(web.Route{Method: "GET", Path: "/api/v1/things/{id}", Tag: "things", Access: web.Authenticated,
		Response: thing{}, Handler: func(w http.ResponseWriter, r *http.Request) {
			p, _ := web.PrincipalFrom(r.Context())
			web.JSON(w, http.StatusOK, thing{ID: r.PathValue("id"), Name: "x", User: p.UserID})
		}})
	rt.Handle(web.Route{Method: "DELETE", Path: "/api/v1/admin/things/{id}", Tag: "things",
		Access: web.Permission("things:delete"), Status: http.StatusNoContent,
		Handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }})
	rt.Handle(web.Route{Method: "GET", Path: "/api/v1/whoami", Tag: "things",
		Handler: func(w http.ResponseWriter, r *http.Request) {
			p, ok := web.PrincipalFrom(r.Context())
			web.JSON(w, http.StatusOK, map[string]any{"user": p.UserID, "authenticated": ok})
		}})
	rt.Handle(web.Route{Method: "GET", Path: "/api/v1/panic", Tag: "things",
		Handler: func(w http.ResponseWriter, r *http.Request) {
			panic("boom: SELECT secret FROM sql_table")
		}})
	rt.Handle(web.Route{Method: "POST", Path: "/api/v1/small", Tag: "things", MaxBody: 16,
		Handler: func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body) // the buffered body, read directly
			if err != nil {
				web.Error(w, r, err)
				return
			}
			web.JSON(w, http.StatusOK, map[string]int{"bytes": len(b)})
		}})
	rt.Handle(web.Route{Method: "GET", Path: "/api/v1/files/{path...}", Tag: "things",
		Handler: func(w http.ResponseWriter, r *http.Request) {
			web.JSON(w, http.StatusOK, map[string]string{"path": r.PathValue("path")})
		}})
	rt.HandleOps(checks)
	return rt, logs, reg
}

func TestProblems(t *testing.T) {
	rt, logs, _ := testRouter(t, nil)
	c := webtest.Start(t, rt)
	spec := webtest.CheckOpenAPI(t, rt)
	big := `{"name":"` + strings.Repeat("x", web.DefaultMaxBody) + `"}`
	tests := []struct {
		name, method, path string
		body               any
		headers            []string
		status             int
		code               string
		field              string // a field the problem must name
		allow              string // the Allow header of a 405
		docPath            string // validate the answer against the OpenAPI schema of this path
	}{
		{name: "malformed JSON", method: "POST", path: "/api/v1/things", body: `{"name":`,
			status: 400, code: "malformed_request", docPath: "/api/v1/things"},
		{name: "unknown field", method: "POST", path: "/api/v1/things", body: `{"name":"a","colour":"red"}`,
			status: 400, code: "malformed_request", field: "colour"},
		{name: "trailing data", method: "POST", path: "/api/v1/things", body: `{"name":"a"} {}`,
			status: 400, code: "malformed_request"},
		{name: "empty body", method: "POST", path: "/api/v1/things", body: ``,
			status: 400, code: "malformed_request"},
		{name: "wrong type", method: "POST", path: "/api/v1/things", body: `{"name":"a","qty":"many"}`,
			status: 422, code: "validation_failed", field: "qty"},
		{name: "over the default limit", method: "POST", path: "/api/v1/things", body: big,
			status: 413, code: "payload_too_large"},
		{name: "over a route's limit", method: "POST", path: "/api/v1/small", body: `{"name":"seventeen bytes+"}`,
			status: 413, code: "payload_too_large"},
		{name: "unknown path", method: "GET", path: "/api/v1/nothing/here", status: 404, code: "not_found",
			docPath: "/api/v1/things"},
		{name: "unknown root path", method: "GET", path: "/favicon.ico", status: 404, code: "not_found"},
		{name: "wrong method", method: "PUT", path: "/api/v1/things", body: `{}`,
			status: 405, code: "method_not_allowed", allow: "POST"},
		{name: "wrong method on healthz", method: "DELETE", path: "/healthz",
			status: 405, code: "method_not_allowed", allow: "GET, HEAD"},
		{name: "wrong method on metrics", method: "POST", path: "/metrics", body: `{}`,
			status: 405, code: "method_not_allowed", allow: "GET, HEAD"},
		{name: "panic", method: "GET", path: "/api/v1/panic", status: 500, code: "internal_error"},
		{name: "no token", method: "GET", path: "/api/v1/things/7", status: 401, code: "unauthorized"},
		{name: "bad token", method: "GET", path: "/api/v1/things/7", headers: []string{"Authorization: Bearer nope"},
			status: 401, code: "unauthorized"},
		{name: "authenticator fails", method: "GET", path: "/api/v1/things/7",
			headers: []string{"Authorization: Bearer broken"}, status: 500, code: "internal_error"},
		{name: "no token on a permission route", method: "DELETE", path: "/api/v1/admin/things/7",
			status: 401, code: "unauthorized"},
		{name: "role lacks permission", method: "DELETE", path: "/api/v1/admin/things/7",
			headers: []string{"Authorization: Bearer customer"}, status: 403, code: "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.Do(tt.method, tt.path, tt.body, tt.headers...)
			p := webtest.AssertProblem(t, res, tt.status, tt.code)
			if tt.field != "" {
				webtest.AssertFieldError(t, p, tt.field)
			}
			if got := res.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			if id := res.Header.Get("X-Request-Id"); id == "" || p.Instance != id {
				t.Errorf("instance %q, X-Request-Id %q: want the request id in both", p.Instance, id)
			}
			if tt.status == 401 && res.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("a 401 without WWW-Authenticate")
			}
			if tt.docPath != "" {
				spec.ValidateResponse(t, tt.method, tt.docPath, res)
			}
		})
	}
	t.Run("panic is logged with its stack", func(t *testing.T) {
		lines := logs.lines(t, "panic serving request")
		if len(lines) == 0 {
			t.Fatalf("no panic in the log:\n%s", logs)
		}
		if s, _ := lines[0]["stack"].(string); !strings.Contains(s, "router_test.go") {
			t.Errorf("the logged stack does not lead to the handler: %.300s", s)
		}
		if p, _ := lines[0]["panic"].(string); !strings.Contains(p, "boom") {
			t.Errorf("the logged panic = %q", p)
		}
	})
}

func TestSuccess(t *testing.T) {
	rt, _, _ := testRouter(t, nil)
	c := webtest.Start(t, rt)
	spec := webtest.CheckOpenAPI(t, rt)
	tests := []struct {
		name, method, path, docPath string
		body                        any
		headers                     []string
		status                      int
		want                        map[string]any // fields of the JSON answer
	}{
		{name: "create", method: "POST", path: "/api/v1/things", docPath: "/api/v1/things",
			body: thingIn{Name: "lamp", Qty: 2}, status: 201, want: map[string]any{"name": "lamp", "qty": 2.0}},
		{name: "authenticated", method: "GET", path: "/api/v1/things/7", docPath: "/api/v1/things/{id}",
			headers: []string{"Authorization: Bearer customer"}, status: 200,
			want: map[string]any{"id": "7", "user": "u-customer"}},
		{name: "permission granted", method: "DELETE", path: "/api/v1/admin/things/7",
			headers: []string{"Authorization: Bearer admin"}, status: 204},
		{name: "public route reads a valid token", method: "GET", path: "/api/v1/whoami",
			headers: []string{"Authorization: Bearer customer"}, status: 200,
			want: map[string]any{"user": "u-customer", "authenticated": true}},
		{name: "public route ignores a bad token", method: "GET", path: "/api/v1/whoami",
			headers: []string{"Authorization: Bearer nope"}, status: 200,
			want: map[string]any{"user": "", "authenticated": false}},
		{name: "buffered body reaches the handler", method: "POST", path: "/api/v1/small", body: `{"a":1}`,
			status: 200, want: map[string]any{"bytes": 7.0}},
		{name: "healthz", method: "GET", path: "/healthz", docPath: "/healthz", status: 200,
			want: map[string]any{"status": "ok"}},
		{name: "readyz without checks", method: "GET", path: "/readyz", docPath: "/readyz", status: 200,
			want: map[string]any{"status": "ready"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.Do(tt.method, tt.path, tt.body, tt.headers...)
			res.WantStatus(t, tt.status)
			for k, v := range tt.want {
				if got := res.Field(k); got != v {
					t.Errorf("%s = %#v, want %#v", k, got, v)
				}
			}
			if tt.docPath != "" {
				spec.ValidateResponse(t, tt.method, tt.docPath, res)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	rt, logs, _ := testRouter(t, nil)
	c := webtest.Start(t, rt)
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"sane id is kept", "req-42_a.B", true},
		{"64 characters are kept", strings.Repeat("a", 64), true},
		{"65 characters are replaced", strings.Repeat("a", 65), false},
		{"odd characters are replaced", "id with spaces", false},
		{"an injected log field is replaced", `x","status":999`, false},
		{"none is generated", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res *webtest.Response
			if tt.sent == "" {
				res = c.Do("GET", "/api/v1/whoami", nil)
			} else {
				res = c.Do("GET", "/api/v1/whoami", nil, "X-Request-Id: "+tt.sent)
			}
			got := res.Header.Get("X-Request-Id")
			if tt.kept && got != tt.sent {
				t.Errorf("X-Request-Id = %q, want %q kept", got, tt.sent)
			}
			if !tt.kept && (got == tt.sent || len(got) != 32) {
				t.Errorf("X-Request-Id = %q, want a fresh 32-character id", got)
			}
			if len(logs.lines(t, `"request_id":"`+got+`"`)) != 1 {
				t.Errorf("no access log line with request id %q", got)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	rt, logs, _ := testRouter(t, nil)
	c := webtest.Start(t, rt)
	c.Do("GET", "/api/v1/things/99", nil, "Authorization: Bearer customer", "X-Request-Id: log-1")
	c.Do("POST", "/api/v1/things", `{"name":"secret-body-text"}`, "X-Request-Id: log-2")
	c.Do("GET", "/nope", nil, "X-Request-Id: log-3")
	tests := []struct {
		id   string
		want map[string]any
	}{
		{"log-1", map[string]any{"method": "GET", "route": "/api/v1/things/{id}", "path": "/api/v1/things/99",
			"status": 200.0, "user_id": "u-customer", "msg": "http request"}},
		{"log-2", map[string]any{"method": "POST", "route": "/api/v1/things", "status": 201.0}},
		{"log-3", map[string]any{"method": "GET", "route": "unmatched", "status": 404.0}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			lines := logs.lines(t, `"request_id":"`+tt.id+`"`)
			if len(lines) != 1 {
				t.Fatalf("%d access log lines for %s, want 1:\n%s", len(lines), tt.id, logs)
			}
			for k, v := range tt.want {
				if lines[0][k] != v {
					t.Errorf("%s = %#v, want %#v", k, lines[0][k], v)
				}
			}
			for _, k := range []string{"duration_ms", "bytes", "remote_addr"} {
				if _, ok := lines[0][k]; !ok {
					t.Errorf("the access log line has no %s: %v", k, lines[0])
				}
			}
		})
	}
	t.Run("no bodies or credentials", func(t *testing.T) {
		all := logs.String()
		for _, secret := range []string{"secret-body-text", "Bearer"} {
			if strings.Contains(all, secret) {
				t.Errorf("the log holds %q:\n%s", secret, all)
			}
		}
	})
}

// TestChunkedBodyOverLimit sends a body without Content-Length, so the limit
// is found while reading rather than from the header.
func TestChunkedBodyOverLimit(t *testing.T) {
	rt, _, _ := testRouter(t, nil)
	c := webtest.Start(t, rt)
	req, err := http.NewRequest("POST", c.URL()+"/api/v1/small",
		io.MultiReader(strings.NewReader(`{"name":"`), strings.NewReader(strings.Repeat("x", 64)+`"}`)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ContentLength != -1 && req.ContentLength != 0 {
		t.Fatalf("the request was not chunked")
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 413 || !strings.Contains(string(body), `"code":"payload_too_large"`) {
		t.Errorf("status %d, body %s: want 413 payload_too_large", res.StatusCode, body)
	}
}

func TestHandlePanicsOnBadRoutes(t *testing.T) {
	h := func(w http.ResponseWriter, r *http.Request) {}
	tests := []struct {
		name  string
		route web.Route
	}{
		{"duplicate", web.Route{Method: "GET", Path: "/a", Handler: h}},
		{"conflicting wildcard", web.Route{Method: "GET", Path: "/b/{other}", Handler: h}},
		{"unknown method", web.Route{Method: "FETCH", Path: "/c", Handler: h}},
		{"relative path", web.Route{Method: "GET", Path: "c", Handler: h}},
		{"malformed pattern", web.Route{Method: "GET", Path: "/d/{", Handler: h}},
		{"no handler", web.Route{Method: "GET", Path: "/e"}},
		{"nameless permission", web.Route{Method: "GET", Path: "/f", Access: web.Permission(""), Handler: h}},
		{"admin route without permission", web.Route{Method: "GET", Path: "/api/v1/admin/x",
			Access: web.Authenticated, Handler: h}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := web.NewRouter(web.Config{Logger: slogJSON(io.Discard)})
			rt.Handle(web.Route{Method: "GET", Path: "/a", Handler: h})
			rt.Handle(web.Route{Method: "GET", Path: "/b/{id}", Handler: h})
			defer func() {
				if recover() == nil {
					t.Errorf("Handle(%s) did not panic", tt.route.Pattern())
				}
			}()
			rt.Handle(tt.route)
		})
	}
	t.Run("routes are sorted and access defaults to public", func(t *testing.T) {
		rt := web.NewRouter(web.Config{Logger: slogJSON(io.Discard)})
		for _, p := range []string{"POST /z", "GET /z", "GET /a"} {
			m, path, _ := strings.Cut(p, " ")
			rt.Handle(web.Route{Method: m, Path: path, Handler: h})
		}
		var got []string
		for _, r := range rt.Routes() {
			got = append(got, r.Pattern())
			if !r.Access.IsPublic() {
				t.Errorf("%s: zero Access is not public", r.Pattern())
			}
		}
		if strings.Join(got, ",") != "GET /a,GET /z,POST /z" {
			t.Errorf("Routes() = %v", got)
		}
	})
}

func TestNoAuthenticator(t *testing.T) {
	rt := web.NewRouter(web.Config{Logger: slogJSON(io.Discard)})
	ok := func(w http.ResponseWriter, r *http.Request) { web.JSON(w, 200, map[string]bool{"ok": true}) }
	rt.Handle(web.Route{Method: "GET", Path: "/open", Handler: ok})
	rt.Handle(web.Route{Method: "GET", Path: "/closed", Access: web.Authenticated, Handler: ok})
	c := webtest.Start(t, rt)
	c.Do("GET", "/open", nil, "Authorization: Bearer x").WantStatus(t, 200)
	webtest.AssertProblem(t, c.Do("GET", "/closed", nil, "Authorization: Bearer x"), 401, "unauthorized")
}

// TestAbortHandler: http.ErrAbortHandler still aborts the response (net/http
// handles it), and the request is logged as aborted.
func TestAbortHandler(t *testing.T) {
	rt, logs, _ := testRouter(t, nil)
	rt.Handle(web.Route{Method: "GET", Path: "/api/v1/abort",
		Handler: func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }})
	c := webtest.Start(t, rt)
	req, _ := http.NewRequest("GET", c.URL()+"/api/v1/abort", nil)
	req.Header.Set("X-Request-Id", "abort-1")
	res, err := http.DefaultClient.Do(req)
	if err == nil {
		res.Body.Close()
		t.Fatalf("the aborted request got an answer: %d", res.StatusCode)
	}
	lines := logs.lines(t, `"request_id":"abort-1"`)
	if len(lines) != 1 || lines[0]["aborted"] != true {
		t.Errorf("access log for the aborted request: %v", lines)
	}
	if len(logs.lines(t, "panic serving request")) != 0 {
		t.Errorf("an abort was logged as a panic:\n%s", logs)
	}
}

// TestBodyOutsideRouter: Body and Decode see the same bytes also when the
// router did not buffer the body (a handler called directly).
func TestBodyOutsideRouter(t *testing.T) {
	r := httptest.NewRequest("POST", "/x", strings.NewReader(`{"name":"a","qty":2}`))
	var in thingIn
	if err := web.Decode(r, &in); err != nil || in.Qty != 2 {
		t.Fatalf("Decode = %+v, %v", in, err)
	}
	b, err := web.Body(r)
	if err != nil || string(b) != `{"name":"a","qty":2}` {
		t.Errorf("Body after Decode = %q, %v", b, err)
	}
}
