package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	promreg "mercato/internal/platform/metrics"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mercato/internal/platform/errs"
)

// HeaderRequestID carries the request id, in and out.
const HeaderRequestID = "X-Request-Id"

// routeUnmatched is the route label of requests no pattern matched.
const routeUnmatched = "unmatched"

var now = time.Now

// requestInfo is what the route middleware tells the outer middleware about
// a request; it lives in the context under keyInfo. Written only by the
// request's own goroutine before the handler returns.
type requestInfo struct {
	start  time.Time
	route  string // the matched route's path pattern, or routeUnmatched
	userID string // the authenticated caller, for the access log
	quiet  bool   // the route is a probe: log at DEBUG unless it fails
}

// acceptRequestID returns in when it is a sane request id (1–64 characters
// of [A-Za-z0-9-_.]), or a fresh random one.
func acceptRequestID(in string) string {
	if len(in) > 0 && len(in) <= 64 {
		ok := true
		for i := 0; i < len(in) && ok; i++ {
			c := in[i]
			ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
				c == '-' || c == '_' || c == '.'
		}
		if ok {
			return in
		}
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush lets streaming handlers flush through the wrapper.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish runs deferred after every request: it recovers a panic (a 500
// problem for the client, the value and stack for the log; the
// http.ErrAbortHandler sentinel is re-raised for net/http), then records the
// metrics and writes the access log line.
func (rt *Router) finish(w *statusWriter, r *http.Request, req *requestInfo) {
	p := recover()
	ctx := r.Context()
	if p != nil && p != http.ErrAbortHandler {
		rt.log.ErrorContext(ctx, "panic serving request", "panic", fmt.Sprint(p),
			"stack", string(debug.Stack()), "request_id", RequestID(ctx),
			"method", r.Method, "path", r.URL.Path)
		if w.status == 0 {
			prob := ProblemOf(errs.E("web.Router", errs.Internal))
			prob.Instance = RequestID(ctx)
			WriteProblem(w, prob)
		}
	}
	status := w.status
	if status == 0 {
		status = http.StatusOK // net/http sends 200 for a handler that wrote nothing
	}
	elapsed := now().Sub(req.start)
	rt.metrics.inFlight.Dec()
	rt.metrics.observe(r.Method, req.route, status, elapsed)
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case req.quiet:
		level = slog.LevelDebug // /healthz, /readyz, /metrics: polled all day
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", req.route),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.Int64("bytes", w.bytes),
		slog.String("request_id", RequestID(ctx)),
		slog.String("remote_addr", r.RemoteAddr),
	}
	if req.userID != "" {
		attrs = append(attrs, slog.String("user_id", req.userID))
	}
	if p == http.ErrAbortHandler {
		attrs = append(attrs, slog.Bool("aborted", true))
	}
	rt.log.LogAttrs(ctx, level, "http request", attrs...)
	if p == http.ErrAbortHandler {
		panic(p)
	}
}

// wrap is the middleware of one route: it records the route for the metrics
// and the access log, puts the route in the context (Body reads MaxBody from
// it), authenticates the caller against the route's Access, refuses bad
// bytes in path values (404) and query parameters (400, 422; input.go), and
// buffers the body of a POST, PUT, PATCH or DELETE (413 payload_too_large
// over the limit, 415 unsupported_media_type when it is not JSON) so that
// Decode and the idempotency fingerprint see the same bytes.
func (rt *Router) wrap(route *Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := r.Context().Value(keyInfo).(*requestInfo)
		if req != nil {
			req.route = route.Path
			req.quiet = route.quiet
		}
		// The Authenticator sees the request as it came (with its id and logger).
		p, ok, err := rt.authenticate(r, route)
		if err != nil {
			if errs.Is(err, errs.Unauthorized) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="mercato"`)
			}
			Error(w, r, err)
			return
		}
		ctx := context.WithValue(r.Context(), keyRoute, route)
		if ok {
			ctx = WithPrincipal(ctx, p)
			if req != nil {
				req.userID = p.UserID
			}
		}
		if err := checkPathValues(r, route.wildcards); err != nil {
			Error(w, r, err)
			return
		}
		if err := checkQuery(r); err != nil {
			Error(w, r, err)
			return
		}
		var buf []byte
		if hasBody(r.Method) {
			ctx = context.WithValue(ctx, keyBody, &buf)
		}
		r = r.WithContext(ctx)
		if hasBody(r.Method) {
			if err := bufferBody(w, r, route); err != nil {
				Error(w, r, err)
				return
			}
			if err := checkContentType(r, buf, route.BodyType); err != nil {
				Error(w, r, err)
				return
			}
		}
		route.Handler(w, r)
	})
}

// authenticate returns the caller of r if it has credentials. On a Public
// route invalid credentials are ignored (the caller is anonymous); on other
// routes a missing or invalid credential is Unauthorized and a principal
// whose roles lack the route's permission is Forbidden.
func (rt *Router) authenticate(r *http.Request, route *Route) (Principal, bool, error) {
	const op = "web.authenticate"
	var p Principal
	var ok bool
	var err error
	if rt.auth != nil {
		p, ok, err = rt.auth.Authenticate(r)
	}
	if route.Access.IsPublic() {
		if err != nil && !errs.Is(err, errs.Unauthorized) {
			loggerFrom(r.Context()).WarnContext(r.Context(), "authentication failed on a public route",
				"err", err, "request_id", RequestID(r.Context()))
		}
		return p, ok && err == nil, nil
	}
	switch {
	case err != nil:
		return Principal{}, false, err
	case !ok:
		return Principal{}, false, errs.E(op, errs.Unauthorized, "authentication is required")
	case route.Access.Perm() != "" && !rt.auth.Allowed(p, route.Access.Perm()):
		return Principal{}, false, errs.E(op, errs.Forbidden, "your role does not allow this")
	}
	return p, true, nil
}

func hasBody(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// bufferBody reads r's body once into the slot in r's context that Body
// reads from, and replaces r.Body with a reader over the same bytes.
func bufferBody(w http.ResponseWriter, r *http.Request, route *Route) error {
	limit := int64(DefaultMaxBody)
	if route.MaxBody > 0 {
		limit = route.MaxBody
	}
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close") // the body is not read
		return errs.E("web.Body", errs.TooLarge, "the request body is larger than the limit of "+strconv.FormatInt(limit, 10)+" bytes")
	}
	b, err := Body(r)
	if err != nil {
		if errs.Is(err, errs.TooLarge) {
			w.Header().Set("Connection", "close") // the rest of the body is not read
		}
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return nil
}

// loggerFrom returns the router's logger carried by ctx, or slog.Default.
func loggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(keyLogger).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// metrics are the router's Prometheus collectors. Labels: method (one of the
// known methods or OTHER, so a client cannot grow the label set), route (the
// matched path pattern, or "unmatched") and status.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, service, version string) *metrics {
	labels := []string{"method", "route", "status"}
	m := &metrics{
		requests: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mercato_http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status.",
		}, labels)),
		duration: promreg.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mercato_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method, route pattern and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, labels)),
		inFlight: promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mercato_http_requests_in_flight",
			Help: "HTTP requests being answered.",
		})),
	}
	info := promreg.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mercato_build_info",
		Help: "Always 1; the labels name the running service and version.",
	}, []string{"service", "version"}))
	info.WithLabelValues(service, version).Set(1)
	return m
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	if !knownMethods[method] {
		method = "OTHER"
	}
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(method, route, code).Inc()
	m.duration.WithLabelValues(method, route, code).Observe(d.Seconds())
}
