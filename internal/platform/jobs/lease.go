package jobs

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/metrics"
	"mercato/internal/platform/sqldb"
)

// Lease is a job's row in jobs_leases: who may run it, and how its runs went.
// The zero Lease (but for Job) is a job that never ran.
type Lease struct {
	Job        string
	Owner      string    // the runner that holds or last held the lease
	LeaseUntil time.Time // the claim holds until then; zero once released
	LastRunAt  time.Time // when the last run was claimed; the next is due Every later
	LastOKAt   time.Time // when the last successful run ended; zero if none
	LastError  string    // the last run's error; "" after a success
	Runs       int64     // runs claimed, on every runner
	Failures   int64     // runs that returned an error or panicked
}

// next is when l's job may be claimed by owner: Every after the last run
// began, and not before another owner's lease ends. Zero when it never ran.
func (l Lease) next(every time.Duration, owner string) time.Time {
	if l.LastRunAt.IsZero() {
		return time.Time{}
	}
	next := l.LastRunAt.Add(every)
	if l.Owner != owner && l.LeaseUntil.After(next) {
		next = l.LeaseUntil
	}
	return next
}

// Status returns the rows of the runner's jobs in registration order; a job
// that never ran has a zero Lease with only Job set.
func (r *Runner) Status(ctx context.Context) ([]Lease, error) {
	rows, err := r.leases(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Lease, 0, len(r.jobs))
	for _, j := range r.jobs {
		out = append(out, rows[j.Name])
	}
	return out, nil
}

const leaseColumns = `name, owner, lease_until, last_run_at, last_ok_at, last_error, runs, failures`

// leases reads every row, keyed by job name; jobs without a row get a zero
// Lease with Job set.
func (r *Runner) leases(ctx context.Context) (map[string]Lease, error) {
	rows, err := r.db.Reader().QueryContext(ctx, `SELECT `+leaseColumns+` FROM jobs_leases`)
	if err != nil {
		return nil, errs.E("jobs.leases", errs.Internal, err)
	}
	defer rows.Close()
	out := make(map[string]Lease, len(r.jobs))
	for _, j := range r.jobs {
		out[j.Name] = Lease{Job: j.Name}
	}
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			return nil, errs.E("jobs.leases", errs.Internal, err)
		}
		if _, ok := out[l.Job]; ok {
			out[l.Job] = l
		}
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E("jobs.leases", errs.Internal, err)
	}
	return out, nil
}

