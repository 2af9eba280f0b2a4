package web

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mercato/internal/platform/errs"
)

// ReadyTimeout bounds each readiness check.
const ReadyTimeout = 2 * time.Second

// Health is the body of GET /healthz.
type Health struct {
	Status string `json:"status"` // always "ok"
}

// Readiness is the body of GET /readyz when every check passes.
type Readiness struct {
	Status string            `json:"status"` // "ready"
	Checks map[string]string `json:"checks"` // check name → "ok"
}

// NotReady is the 503 problem document of GET /readyz: Checks says "ok",
// "failed" or "timeout" per check; the failures' causes are only logged.
type NotReady struct {
	Problem
	Checks map[string]string `json:"checks"`
}

// HandleOps registers the operational routes, all Public:
//   - GET /healthz: 200 {"status":"ok"} while the process serves;
//   - GET /readyz: runs every check concurrently, each with ReadyTimeout;
//     200 Readiness, or 503 NotReady (code "unavailable") naming the failing
//     checks without their errors' text;
//   - GET /metrics: the Prometheus text format of the configured Gatherer;
//   - GET /api/v1/openapi.json: the OpenAPI document of the routes.
//
// The three probes are access-logged at DEBUG (INFO would drown the log in
// load-balancer polls), except answers of 500 and above, logged at ERROR.
func (rt *Router) HandleOps(checks map[string]func(context.Context) error) {
	rt.HandleProbes(checks)
	rt.Handle(Route{Method: http.MethodGet, Path: "/metrics", Tag: "ops", Access: Public, quiet: true,
		Summary: "Prometheus metrics (text exposition format)", Handler: rt.MetricsHandler().ServeHTTP})
}

// MetricsHandler serves the Prometheus text format of the configured
// Gatherer, unauthenticated: for a separate listener that only operators
// reach, with HandleProbes on the API's router.
func (rt *Router) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(rt.gatherer, promhttp.HandlerOpts{})
}

// HandleProbes registers HandleOps' routes except GET /metrics.
func (rt *Router) HandleProbes(checks map[string]func(context.Context) error) {
	rt.Handle(Route{Method: http.MethodGet, Path: "/healthz", Tag: "ops", Access: Public, quiet: true,
		Summary: "Liveness: the process serves requests", Response: Health{},
		Handler: func(w http.ResponseWriter, r *http.Request) { JSON(w, http.StatusOK, Health{Status: "ok"}) }})
	rt.Handle(Route{Method: http.MethodGet, Path: "/readyz", Tag: "ops", Access: Public, quiet: true,
		Summary: "Readiness: the database and the bus answer", Response: Readiness{},
		Handler: func(w http.ResponseWriter, r *http.Request) { rt.ready(w, r, checks) }})
	rt.Handle(Route{Method: http.MethodGet, Path: "/api/v1/openapi.json", Tag: "ops", Access: Public,
		Summary: "This OpenAPI 3.1 document",
		Handler: func(w http.ResponseWriter, r *http.Request) {
			writeBody(w, http.StatusOK, contentTypeJSON, rt.OpenAPI())
		}})
}

func (rt *Router) ready(w http.ResponseWriter, r *http.Request, checks map[string]func(context.Context) error) {
	type result struct {
		name string
		err  error
	}
	ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
	defer cancel()
	results := make(chan result, len(checks)) // buffered: a late check never blocks
	for name, check := range checks {
		go func() { results <- result{name, check(ctx)} }()
	}
	states := make(map[string]string, len(checks))
	var failed []string
wait:
	for range checks {
		select {
		case res := <-results:
			states[res.name] = "ok"
			if res.err != nil {
				states[res.name] = "failed"
				failed = append(failed, res.name)
				rt.log.ErrorContext(r.Context(), "readiness check failed", "check", res.name,
					"err", res.err, "request_id", RequestID(r.Context()))
			}
		case <-ctx.Done():
			break wait
		}
	}
	for name := range checks {
		if _, done := states[name]; !done {
			states[name] = "timeout"
			failed = append(failed, name)
			rt.log.ErrorContext(r.Context(), "readiness check timed out", "check", name,
				"request_id", RequestID(r.Context()))
		}
	}
	if len(failed) == 0 {
		JSON(w, http.StatusOK, Readiness{Status: "ready", Checks: states})
		return
	}
	sort.Strings(failed)
	p := ProblemOf(errs.E("web.ready", errs.Unavailable, "not ready: "+strings.Join(failed, ", ")))
	p.Instance = RequestID(r.Context())
	for _, name := range failed {
		p.Errors = append(p.Errors, errs.FieldError{Field: name, Message: states[name]})
	}
	b, _ := json.Marshal(NotReady{Problem: p, Checks: states})
	writeBody(w, p.Status, contentTypeProblem, b)
}
