package web_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

// TestContentType: a body must come as JSON on every route, also on one
// that declares no Request type; a request without a body needs no type.
func TestContentType(t *testing.T) {
	rt, _, _ := testRouter(t, nil)
	rt.Handle(web.Route{Method: "POST", Path: "/api/v1/nobody", Status: 204,
		Handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }})
	c := webtest.Start(t, rt)
	thing := `{"name":"lamp","qty":1}`
	tests := []struct {
		name, path, body, ct string
		status               int
	}{
		{"json", "/api/v1/things", thing, "application/json", 201},
		{"json with charset", "/api/v1/things", thing, "application/json; charset=utf-8", 201},
		{"charset in capitals", "/api/v1/things", thing, "Application/JSON; charset=UTF-8", 201},
		{"a +json type", "/api/v1/things", thing, "application/merge-patch+json", 201},
		{"text", "/api/v1/things", thing, "text/plain", 415},
		{"form", "/api/v1/things", "name=lamp", "application/x-www-form-urlencoded", 415},
		{"no content type", "/api/v1/things", thing, "", 415},
		{"another charset", "/api/v1/things", thing, "application/json; charset=latin1", 415},
		{"json as a prefix only", "/api/v1/things", thing, "application/jsonx", 415},
		{"bare +json", "/api/v1/things", thing, "application/+json", 415},
		{"unparsable", "/api/v1/things", thing, "application/json; =", 415},
		{"a route without a Request type", "/api/v1/small", `{"a":1}`, "text/plain", 415},
		{"no body needs no type", "/api/v1/nobody", "", "", 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.Do("POST", tt.path, tt.body, "Content-Type: "+tt.ct)
			if tt.status == 415 {
				webtest.AssertProblem(t, res, 415, "unsupported_media_type")
				return
			}
			res.WantStatus(t, tt.status)
		})
	}
}

// TestBadBytesAtTheEdge: NUL, invalid UTF-8 and oversized values in a path,
// a query or a body get the same problem before any store sees them.
func TestBadBytesAtTheEdge(t *testing.T) {
	rt, _, _ := testRouter(t, nil)
	c := webtest.Start(t, rt).WithToken("customer")
	tests := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"NUL in a path value", "GET", "/api/v1/things/a%00b", "", 404, "not_found", ""},
		{"invalid UTF-8 in a path value", "GET", "/api/v1/things/%ff", "", 404, "not_found", ""},
		{"overlong path value", "GET", "/api/v1/things/" + strings.Repeat("x", web.MaxPathValue+1), "", 404, "not_found", ""},
		{"NUL in a tail wildcard", "GET", "/api/v1/files/a/%00", "", 404, "not_found", ""},
		{"NUL in a static part", "GET", "/api/v1/who%00ami", "", 404, "not_found", ""},
		{"NUL in a query value", "GET", "/api/v1/whoami?q=a%00", "", 422, "validation_failed", "q"},
		{"invalid UTF-8 in a query value", "GET", "/api/v1/whoami?q=%c3", "", 422, "validation_failed", "q"},
		{"NUL in a query name", "GET", "/api/v1/whoami?a%00=1", "", 422, "validation_failed", "a\uFFFD"},
		{"overlong query value", "GET", "/api/v1/whoami?q=" + strings.Repeat("x", web.DefaultMaxLen+1), "",
			422, "validation_failed", "q"},
		{"bad %-escape", "GET", "/api/v1/whoami?q=%zz", "", 400, "malformed_request", ""},
		{"NUL in a body string", "POST", "/api/v1/things", `{"name":"a\u0000"}`, 422, "validation_failed", "name"},
		{"invalid UTF-8 in a body string", "POST", "/api/v1/things", "{\"name\":\"\xc0\"}", 400, "malformed_request", "name"},
		{"duplicate key", "POST", "/api/v1/things", `{"name":"a","name":"b"}`, 400, "malformed_request", "name"},
		{"field name in another case", "POST", "/api/v1/things", `{"NAME":"a"}`, 400, "malformed_request", "NAME"},
		{"null body", "POST", "/api/v1/things", `null`, 400, "malformed_request", ""},
		{"array body", "POST", "/api/v1/things", `[{"name":"a"}]`, 400, "malformed_request", ""},
		{"NUL on an authenticated route, anonymous", "GET", "/api/v1/things/%00", "", 404, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body any
			if tt.body != "" {
				body = tt.body
			}
			p := webtest.AssertProblem(t, c.Do(tt.method, tt.path, body), tt.status, tt.code)
			if tt.field != "" {
				webtest.AssertFieldError(t, p, tt.field)
			}
		})
	}
	t.Run("a clean value passes", func(t *testing.T) {
		c.Do("GET", "/api/v1/things/"+strings.Repeat("x", web.MaxPathValue), nil).WantStatus(t, 200)
		c.Do("GET", "/api/v1/whoami?q=caf%C3%A9", nil).WantStatus(t, 200)
	})
	t.Run("an anonymous caller learns nothing past 401", func(t *testing.T) {
		anon := webtest.Start(t, rt)
		webtest.AssertProblem(t, anon.Do("GET", "/api/v1/things/%00", nil), 401, "unauthorized")
	})
}

