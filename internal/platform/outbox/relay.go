package outbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/event"
	"mercato/internal/platform/jobs"
	"mercato/internal/platform/metrics"
	"mercato/internal/platform/sqldb"
)

// RelayConfig tunes a Relay. Zero values take the defaults.
type RelayConfig struct {
	// BatchSize caps the events read and published in one pass (default 1000).
	BatchSize int
	// PollInterval is the fallback polling period for events committed with
	// no wake-up (another process, a missed notification); default 1s.
	PollInterval time.Duration
	// Retention is how long published rows are kept (default 7 days, and
	// never less than SyncInterval); older published rows are pruned.
	Retention time.Duration
	// SyncInterval is how far back the relay re-publishes after an unclean
	// stop: the bus's disk sync interval (natsbus.Bus.SyncInterval). Zero
	// re-publishes nothing.
	SyncInterval time.Duration
	// LockRetry is how often a standby relay on PostgreSQL tries to take the
	// leadership (default 2s).
	LockRetry time.Duration
	// Logger receives the relay's errors (default slog.Default()).
	Logger *slog.Logger
	// Registerer, when set, gets the relay's metrics.
	Registerer prometheus.Registerer
	// AfterPublish, for tests, runs after a batch is acknowledged by the bus
	// and before it is marked published. An error stops the relay at once,
	// as a crash between publish and mark would: Run returns that error.
	AfterPublish func(ids []string) error
}

func (c RelayConfig) withDefaults() RelayConfig {
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	c.Retention = max(c.Retention, c.SyncInterval)
	if c.LockRetry <= 0 {
		c.LockRetry = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Relay publishes committed outbox rows to the bus, in id order, and marks
// them published. Every committed event is published at least once; each
// Publish call holds an aggregate's events in sequence, starting at its
// earliest event not yet acknowledged (a failed call is repeated from its
// first row), which is all the order it promises (see the package doc). On
// PostgreSQL several replicas may each run a Relay: one
// leads (holds a session advisory lock) and publishes, the others stand by.
// A Relay is safe for concurrent use; Run must be called at most once at a
// time.
type Relay struct {
	db      *sqldb.DB
	pub     bus.Publisher
	cfg     RelayConfig
	owner   string // identifies this relay in outbox_relay_state
	wake    chan struct{}
	mu      sync.Mutex // serialises publishing passes (Run and Flush)
	leader  atomic.Bool
	metrics *relayMetrics
}

// errFault wraps the AfterPublish hook's error: it stops the relay.
type errFault struct{ err error }

func (e errFault) Error() string { return "outbox relay stopped by fault hook: " + e.err.Error() }
func (e errFault) Unwrap() error { return e.err }

// NewRelay returns a relay that publishes db's outbox to pub.
func NewRelay(db *sqldb.DB, pub bus.Publisher, cfg RelayConfig) *Relay {
	cfg = cfg.withDefaults()
	var b [8]byte
	rand.Read(b[:])
	return &Relay{db: db, pub: pub, cfg: cfg, owner: hex.EncodeToString(b[:]),
		wake: make(chan struct{}, 1), metrics: newRelayMetrics(cfg.Registerer)}
}

// Wake asks the relay to publish now rather than at its next poll. It never
// blocks; wake-ups coalesce.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Leader reports whether this relay is the one publishing (always true on
// SQLite while Run runs).
func (r *Relay) Leader() bool { return r.leader.Load() }

// Run publishes until ctx ends, then returns nil; it returns an error only
// when the AfterPublish hook stops it. Bus and database errors are logged
// and retried. Call Flush after Run returns for a clean stop.
func (r *Relay) Run(ctx context.Context) error {
	if r.db.Engine() == sqldb.Postgres {
		return r.runPostgres(ctx)
	}
	return r.lead(ctx)
}

// lead is the leader's loop: record the start (re-publishing the recent
// tail after an unclean stop), then publish on every wake-up and poll.
func (r *Relay) lead(ctx context.Context) error {
	r.leader.Store(true)
	r.metrics.leader.Set(1)
	defer func() {
		r.leader.Store(false)
		r.metrics.leader.Set(0)
	}()
	for {
		err := r.start(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		r.cfg.Logger.Error("outbox relay: start", "err", err)
		if !sleep(ctx, r.cfg.PollInterval) {
			return nil
		}
	}
	poll := time.NewTicker(r.cfg.PollInterval)
	defer poll.Stop()
	for {
		n, err := r.pass(ctx, 0)
		var fault errFault
		switch {
		case errors.As(err, &fault):
			return err
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			r.cfg.Logger.Error("outbox relay: publish", "err", err)
			if !sleep(ctx, r.cfg.PollInterval) {
				return nil
			}
			continue
		case n >= r.cfg.BatchSize:
			continue // more are waiting
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-poll.C:
		}
	}
}

// start records that this relay runs and, when the previous run did not stop
// cleanly, re-publishes what was published within the last SyncInterval.
func (r *Relay) start(ctx context.Context) error {
	var unclean bool
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		var running int
		err := tx.QueryRowContext(ctx, `SELECT running FROM outbox_relay_state WHERE name = 'relay'`).Scan(&running)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		unclean = err == nil && running != 0
		_, err = tx.ExecContext(ctx, `INSERT INTO outbox_relay_state (name, owner, running, started_at, stopped_at)
			VALUES ('relay', $1, 1, $2, NULL)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, running = 1,
				started_at = excluded.started_at, stopped_at = NULL`, r.owner, sqldb.Micros(tx.Now))
		return err
	})
	if err != nil {
		return fmt.Errorf("record start: %w", err)
	}
	if unclean && r.cfg.SyncInterval > 0 {
		n, err := r.republish(ctx, r.db.Now().Add(-r.cfg.SyncInterval))
		if err != nil {
			return fmt.Errorf("re-publish after unclean stop: %w", err)
		}
		r.cfg.Logger.Info("outbox relay: re-published the recent tail after an unclean stop", "events", n)
	}
	return nil
}

const selectCols = `SELECT id, event_id, type, schema_version, aggregate_type, aggregate_id, sequence, occurred_at, data FROM outbox `

// republish publishes again, in id order, every row published at or after
// since. The bus drops those it still holds (message id = event id).
func (r *Relay) republish(ctx context.Context, since time.Time) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	var after int64
	for {
		rows, err := r.read(ctx, selectCols+`WHERE published_at IS NOT NULL AND published_at >= $1 AND id > $2
			ORDER BY id LIMIT $3`, sqldb.Micros(since), after, r.cfg.BatchSize)
		if err != nil {
			return total, err
		}
		if len(rows) == 0 {
			return total, nil
		}
		if err := r.pub.Publish(ctx, messages(rows)); err != nil {
			return total, err
		}
		total += len(rows)
		after = rows[len(rows)-1].id
	}
}