// lease reads one job's row (a zero Lease when there is none).
func (r *Runner) lease(ctx context.Context, name string) (Lease, error) {
	l, err := scanLease(r.db.Reader().QueryRowContext(ctx,
		`SELECT `+leaseColumns+` FROM jobs_leases WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{Job: name}, nil
	}
	if err != nil {
		return Lease{}, errs.E("jobs.lease", errs.Internal, err)
	}
	return l, nil
}

func scanLease(s interface{ Scan(...any) error }) (Lease, error) {
	var l Lease
	var until, run, ok int64
	err := s.Scan(&l.Job, &l.Owner, &until, &run, &ok, &l.LastError, &l.Runs, &l.Failures)
	l.LeaseUntil, l.LastRunAt, l.LastOKAt = sqldb.FromMicros(until), sqldb.FromMicros(run), sqldb.FromMicros(ok)
	return l, err
}

// claimSQL takes the lease in one statement: it inserts the row of a job that
// never ran, or updates it when the last run began at or before $5 and the
// lease is expired or already this owner's. One row affected means the
// claim won. $1 name, $2 owner, $3 lease until, $4 now, $5 due-by.
const claimSQL = `INSERT INTO jobs_leases (name, owner, lease_until, last_run_at, last_ok_at, last_error, runs, failures)
VALUES ($1, $2, $3, $4, 0, '', 1, 0)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until,
	last_run_at = excluded.last_run_at, runs = jobs_leases.runs + 1
WHERE (jobs_leases.lease_until <= $4 OR jobs_leases.owner = $2) AND jobs_leases.last_run_at <= $5`

// claim takes j's lease from start until start+Timeout when the last run
// began at or before dueBy; it reports whether it won.
func (r *Runner) claim(ctx context.Context, j *job, start, dueBy time.Time) (bool, error) {
	var won bool
	err := r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.ExecContext(ctx, claimSQL, j.Name, r.cfg.Owner,
			sqldb.Micros(start.Add(j.Timeout)), sqldb.Micros(start), sqldb.Micros(dueBy))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		won = n == 1
		return err
	})
	if err != nil {
		return false, errs.E("jobs.claim", errs.Internal, err)
	}
	return won, nil
}

// maxErrorLen bounds the stored last_error (bytes).
const maxErrorLen = 1000

// record writes res into j's row and releases the lease, provided the row
// still holds this runner's claim; kept is false when another runner took
// the lease over meanwhile (the row is then left alone).
func (r *Runner) record(ctx context.Context, j *job, res Result) (kept bool, err error) {
	q := `UPDATE jobs_leases SET lease_until = 0, last_ok_at = $4, last_error = ''
		WHERE name = $1 AND owner = $2 AND last_run_at = $3`
	arg := any(sqldb.Micros(res.Ended))
	if res.Err != nil {
		q = `UPDATE jobs_leases SET lease_until = 0, last_error = $4, failures = failures + 1
			WHERE name = $1 AND owner = $2 AND last_run_at = $3`
		arg = truncate(res.Err.Error(), maxErrorLen)
	}
	err = r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		rs, err := tx.ExecContext(ctx, q, j.Name, r.cfg.Owner, sqldb.Micros(res.Started), arg)
		if err != nil {
			return err
		}
		n, err := rs.RowsAffected()
		kept = n == 1
		return err
	})
	if err != nil {
		return false, errs.E("jobs.record", errs.Internal, err)
	}
	return kept, nil
}

// truncate cuts s to at most n bytes of valid UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// runnerMetrics are the runner's Prometheus metrics, labelled by job.
type runnerMetrics struct {
	runs     *prometheus.CounterVec   // job, result: ok | error | panic
	lastOK   *prometheus.GaugeVec     // job
	duration *prometheus.HistogramVec // job
	items    *prometheus.CounterVec   // job
}

// The values of the result label.
const (
	resultOK    = "ok"
	resultError = "error"
	resultPanic = "panic"
)

// newRunnerMetrics builds the metrics, registers them on reg (nil: not
// registered; a collector registered before is reused) and creates every
// job's series so that they read 0 before the first run.
func newRunnerMetrics(reg prometheus.Registerer, jobs []string) *runnerMetrics {
	m := &runnerMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mercato_job_runs_total",
			Help: "Runs of a periodic job by this process, by result (ok, error, panic).",
		}, []string{"job", "result"}),
		lastOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mercato_job_last_success_timestamp_seconds",
			Help: "Unix time the job's last successful run ended, on any replica (0: none yet).",
		}, []string{"job"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mercato_job_duration_seconds",
			Help:    "Duration of a periodic job's runs by this process.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1 ms … 4.4 min
		}, []string{"job"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mercato_job_items_total",
			Help: "Items (rows, orders …) a periodic job reported handling in this process.",
		}, []string{"job"}),
	}
	if reg != nil {
		m.runs = metrics.Register(reg, m.runs)
		m.lastOK = metrics.Register(reg, m.lastOK)
		m.duration = metrics.Register(reg, m.duration)
		m.items = metrics.Register(reg, m.items)
	}
	for _, j := range jobs {
		for _, res := range []string{resultOK, resultError, resultPanic} {
			m.runs.WithLabelValues(j, res)
		}
		m.lastOK.WithLabelValues(j)
		m.items.WithLabelValues(j)
	}
	return m
}

// observeRun counts one finished run.
func (m *runnerMetrics) observeRun(res Result, panicked bool) {
	result := resultOK
	switch {
	case panicked:
		result = resultPanic
	case res.Err != nil:
		result = resultError
	}
	m.runs.WithLabelValues(res.Job, result).Inc()
	m.duration.WithLabelValues(res.Job).Observe(res.Ended.Sub(res.Started).Seconds())
	m.items.WithLabelValues(res.Job).Add(float64(max(res.Items, 0)))
	if res.Err == nil {
		m.setLastOK(res.Job, res.Ended)
	}
}

// observeRow copies the shared last success from a row, so that every
// replica reports it, not only the one that ran the job.
func (m *runnerMetrics) observeRow(l Lease) {
	if !l.LastOKAt.IsZero() {
		m.setLastOK(l.Job, l.LastOKAt)
	}
}

func (m *runnerMetrics) setLastOK(job string, t time.Time) {
	m.lastOK.WithLabelValues(job).Set(float64(t.UnixMicro()) / 1e6)
}
