// Package jobs runs mercato's periodic work (pruning, expiry, reconciliation)
// once per period across every replica that shares a database.
//
// Each job has a row in jobs_leases. A runner claims a job with one
// conditional upsert in a short transaction — it succeeds only when the job
// is due (its last run started at least Every ago) and no other owner holds
// an unexpired lease — and runs the job outside that transaction. When the
// job returns, the runner records the outcome and releases the lease. Because
// the due time is computed from the row, not from a per-process timer,
// several processes on one PostgreSQL database or one SQLite file run each
// job once per period between them. A runner that dies while running a job
// leaves its lease behind; it expires Timeout after the claim and another
// runner takes the job over.
//
// Times come from Config.Now on each runner (never from the database
// server), so replicas' clocks must agree to well within a period.
//
// DeleteChunked is the one way jobs delete many rows: a chunk per
// transaction, so that a large prune never holds the writer for long.
package jobs

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the jobs_leases table's migrations.
func Migrations() migrate.Source { return migrate.Embedded("jobs", migrations) }

// Job is one piece of periodic work.
type Job struct {
	// Name identifies the job across replicas and in metrics and logs:
	// 1–100 characters of a-z, 0-9, '.', '_' and '-', unique in a runner.
	Name string
	// Every is the period: a run is due Every after the previous run (on any
	// replica) started. Must be positive.
	Every time.Duration
	// Timeout bounds one run: its context ends then, and its lease expires
	// then, after which another runner may take the job over. Default Every.
	Timeout time.Duration
	// Run does the work and reports how many items it handled (rows deleted,
	// orders expired …). An error or a panic counts as a failed run; the job
	// is tried again when the next period is due, not sooner. Run must honour
	// ctx.
	Run func(ctx context.Context) (n int64, err error)
}

// Config tunes a Runner. Zero values take the defaults.
type Config struct {
	// Owner names this runner in the lease rows. It must be unique among the
	// processes sharing the database (default: host name, process id and a
	// random suffix). A runner may re-claim a lease held under its own name,
	// so a stable name lets a restarted process resume at once.
	Owner string
	// Logger receives runs' failures and results (default slog.Default()).
	Logger *slog.Logger
	// Registerer, when set, gets the runner's metrics.
	Registerer prometheus.Registerer
	// Now is the clock that decides when jobs are due and stamps the lease
	// rows (default: the database's clock, db.Now).
	Now func() time.Time
	// Poll is the longest Run sleeps before it reads a job's row again
	// (default one minute). Run normally wakes when the next run is due.
	Poll time.Duration
}

// Result is the outcome of one run.
type Result struct {
	Job     string
	Started time.Time // when the run was claimed (Config.Now)
	Ended   time.Time
	Items   int64 // what the job reported handling
	Err     error // the job's error, or its panic; nil when it succeeded
	// LeaseLost reports that the lease expired during the run and another
	// runner claimed the job: this run's outcome was not recorded in the row.
	LeaseLost bool
}

// ErrLeased is returned by RunOnce when the job is running: another runner
// holds its lease, or this runner is running it already.
var ErrLeased = errors.New("jobs: job is running elsewhere")

// Runner runs a fixed set of jobs. Safe for concurrent use; within one
// runner a job never runs twice at a time.
type Runner struct {
	db     *sqldb.DB
	cfg    Config
	jobs   []*job
	byName map[string]*job
	m      *runnerMetrics
}

// job is a registered Job with its in-process guard.
type job struct {
	Job
	running sync.Mutex // held while this runner runs the job
}

var nameRE = regexp.MustCompile(`^[a-z0-9._-]{1,100}$`)

// New returns a runner for jobs on db (migrated with Migrations). It fails on
// an invalid or duplicate job.
func New(db *sqldb.DB, cfg Config, jobs ...Job) (*Runner, error) {
	if cfg.Owner == "" {
		cfg.Owner = defaultOwner()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = db.Now
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Minute
	}
	r := &Runner{db: db, cfg: cfg, byName: map[string]*job{}}
	var names []string
	for _, j := range jobs {
		switch {
		case !nameRE.MatchString(j.Name):
			return nil, fmt.Errorf("jobs: bad job name %q (want 1-100 of a-z 0-9 . _ -)", j.Name)
		case r.byName[j.Name] != nil:
			return nil, fmt.Errorf("jobs: job %q registered twice", j.Name)
		case j.Every <= 0:
			return nil, fmt.Errorf("jobs: job %q: Every must be positive", j.Name)
		case j.Run == nil:
			return nil, fmt.Errorf("jobs: job %q has no Run", j.Name)
		case j.Timeout < 0:
			return nil, fmt.Errorf("jobs: job %q: negative Timeout", j.Name)
		}
		if j.Timeout == 0 {
			j.Timeout = j.Every
		}
		jj := &job{Job: j}
		r.jobs = append(r.jobs, jj)
		r.byName[j.Name] = jj
		names = append(names, j.Name)
	}
	r.m = newRunnerMetrics(cfg.Registerer, names)
	return r, nil
}

// defaultOwner is unique per process: host, pid and 4 random bytes.
func defaultOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Owner is the name this runner claims leases under.
func (r *Runner) Owner() string { return r.cfg.Owner }