type row struct {
	id int64
	e  event.Envelope
}

// read runs a selectCols query on the reader pool.
func (r *Relay) read(ctx context.Context, q string, args ...any) ([]row, error) {
	rs, err := r.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var x row
		var at int64
		var data string
		if err := rs.Scan(&x.id, &x.e.ID, &x.e.Type, &x.e.SchemaVersion, &x.e.AggregateType, &x.e.AggregateID,
			&x.e.Sequence, &at, &data); err != nil {
			return nil, err
		}
		x.e.OccurredAt = sqldb.FromMicros(at)
		x.e.Data = json.RawMessage(data)
		out = append(out, x)
	}
	return out, rs.Err()
}

// messages turns rows into bus messages: id = event id, subject by type,
// payload the JSON envelope.
func messages(rows []row) []bus.Message {
	msgs := make([]bus.Message, len(rows))
	for i, x := range rows {
		b, err := json.Marshal(x.e)
		if err != nil {
			// Data was validated by Append; the rest are plain fields.
			panic(fmt.Sprintf("outbox: marshal envelope %s: %v", x.e.ID, err))
		}
		msgs[i] = bus.Message{ID: x.e.ID, Subject: x.e.Subject(), Data: b}
	}
	return msgs
}

// pass publishes up to BatchSize unpublished rows (with id <= maxID when
// maxID > 0) and marks them published; it reports how many.
func (r *Relay) pass(ctx context.Context, maxID int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q, args := selectCols+`WHERE published_at IS NULL ORDER BY id LIMIT $1`, []any{r.cfg.BatchSize}
	if maxID > 0 {
		q, args = selectCols+`WHERE published_at IS NULL AND id <= $2 ORDER BY id LIMIT $1`, []any{r.cfg.BatchSize, maxID}
	}
	rows, err := r.read(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	if len(rows) == 0 {
		r.metrics.lag.Set(0)
		return 0, nil
	}
	if err := r.pub.Publish(ctx, messages(rows)); err != nil {
		return 0, fmt.Errorf("bus: %w", err)
	}
	if r.cfg.AfterPublish != nil {
		ids := make([]string, len(rows))
		for i, x := range rows {
			ids[i] = x.e.ID
		}
		if err := r.cfg.AfterPublish(ids); err != nil {
			return 0, errFault{err}
		}
	}
	// The batch is on the bus: mark it even when ctx ends now, so that a
	// clean stop does not leave it to be published again.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.mark(mctx, rows); err != nil {
		return 0, fmt.Errorf("mark: %w", err)
	}
	oldest := rows[0].e.OccurredAt
	for _, x := range rows[1:] {
		if x.e.OccurredAt.Before(oldest) {
			oldest = x.e.OccurredAt
		}
	}
	r.metrics.published.Add(float64(len(rows)))
	r.metrics.batch.Observe(float64(len(rows)))
	r.metrics.lag.Set(max(0, time.Since(oldest).Seconds()))
	return len(rows), nil
}

