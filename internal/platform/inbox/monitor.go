package inbox

import (
	"context"
	"database/sql"
	"mercato/internal/platform/metrics"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// SyncStatus is the sync monitor's report (API.md GET /api/v1/admin/sync).
type SyncStatus struct {
	Consumers     []ConsumerStatus `json:"consumers"`
	OutboxPending int64            `json:"outbox_pending"`
	DeadLetters   int64            `json:"dead_letters"`
}

// ConsumerStatus is one consumer's counts. Pending is the events not yet
// applied (retrying included); Failed counts failed handler attempts.
type ConsumerStatus struct {
	Name            string     `json:"name"`
	Pending         int64      `json:"pending"`
	Processed       int64      `json:"processed"`
	Failed          int64      `json:"failed"`
	LastProcessedAt *time.Time `json:"last_processed_at"`
}

// Monitor reports the sync status from the database and the bus. It needs no
// running consumer, so a process that only serves the API can report on
// consumers that run elsewhere. Safe for concurrent use.
type Monitor struct {
	db  *sqldb.DB
	sub bus.Subscriber
}

// NewMonitor returns a monitor of db's consumers, whose backlogs sub knows.
func NewMonitor(db *sqldb.DB, sub bus.Subscriber) *Monitor { return &Monitor{db: db, sub: sub} }

// Status reports every consumer that has ever run (by name), the outbox
// backlog and the number of dead letters. Lists are empty, never nil.
func (m *Monitor) Status(ctx context.Context) (SyncStatus, error) {
	const op = "inbox.Monitor.Status"
	st := SyncStatus{Consumers: []ConsumerStatus{}}
	rows, err := m.db.Reader().QueryContext(ctx,
		`SELECT consumer, processed, failed, last_processed_at FROM consumer_stats ORDER BY consumer`)
	if err != nil {
		return st, errs.E(op, err)
	}
	for rows.Next() {
		var c ConsumerStatus
		var last sql.NullInt64
		if err := rows.Scan(&c.Name, &c.Processed, &c.Failed, &last); err != nil {
			rows.Close()
			return st, errs.E(op, err)
		}
		if last.Valid {
			t := sqldb.FromMicros(last.Int64)
			c.LastProcessedAt = &t
		}
		st.Consumers = append(st.Consumers, c)
	}
	if err := rows.Close(); err != nil {
		return st, errs.E(op, err)
	}
	for i := range st.Consumers {
		n, err := m.sub.Pending(ctx, st.Consumers[i].Name)
		if err != nil {
			return st, errs.E(op, errs.Unavailable, "the bus does not answer", err)
		}
		st.Consumers[i].Pending = n
	}
	if st.OutboxPending, err = outbox.Pending(ctx, m.db); err != nil {
		return st, errs.E(op, err)
	}
	if st.DeadLetters, err = NewDeadLetters(m.db).Count(ctx); err != nil {
		return st, errs.E(op, err)
	}
	return st, nil
}

// consumerMetrics are the consumers' Prometheus metrics, labelled by
// consumer name.
type consumerMetrics struct {
	processed, failed, parked *prometheus.CounterVec
	lag                       *prometheus.GaugeVec
}

// workerMetrics are one consumer's series.
type workerMetrics struct {
	processed, failed, parked prometheus.Counter
	lag                       prometheus.Gauge
}

// newConsumerMetrics builds the metrics and registers them on reg (nil: not
// registered), with a collector that asks sub for each consumer's backlog
// when scraped. Collectors already registered are reused.
func newConsumerMetrics(reg prometheus.Registerer, sub bus.Subscriber, names []string) *consumerMetrics {
	labels := []string{"consumer"}
	m := &consumerMetrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mercato_consumer_processed_total", Help: "Events applied by a consumer."}, labels),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mercato_consumer_failed_total", Help: "Failed handler attempts of a consumer."}, labels),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mercato_consumer_dead_lettered_total", Help: "Events a consumer parked in the dead letters."}, labels),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mercato_consumer_lag_seconds",
			Help: "Time from the occurrence of a consumer's last applied event to its application."}, labels),
	}
	if reg != nil {
		m.processed = metrics.Register(reg, m.processed)
		m.failed = metrics.Register(reg, m.failed)
		m.parked = metrics.Register(reg, m.parked)
		m.lag = metrics.Register(reg, m.lag)
		metrics.Register(reg, prometheus.Collector(&pendingCollector{sub: sub, names: names}))
	}
	return m
}

func (m *consumerMetrics) with(name string) *workerMetrics {
	return &workerMetrics{processed: m.processed.WithLabelValues(name), failed: m.failed.WithLabelValues(name),
		parked: m.parked.WithLabelValues(name), lag: m.lag.WithLabelValues(name)}
}

// observe records a committed batch.
func (m *workerMetrics) observe(res batchResult) {
	m.processed.Add(float64(res.processed))
	m.failed.Add(float64(res.failed))
	m.parked.Add(float64(res.parked))
	if res.processed > 0 {
		m.lag.Set(max(0, time.Since(res.lastOccurred).Seconds()))
	}
}

var pendingDesc = prometheus.NewDesc("mercato_consumer_pending",
	"Events a consumer has not applied yet (retrying included).", []string{"consumer"}, nil)

// pendingCollector reports each registered consumer's bus backlog when
// scraped.
type pendingCollector struct {
	sub   bus.Subscriber
	names []string
}

func (c *pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- pendingDesc }

func (c *pendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, name := range c.names {
		n, err := c.sub.Pending(ctx, name)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n), name)
	}
}