// Run runs every job when it is due until ctx ends, each job in its own
// goroutine so that a slow job delays no other. It returns an error at once
// when jobs_leases cannot be read (migrations not applied); otherwise it
// returns nil after ctx ended and every running job returned. Failures of
// jobs and of the database are logged and retried.
func (r *Runner) Run(ctx context.Context) error {
	if _, err := r.leases(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, j := range r.jobs {
		wg.Go(func() {
			for {
				next := r.step(ctx, j)
				if !r.sleepUntil(ctx, next) {
					return
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// raceRetry is how soon Run reads a job's row again after it found the job
// due but lost the claim to another runner.
const raceRetry = time.Second

// step runs j if it is due and returns when to look again.
func (r *Runner) step(ctx context.Context, j *job) time.Time {
	l, err := r.lease(ctx, j.Name)
	now := r.cfg.Now()
	if err != nil {
		if ctx.Err() == nil {
			r.cfg.Logger.ErrorContext(ctx, "jobs: read lease", "job", j.Name, "err", err)
		}
		return now.Add(r.cfg.Poll)
	}
	r.m.observeRow(l)
	if next := l.next(j.Every, r.cfg.Owner); now.Before(next) {
		return next
	}
	res, ran, err := r.attempt(ctx, j, false)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			r.cfg.Logger.ErrorContext(ctx, "jobs: claim", "job", j.Name, "err", err)
		}
		return now.Add(r.cfg.Poll)
	case ran:
		return res.Started.Add(j.Every)
	default:
		return now.Add(raceRetry)
	}
}

// sleepUntil waits until next by Config.Now (at most Poll); it reports
// false when ctx ended first.
func (r *Runner) sleepUntil(ctx context.Context, next time.Time) bool {
	d := min(next.Sub(r.cfg.Now()), r.cfg.Poll)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// RunDue makes one pass: it runs, one after the other, every job that is due
// now and whose lease it wins, and returns their results (a job's failure is
// in its Result, not in the error). The error joins the database failures of
// jobs it could not claim or record. Tests drive runners with it and a fake
// clock; Run is RunDue per job on a timer.
func (r *Runner) RunDue(ctx context.Context) ([]Result, error) {
	rows, err := r.leases(ctx)
	if err != nil {
		return nil, err
	}
	var results []Result
	var errList []error
	for _, j := range r.jobs {
		l := rows[j.Name]
		r.m.observeRow(l)
		if r.cfg.Now().Before(l.next(j.Every, r.cfg.Owner)) {
			continue
		}
		res, ran, err := r.attempt(ctx, j, false)
		if err != nil {
			errList = append(errList, fmt.Errorf("jobs: %s: %w", j.Name, err))
		}
		if ran {
			results = append(results, res)
		}
	}
	return results, errors.Join(errList...)
}

// RunOnce runs the named job now, due or not (from the CLI, or a test),
// unless it is running: then it returns ErrLeased (kind Conflict). The run
// counts as the period's run: the next is due Every after it started. It
// returns the items the job handled and the job's own error, if any; an
// unknown name is a NotFound error.
func (r *Runner) RunOnce(ctx context.Context, name string) (int64, error) {
	const op = "jobs.RunOnce"
	j := r.byName[name]
	if j == nil {
		return 0, errs.E(op, errs.NotFound, "no job named "+name)
	}
	res, ran, err := r.attempt(ctx, j, true)
	if err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	if !ran {
		return 0, errs.E(op, errs.Conflict, ErrLeased)
	}
	if res.Err != nil {
		return res.Items, errs.E(op, errs.Internal, res.Err)
	}
	return res.Items, nil
}

// attempt claims j (when due, or at once when force) and runs it. ran is
// false when this runner is running j already or the claim lost.
func (r *Runner) attempt(ctx context.Context, j *job, force bool) (res Result, ran bool, err error) {
	if !j.running.TryLock() {
		return Result{}, false, nil
	}
	defer j.running.Unlock()
	start := r.cfg.Now()
	dueBy := start.Add(-j.Every)
	if force {
		dueBy = start
	}
	ok, err := r.claim(ctx, j, start, dueBy)
	if err != nil || !ok {
		return Result{}, false, err
	}
	return r.execute(ctx, j, start), true, nil
}

// execute runs a claimed job, contains its panic, records the outcome in
// its row and in the metrics, and logs it.
func (r *Runner) execute(ctx context.Context, j *job, start time.Time) Result {
	jctx, cancel := context.WithTimeout(ctx, j.Timeout)
	n, stack, err := call(jctx, j)
	cancel()
	panicked := stack != nil
	res := Result{Job: j.Name, Started: start, Ended: r.cfg.Now(), Items: n, Err: err}
	r.m.observeRun(res, panicked)

	// Record even when ctx ended (shutdown): the run happened.
	rctx, done := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	kept, rerr := r.record(rctx, j, res)
	done()
	res.LeaseLost = rerr == nil && !kept

	log := r.cfg.Logger.With("job", j.Name, "items", n, "duration", res.Ended.Sub(start))
	switch {
	case err != nil:
		if panicked {
			log = log.With("stack", string(stack))
		}
		log.ErrorContext(ctx, "jobs: run failed", "err", err, "panicked", panicked)
	case n > 0:
		log.InfoContext(ctx, "jobs: run done")
	default:
		log.DebugContext(ctx, "jobs: run done")
	}
	if rerr != nil {
		log.ErrorContext(ctx, "jobs: record run", "err", rerr)
	} else if res.LeaseLost {
		log.WarnContext(ctx, "jobs: lease expired during the run and was taken over; raise the job's Timeout")
	}
	return res
}

// call runs j, turning a panic into an error "panic: <value>"; stack is the
// panicking goroutine's stack, nil when j returned normally.
func call(ctx context.Context, j *job) (n int64, stack []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			n, stack, err = 0, debug.Stack(), fmt.Errorf("panic: %v", p)
		}
	}()
	n, err = j.Run(ctx)
	return n, nil, err
}
