package web

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"mercato/internal/platform/errs"
)

// Config configures a Router.
type Config struct {
	// Logger receives the access log, panics and internal errors. Nil: JSON
	// to standard error.
	Logger *slog.Logger
	// Registerer receives the HTTP metrics. Nil: a new registry that also
	// collects Go runtime and process metrics.
	Registerer prometheus.Registerer
	// Gatherer is what GET /metrics serves. Nil: Registerer when it is also
	// a Gatherer (a *prometheus.Registry is), else prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Auth authenticates callers. Nil: only Public routes can be called,
	// every other route answers 401.
	Auth Authenticator
	// Service and Version name the server in the OpenAPI document and in
	// mercato_build_info.
	Service string
	Version string
	// Tags describes the OpenAPI tags (a module each) by name; a tag
	// without a description is described as "Operations of <tag>.".
	Tags map[string]string
	// Contact names the API's maintainers and License is its licence as an
	// SPDX expression ("Apache-2.0") in the OpenAPI document's info.
	// Defaults: "<Service> maintainers" and "LicenseRef-Proprietary" (the
	// repository states no licence).
	Contact string
	License string
}

// Router is mercato's http.Handler: a net/http ServeMux with method patterns,
// wrapped in the middleware every request passes through. Safe for
// concurrent use; routes may be added while it serves.
type Router struct {
	log      *slog.Logger
	auth     Authenticator
	service  string
	version  string
	doc      docInfo // what the OpenAPI document says beyond the routes
	gatherer prometheus.Gatherer
	metrics  *metrics
	mux      *http.ServeMux

	mu      sync.Mutex
	routes  map[string]*Route // by pattern; guarded by mu
	openapi []byte            // the cached OpenAPI document, nil after Handle; guarded by mu
}

// NewRouter returns a router with no routes.
func NewRouter(cfg Config) *Router {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if cfg.Registerer == nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Registerer = reg
	}
	if cfg.Gatherer == nil {
		if g, ok := cfg.Registerer.(prometheus.Gatherer); ok {
			cfg.Gatherer = g
		} else {
			cfg.Gatherer = prometheus.DefaultGatherer
		}
	}
	if cfg.Service == "" {
		cfg.Service = "mercato"
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Contact == "" {
		cfg.Contact = cfg.Service + " maintainers"
	}
	if cfg.License == "" {
		cfg.License = "LicenseRef-Proprietary"
	}
	return &Router{
		log:     cfg.Logger,
		auth:    cfg.Auth,
		service: cfg.Service,
		version: cfg.Version,
		doc: docInfo{service: cfg.Service, version: cfg.Version, contact: cfg.Contact, license: cfg.License,
			tags: cfg.Tags},
		gatherer: cfg.Gatherer,
		metrics:  newMetrics(cfg.Registerer, cfg.Service, cfg.Version),
		mux:      http.NewServeMux(),
		routes:   map[string]*Route{},
	}
}

var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// Handle registers r. It panics when r is malformed (unknown method, a path
// that is not a ServeMux path pattern, no handler, Permission("")), when its
// pattern is registered already or conflicts with another one, and when a
// route under /api/v1/admin/ does not declare a Permission. A route whose
// Access is left zero is Public.
func (rt *Router) Handle(r Route) {
	switch {
	case !knownMethods[r.Method]:
		panic(fmt.Sprintf("web: route %q: unknown method %q", r.Pattern(), r.Method))
	case !strings.HasPrefix(r.Path, "/"):
		panic(fmt.Sprintf("web: route %q: the path must start with /", r.Pattern()))
	case r.Handler == nil:
		panic(fmt.Sprintf("web: route %q has no handler", r.Pattern()))
	case r.Access.kind == accessPermission && r.Access.perm == "":
		panic(fmt.Sprintf("web: route %q: Permission needs a name", r.Pattern()))
	case strings.HasPrefix(r.Path, "/api/v1/admin/") && r.Access.kind != accessPermission:
		panic(fmt.Sprintf("web: route %q: admin routes must declare a Permission", r.Pattern()))
	}
	if r.Request != nil {
		checkTags(reflect.TypeOf(r.Request))
	}
	r.wildcards = wildcards(r.Path)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if _, dup := rt.routes[r.Pattern()]; dup {
		panic(fmt.Sprintf("web: route %q registered twice", r.Pattern()))
	}
	route := &r
	rt.mux.Handle(r.Pattern(), rt.wrap(route)) // panics on a malformed or conflicting pattern
	rt.routes[r.Pattern()] = route
	rt.openapi = nil
}

