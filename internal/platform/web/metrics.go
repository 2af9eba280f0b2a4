package web

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

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
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mercato_http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status.",
		}, labels)),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mercato_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method, route pattern and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, labels)),
		inFlight: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mercato_http_requests_in_flight",
			Help: "HTTP requests being answered.",
		})),
	}
	info := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mercato_build_info",
		Help: "Always 1; the labels name the running service and version.",
	}, []string{"service", "version"}))
	info.WithLabelValues(service, version).Set(1)
	return m
}

// register registers c, or returns the equal collector registered before
// (several routers may share one registry, as tests do).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("web: register metrics: " + err.Error())
	}
	return c
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	if !knownMethods[method] {
		method = "OTHER"
	}
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(method, route, code).Inc()
	m.duration.WithLabelValues(method, route, code).Observe(d.Seconds())
}
