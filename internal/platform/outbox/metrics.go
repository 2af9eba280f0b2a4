package outbox

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// relayMetrics are the relay's Prometheus metrics.
type relayMetrics struct {
	published prometheus.Counter
	lag       prometheus.Gauge
	batch     prometheus.Histogram
	leader    prometheus.Gauge
}

// newRelayMetrics builds the metrics and registers them on reg (nil: not
// registered). A collector already registered (a second relay in one
// process, a test) is reused.
func newRelayMetrics(reg prometheus.Registerer) *relayMetrics {
	m := &relayMetrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mercato_outbox_published_total",
			Help: "Events published to the bus by the outbox relay.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mercato_outbox_relay_lag_seconds",
			Help: "Age of the oldest event in the relay's last published batch (0 when idle).",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mercato_outbox_relay_batch_size",
			Help:    "Events per published batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 7), // 1 … 4096
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mercato_outbox_relay_leader",
			Help: "1 while this process's relay is the one publishing.",
		}),
	}
	if reg != nil {
		m.published = register(reg, m.published)
		m.lag = register(reg, m.lag)
		m.batch = register(reg, m.batch)
		m.leader = register(reg, m.leader)
	}
	return m
}

// register registers c on reg, or returns the collector already registered
// under the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a clash of metric names is a programming error
	}
	return c
}