// mark sets published_at on exactly the rows published (never on a range:
// a row with an id in between may have committed since it was read).
func (r *Relay) mark(ctx context.Context, rows []row) error {
	var b strings.Builder
	ph := func(b *strings.Builder, n int) { sqldb.Params(r.db.Engine(), b, n, 1) }
	b.WriteString(`UPDATE outbox SET published_at = `)
	ph(&b, 1)
	b.WriteString(` WHERE id IN (`)
	args := make([]any, 1, len(rows)+1)
	for i, x := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		ph(&b, i+2)
		args = append(args, x.id)
	}
	b.WriteString(")")
	return r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		args[0] = sqldb.Micros(tx.Now)
		_, err := tx.ExecContext(ctx, b.String(), args...)
		return err
	})
}

// Flush publishes every event committed before it was called and records a
// clean stop, so that the next start re-publishes nothing. Call it at clean
// shutdown after Run has returned (events appended later are left for the
// next Run). On PostgreSQL a standby's Flush publishes too (the bus drops
// duplicates and each publisher keeps id order), but only the relay that led
// last records the clean stop.
func (r *Relay) Flush(ctx context.Context) error {
	var maxID int64
	if err := r.db.Reader().QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM outbox`).Scan(&maxID); err != nil {
		return fmt.Errorf("outbox: flush: %w", err)
	}
	for {
		n, err := r.pass(ctx, maxID)
		if err != nil {
			return fmt.Errorf("outbox: flush: %w", err)
		}
		if n < r.cfg.BatchSize {
			break
		}
	}
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE outbox_relay_state SET running = 0, stopped_at = $1
			WHERE name = 'relay' AND owner = $2`, sqldb.Micros(tx.Now), r.owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox: flush: record clean stop: %w", err)
	}
	return nil
}

// Prune deletes published rows older than Retention (never the unpublished
// ones, and never those of the last SyncInterval, which a restart after an
// unclean stop re-publishes), in chunks, and reports how many: a periodic
// job (the process runs it on its job runner, once per period across
// replicas).
func (r *Relay) Prune(ctx context.Context) (int64, error) {
	cutoff := sqldb.Micros(r.db.Now().Add(-r.cfg.Retention))
	return jobs.DeleteChunked(ctx, r.db, "outbox", "id", "published_at IS NOT NULL AND published_at < $1", cutoff)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

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
		m.published = metrics.Register(reg, m.published)
		m.lag = metrics.Register(reg, m.lag)
		m.batch = metrics.Register(reg, m.batch)
		m.leader = metrics.Register(reg, m.leader)
	}
	return m
}