// TestUncleanPaths: the router answers a problem, never ServeMux's HTML
// redirect, whatever the path looks like.
func TestUncleanPaths(t *testing.T) {
	rt, _, _ := testRouter(t, nil)
	c := webtest.Start(t, rt).WithToken("admin")
	tests := []struct{ name, method, path string }{
		{"double slash at the start", "GET", "//api/v1/whoami"},
		{"double slash inside", "GET", "/api/v1//whoami"},
		{"dot segment", "GET", "/./healthz"},
		{"dot-dot into another route", "GET", "/api/v1/things/../whoami"},
		{"escaped dot-dot", "GET", "/api/v1/things/%2e%2e/whoami"},
		{"dot-dot to admin", "DELETE", "/api/v1/me/../admin/things/7"},
		{"trailing dot", "GET", "/api/v1/whoami/."},
		{"subtree without its slash", "GET", "/api/v1/files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.Do(tt.method, tt.path, nil)
			webtest.AssertProblem(t, res, 404, "not_found")
			if loc := res.Header.Get("Location"); loc != "" {
				t.Errorf("Location %q: the router redirected", loc)
			}
		})
	}
	t.Run("raw request lines", func(t *testing.T) {
		// A client that sends the path as it is, which http.Client may not.
		for _, target := range []string{"/api/v1/../healthz", "//healthz", "/healthz/./"} {
			status, ct := rawGet(t, c.URL(), target)
			if status != 404 || ct != "application/problem+json" {
				t.Errorf("GET %s: %d %q, want 404 application/problem+json", target, status, ct)
			}
		}
	})
}

// rawGet sends "GET target HTTP/1.1" on a new connection and returns the
// answer's status and content type.
func rawGet(t *testing.T, base, target string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	return res.StatusCode, res.Header.Get("Content-Type")
}

// TestProbeLogLevel: the probes are logged at DEBUG, other requests at
// INFO, failures at ERROR.
func TestProbeLogLevel(t *testing.T) {
	logs := &logSink{}
	rt := web.NewRouter(web.Config{Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	down := false
	rt.HandleOps(map[string]func(context.Context) error{"database": func(context.Context) error {
		if down {
			return errors.New("down")
		}
		return nil
	}})
	rt.Handle(web.Route{Method: "GET", Path: "/api/v1/ping",
		Handler: func(w http.ResponseWriter, r *http.Request) { web.JSON(w, 200, map[string]bool{"ok": true}) }})
	c := webtest.Start(t, rt)
	tests := []struct {
		path  string
		down  bool
		level string
	}{
		{"/healthz", false, "DEBUG"},
		{"/readyz", false, "DEBUG"},
		{"/metrics", false, "DEBUG"},
		{"/readyz", true, "ERROR"},
		{"/api/v1/ping", false, "INFO"},
		{"/healthz/more", false, "INFO"}, // not the probe's route
	}
	for i, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			down = tt.down
			id := fmt.Sprintf("probe-%d", i)
			c.Do("GET", tt.path, nil, "X-Request-Id: "+id)
			lines := logs.lines(t, `"msg":"http request"`, `"request_id":"`+id+`"`)
			if len(lines) != 1 || lines[0]["level"] != tt.level {
				t.Errorf("access log of %s: %v, want one line at %s", tt.path, lines, tt.level)
			}
		})
	}
}