// Routes returns the registered routes ordered by path, then method.
func (rt *Router) Routes() []Route {
	rt.mu.Lock()
	out := make([]Route, 0, len(rt.routes))
	for _, r := range rt.routes {
		out = append(out, *r)
	}
	rt.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// ServeHTTP runs the middleware every request passes through — request id,
// panic recovery, access log, metrics — and then the matched route, or
// answers 404 not_found / 405 method_not_allowed (with Allow) as a problem.
// An unclean path (//, /./, /../) is 404 too: the router never redirects
// (ServeMux would, with an HTML body) and every answer is JSON or a problem
// document (/metrics excepted: it speaks Prometheus text).
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := &requestInfo{start: now(), route: routeUnmatched}
	id := acceptRequestID(r.Header.Get(HeaderRequestID))
	w.Header().Set(HeaderRequestID, id)
	ctx := context.WithValue(r.Context(), keyRequestID, id)
	ctx = context.WithValue(ctx, keyInfo, req)
	ctx = context.WithValue(ctx, keyLogger, rt.log)
	r = r.WithContext(ctx)
	sw := &statusWriter{ResponseWriter: w}
	rt.metrics.inFlight.Inc()
	defer rt.finish(sw, r, req)

	if !isCleanPath(r.URL.Path) {
		Error(sw, r, errs.E("web.Router", errs.NotFound, "no resource at this path; paths hold no //, /./ or /../"))
		return
	}
	h, pattern := rt.mux.Handler(r)
	if pattern == "" || slashRedirect(pattern, r.URL.EscapedPath()) {
		rt.unmatched(sw, r, h)
		return
	}
	// ServeHTTP matches again: Handler does not set the path values.
	rt.mux.ServeHTTP(sw, r)
}

// slashRedirect reports whether ServeMux, having matched pattern for the
// clean escaped path p, would redirect to p+"/" rather than serve it: the
// pattern ends in "/" or {name...} and p stops one segment short of it.
func slashRedirect(pattern, p string) bool {
	_, pat, _ := strings.Cut(pattern, " ")
	if !strings.HasSuffix(pat, "/") && !strings.HasSuffix(pat, "...}") {
		return false
	}
	return strings.Count(p, "/") < strings.Count(pat, "/")
}

// unmatched answers a request no pattern matches. The mux's own handler runs
// on a recorder to learn whether it says 405 (and which methods it allows);
// anything else it would say (404, a redirect to the path with a slash
// added) is a 404 problem.
func (rt *Router) unmatched(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", rec.header.Get("Allow"))
		WriteProblem(w, Problem{Type: "about:blank", Title: http.StatusText(http.StatusMethodNotAllowed),
			Status: http.StatusMethodNotAllowed, Detail: "the method " + r.Method + " is not allowed on this path",
			Code: string(errs.CodeMethodNotAllowed), Errors: []errs.FieldError{}, Instance: RequestID(r.Context())})
		return
	}
	Error(w, r, errs.E("web.Router", errs.NotFound, "no resource at this path"))
}

// recorder captures what a handler writes.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rec *recorder) Header() http.Header { return rec.header }

func (rec *recorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
}

func (rec *recorder) Write(b []byte) (int, error) {
	rec.WriteHeader(http.StatusOK)
	return rec.body.Write(b)
}
