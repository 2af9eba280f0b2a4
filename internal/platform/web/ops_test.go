package web_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

func slogJSON(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	failing := func(context.Context) error {
		return errors.New("dial tcp 10.0.0.7:5432: sql: connection refused")
	}
	hanging := func(context.Context) error { select {} }
	tests := []struct {
		name   string
		checks map[string]func(context.Context) error
		status int
		states map[string]string
	}{
		{"all ready", map[string]func(context.Context) error{"database": ok, "bus": ok}, 200,
			map[string]string{"database": "ok", "bus": "ok"}},
		{"database down", map[string]func(context.Context) error{"database": failing, "bus": ok}, 503,
			map[string]string{"database": "failed", "bus": "ok"}},
		{"bus hangs", map[string]func(context.Context) error{"database": ok, "bus": hanging}, 503,
			map[string]string{"database": "ok", "bus": "timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rt, logs, _ := testRouter(t, tt.checks)
			c := webtest.Start(t, rt)
			res := c.Do("GET", "/readyz", nil)
			if tt.status == 200 {
				res.WantStatus(t, 200)
				if res.Field("status") != "ready" {
					t.Errorf("status = %v, want ready", res.Field("status"))
				}
			} else {
				p := webtest.AssertProblem(t, res, 503, "unavailable")
				for name, state := range tt.states {
					if state != "ok" {
						webtest.AssertFieldError(t, p, name)
						if !strings.Contains(p.Detail, name) {
							t.Errorf("detail %q does not name %s", p.Detail, name)
						}
					}
				}
				if strings.Contains(string(res.Body), "10.0.0.7") {
					t.Errorf("the answer holds the check's error: %s", res.Body)
				}
			}
			for name, state := range tt.states {
				if got := res.Field("checks." + name); got != state {
					t.Errorf("checks.%s = %v, want %s", name, got, state)
				}
			}
			if tt.name == "database down" && len(logs.lines(t, "readiness check failed", "10.0.0.7")) != 1 {
				t.Errorf("the failing check's error is not logged:\n%s", logs)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	rt, _, _ := testRouter(t, nil)
	c := webtest.Start(t, rt)
	for range 3 {
		c.Do("GET", "/api/v1/things/5", nil, "Authorization: Bearer customer").WantStatus(t, 200)
	}
	c.Do("GET", "/api/v1/things/5", nil).WantStatus(t, 401)
	c.Do("GET", "/no/such/path", nil).WantStatus(t, 404)
	c.Do("BREW", "/healthz", nil).WantStatus(t, 405)

	// The router records a request's metrics before net/http flushes its
	// (small, buffered) answer, so they are visible to the next request.
	res := c.Do("GET", "/metrics", nil)
	res.WantStatus(t, 200)
	body := string(res.Body)
	tests := []struct{ name, line string }{
		{"route count", `mercato_http_requests_total{method="GET",route="/api/v1/things/{id}",status="200"} 3`},
		{"route count by status", `mercato_http_requests_total{method="GET",route="/api/v1/things/{id}",status="401"} 1`},
		{"unmatched", `mercato_http_requests_total{method="GET",route="unmatched",status="404"} 1`},
		{"unknown method bounded", `mercato_http_requests_total{method="OTHER",route="unmatched",status="405"} 1`},
		{"latency histogram", `mercato_http_request_duration_seconds_count{method="GET",route="/api/v1/things/{id}",status="200"} 3`},
		{"histogram buckets", `mercato_http_request_duration_seconds_bucket{method="GET",route="/api/v1/things/{id}",status="200",le="+Inf"} 3`},
		{"in flight (this request)", `mercato_http_requests_in_flight 1`},
		{"build info", `mercato_build_info{service="mercato-test",version="v0.0.1"} 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(body, tt.line+"\n") {
				t.Errorf("/metrics lacks %s", tt.line)
			}
		})
	}
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("content type %q, want the Prometheus text format", res.Header.Get("Content-Type"))
	}
}

// TestRoutersShareRegistry: a second router on the same registry reuses the
// collectors instead of panicking.
func TestRoutersShareRegistry(t *testing.T) {
	_, _, reg := testRouter(t, nil)
	rt := web.NewRouter(web.Config{Logger: slogJSON(io.Discard), Registerer: reg})
	rt.HandleOps(nil)
	c := webtest.Start(t, rt)
	c.Do("GET", "/healthz", nil).WantStatus(t, 200)
	if !strings.Contains(string(c.Do("GET", "/metrics", nil).Body),
		`mercato_http_requests_total{method="GET",route="/healthz",status="200"} 1`) {
		t.Errorf("the second router's requests are not counted")
	}
}
