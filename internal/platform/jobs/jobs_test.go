package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// t0 is where fake clocks start.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// clock is a fake clock shared by the runners of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// reopen opens a second handle on db's database, as another process would.
func reopen(t *testing.T, db *sqldb.DB) *sqldb.DB {
	t.Helper()
	cfg := sqldb.Config{URL: db.URL()}
	if db.Engine() == sqldb.SQLite {
		cfg.DataDir = filepath.Dir(db.Path())
	}
	other, err := sqldb.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

func newRunner(t *testing.T, db *sqldb.DB, cfg Config, jobs ...Job) *Runner {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r, err := New(db, cfg, jobs...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func status(t *testing.T, r *Runner, name string) Lease {
	t.Helper()
	ls, err := r.Status(context.Background())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	for _, l := range ls {
		if l.Job == name {
			return l
		}
	}
	t.Fatalf("Status has no job %s", name)
	return Lease{}
}

// metricValue reads one series (counter, gauge, or a histogram's sample
// count) from reg; labels are name=value pairs.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// TestRunnersRunEachJobOncePerPeriod: several runners (as several processes
// on one database, or several in one) poll a job on a fake clock, all at
// once on every tick; between them the job runs exactly once per period, at
// the period's start.
func TestRunnersRunEachJobOncePerPeriod(t *testing.T) {
	cases := []struct {
		name              string
		handles, runners  int // database handles (processes), runners spread over them
		ticksPerPeriod    int
		periods           int
		wantRunsPerPeriod int
	}{
		{"two processes, one tick per period", 2, 2, 1, 6, 1},
		{"two processes, four ticks per period", 2, 2, 4, 6, 1},
		{"three processes, three ticks per period", 3, 3, 3, 5, 1},
		{"three runners in one process", 1, 3, 2, 5, 1},
	}
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				clk := newClock()
				const every = time.Hour
				name := fmt.Sprintf("prune-%d", i)
				var mu sync.Mutex
				var ranAt []time.Time
				job := Job{Name: name, Every: every, Run: func(context.Context) (int64, error) {
					mu.Lock()
					defer mu.Unlock()
					ranAt = append(ranAt, clk.Now())
					return 1, nil
				}}
				handles := []*sqldb.DB{db}
				for len(handles) < tc.handles {
					handles = append(handles, reopen(t, db))
				}
				var runners []*Runner
				for k := range tc.runners {
					runners = append(runners, newRunner(t, handles[k%len(handles)],
						Config{Owner: fmt.Sprintf("owner-%d", k), Now: clk.Now}, job))
				}

				var results atomic.Int64
				for tick := range tc.periods * tc.ticksPerPeriod {
					clk.Set(t0.Add(time.Duration(tick) * every / time.Duration(tc.ticksPerPeriod)))
					var wg sync.WaitGroup
					for _, r := range runners {
						wg.Go(func() {
							res, err := r.RunDue(ctx)
							if err != nil {
								t.Errorf("RunDue: %v", err)
							}
							results.Add(int64(len(res)))
						})
					}
					wg.Wait()
				}

				var want []time.Time
				for p := range tc.periods {
					want = append(want, t0.Add(time.Duration(p)*every))
				}
				slices.SortFunc(ranAt, time.Time.Compare)
				if !slices.Equal(ranAt, want) {
					t.Errorf("job ran at %v, want once at the start of each of %d periods", ranAt, tc.periods)
				}
				if got := results.Load(); got != int64(tc.periods) {
					t.Errorf("RunDue reported %d runs, want %d", got, tc.periods)
				}
				l := status(t, runners[0], name)
				if l.Runs != int64(tc.periods) || l.Failures != 0 || !l.LeaseUntil.IsZero() ||
					!l.LastRunAt.Equal(want[len(want)-1]) || !l.LastOKAt.Equal(want[len(want)-1]) {
					t.Errorf("lease row = %+v, want %d runs, released, last run and success at %v",
						l, tc.periods, want[len(want)-1])
				}
			})
		}
	}, Migrations())
}

// TestCrashedOwnerLeaseIsTakenOver: a runner that claimed a job and then
// hangs (as if its process died) keeps the job from others until its lease
// expires — past the next due time — and then another runner takes it over.
// The hung run's late outcome does not overwrite the new owner's record.
func TestCrashedOwnerLeaseIsTakenOver(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		clk := newClock()
		const every, timeout = time.Hour, 90 * time.Minute
		started, release := make(chan struct{}), make(chan struct{})
		hung := Job{Name: "reconcile", Every: every, Timeout: timeout, Run: func(context.Context) (int64, error) {
			close(started)
			<-release
			return 7, nil
		}}
		var bRuns atomic.Int64
		healthy := Job{Name: "reconcile", Every: every, Timeout: timeout, Run: func(context.Context) (int64, error) {
			bRuns.Add(1)
			return 3, nil
		}}
		a := newRunner(t, db, Config{Owner: "a", Now: clk.Now}, hung)
		b := newRunner(t, reopen(t, db), Config{Owner: "b", Now: clk.Now}, healthy)

		aDone := make(chan []Result, 1)
		go func() {
			res, err := a.RunDue(ctx)
			if err != nil {
				t.Errorf("a.RunDue: %v", err)
			}
			aDone <- res
		}()
		<-started

		for _, step := range []struct {
			at      time.Duration
			wantRun bool
		}{
			{0, false},     // a holds the lease
			{every, false}, // due, but a's lease runs until 90 min
			{timeout - time.Minute, false},
			{timeout, true}, // a's lease expired: b takes over
			{timeout + time.Minute, false},
		} {
			clk.Set(t0.Add(step.at))
			res, err := b.RunDue(ctx)
			if err != nil {
				t.Fatalf("b.RunDue at +%v: %v", step.at, err)
			}
			if got := len(res) == 1; got != step.wantRun {
				t.Fatalf("b ran at +%v: %v, want %v (results %+v)", step.at, got, step.wantRun, res)
			}
		}
		if bRuns.Load() != 1 {
			t.Fatalf("b ran %d times, want 1", bRuns.Load())
		}

		close(release) // the hung run returns at last
		res := <-aDone
		if len(res) != 1 || !res[0].LeaseLost || res[0].Err != nil || res[0].Items != 7 {
			t.Fatalf("a's late result = %+v, want one successful run with LeaseLost", res)
		}
		l := status(t, b, "reconcile")
		if l.Owner != "b" || l.Runs != 2 || !l.LastRunAt.Equal(t0.Add(timeout)) ||
			!l.LastOKAt.Equal(t0.Add(timeout)) || !l.LeaseUntil.IsZero() {
			t.Fatalf("row after takeover = %+v, want b's run at +90m recorded and released", l)
		}

		// The next run is due a period after b's run began, for either runner.
		clk.Set(t0.Add(timeout + every - time.Second))
		if res, _ := a.RunDue(ctx); len(res) != 0 {
			t.Fatalf("a ran before the period after b's run: %+v", res)
		}
		clk.Set(t0.Add(timeout + every))
		if res, err := b.RunDue(ctx); err != nil || len(res) != 1 {
			t.Fatalf("b.RunDue a period after its run = %+v, %v; want one run", res, err)
		}
	}, Migrations())
}

// TestFailedRunsAreRecordedAndRetriedNextPeriod: a job that fails or panics
// is recorded (row, metrics), not retried before its next period, and
// retried then; its success clears the error.
func TestFailedRunsAreRecordedAndRetriedNextPeriod(t *testing.T) {
	cases := []struct {
		name, result, wantErr string
		fail                  func() (int64, error)
	}{
		{"error", "error", "upstream down", func() (int64, error) { return 0, errors.New("upstream down") }},
		{"panic", "panic", "panic: assignment to entry in nil map", func() (int64, error) {
			var m map[string]int
			m["x"] = 1
			return 0, nil
		}},
	}
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				clk := newClock()
				reg := prometheus.NewRegistry()
				const every = 10 * time.Minute
				name := "expire-" + tc.name
				var calls atomic.Int64
				job := Job{Name: name, Every: every, Run: func(context.Context) (int64, error) {
					if calls.Add(1) == 1 {
						return tc.fail()
					}
					return 5, nil
				}}
				r := newRunner(t, db, Config{Owner: "a", Now: clk.Now, Registerer: reg}, job)

				res, err := r.RunDue(ctx)
				if err != nil || len(res) != 1 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), tc.wantErr) {
					t.Fatalf("first RunDue = %+v, %v; want one run failing with %q", res, err, tc.wantErr)
				}
				l := status(t, r, name)
				if l.Runs != 1 || l.Failures != 1 || !strings.HasPrefix(l.LastError, tc.wantErr) ||
					!l.LastOKAt.IsZero() || !l.LeaseUntil.IsZero() {
					t.Fatalf("row after failure = %+v", l)
				}
				if got := metricValue(t, reg, "mercato_job_runs_total", "job", name, "result", tc.result); got != 1 {
					t.Errorf("runs_total{result=%s} = %v, want 1", tc.result, got)
				}
				if got := metricValue(t, reg, "mercato_job_runs_total", "job", name, "result", "ok"); got != 0 {
					t.Errorf("runs_total{result=ok} = %v, want 0", got)
				}

				clk.Set(t0.Add(every - time.Second))
				if res, err := r.RunDue(ctx); err != nil || len(res) != 0 {
					t.Fatalf("RunDue before the next period = %+v, %v; want no run", res, err)
				}

				clk.Set(t0.Add(every))
				res, err = r.RunDue(ctx)
				if err != nil || len(res) != 1 || res[0].Err != nil || res[0].Items != 5 {
					t.Fatalf("RunDue next period = %+v, %v; want one successful run of 5 items", res, err)
				}
				l = status(t, r, name)
				if l.Runs != 2 || l.Failures != 1 || l.LastError != "" || !l.LastOKAt.Equal(t0.Add(every)) {
					t.Fatalf("row after the retry = %+v", l)
				}
				for _, m := range []struct {
					name   string
					labels []string
					want   float64
				}{
					{"mercato_job_runs_total", []string{"job", name, "result", "ok"}, 1},
					{"mercato_job_runs_total", []string{"job", name, "result", tc.result}, 1},
					{"mercato_job_items_total", []string{"job", name}, 5},
					{"mercato_job_duration_seconds", []string{"job", name}, 2}, // observations
					{"mercato_job_last_success_timestamp_seconds", []string{"job", name}, float64(t0.Add(every).Unix())},
				} {
					if got := metricValue(t, reg, m.name, m.labels...); got != m.want {
						t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
					}
				}
			})
		}
	}, Migrations())
}

// TestRunOnce: the CLI's forced run runs a job now, due or not, and counts
// as its period's run; it refuses unknown jobs and jobs running elsewhere.
func TestRunOnce(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		clk := newClock()
		const every = time.Hour
		started, release := make(chan struct{}), make(chan struct{})
		jobs := []Job{
			{Name: "ok", Every: every, Run: func(context.Context) (int64, error) { return 4, nil }},
			{Name: "fails", Every: every, Run: func(context.Context) (int64, error) { return 1, errors.New("carrier API 503") }},
			{Name: "slow", Every: every, Run: func(context.Context) (int64, error) {
				close(started)
				<-release
				return 0, nil
			}},
			{Name: "elsewhere", Every: every, Run: func(context.Context) (int64, error) { return 0, nil }},
		}
		r := newRunner(t, db, Config{Owner: "cli", Now: clk.Now}, jobs...)
		if err := db.InTx(ctx, func(tx *sqldb.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO jobs_leases (name, owner, lease_until, last_run_at, runs)
				VALUES ('elsewhere', 'replica-2', $1, $2, 1)`,
				sqldb.Micros(t0.Add(time.Minute)), sqldb.Micros(t0))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		slowDone := make(chan error, 1)
		go func() {
			_, err := r.RunOnce(ctx, "slow")
			slowDone <- err
		}()
		<-started

		for _, tc := range []struct {
			name      string
			job       string
			wantItems int64
			wantKind  errs.Kind
			wantErr   error // nil: any error of wantKind, or none when wantKind is 0
			wantOK    bool
		}{
			{name: "runs a job", job: "ok", wantItems: 4, wantOK: true},
			{name: "runs it again though not due", job: "ok", wantItems: 4, wantOK: true},
			{name: "returns the job's error", job: "fails", wantItems: 1, wantKind: errs.Internal},
			{name: "unknown job", job: "nope", wantKind: errs.NotFound},
			{name: "running in this runner", job: "slow", wantKind: errs.Conflict, wantErr: ErrLeased},
			{name: "leased to another runner", job: "elsewhere", wantKind: errs.Conflict, wantErr: ErrLeased},
		} {
			t.Run(tc.name, func(t *testing.T) {
				n, err := r.RunOnce(ctx, tc.job)
				if tc.wantOK {
					if err != nil || n != tc.wantItems {
						t.Fatalf("RunOnce = %d, %v; want %d, nil", n, err, tc.wantItems)
					}
					return
				}
				if err == nil || errs.KindOf(err) != tc.wantKind || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || n != tc.wantItems {
					t.Fatalf("RunOnce = %d, %v; want %d and a %v error (%v)", n, err, tc.wantItems, tc.wantKind, tc.wantErr)
				}
			})
		}
		close(release)
		if err := <-slowDone; err != nil {
			t.Fatalf("slow RunOnce: %v", err)
		}
		// The forced runs count: nothing is due again within the period.
		clk.Set(t0.Add(every - time.Second))
		res, err := r.RunDue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 0 {
			t.Fatalf("RunDue right after forced runs ran %+v, want nothing", res)
		}
		if l := status(t, r, "ok"); l.Runs != 2 || l.Owner != "cli" {
			t.Fatalf("row of ok = %+v, want 2 runs by cli", l)
		}
	}, Migrations())
}

// TestRun: Run runs a job that never ran at once and returns when ctx
// ends; without the migrations it fails at once.
func TestRun(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var runs atomic.Int64
		r := newRunner(t, db, Config{}, Job{Name: "first", Every: time.Hour, Run: func(context.Context) (int64, error) {
			runs.Add(1)
			cancel() // stop the runner once the first run happened
			return 0, nil
		}})
		if err := r.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if runs.Load() != 1 {
			t.Fatalf("job ran %d times, want 1", runs.Load())
		}
		if l := status(t, r, "first"); l.Runs != 1 || l.Owner != r.Owner() || l.LastOKAt.IsZero() {
			t.Fatalf("row = %+v, want one recorded success by %s", l, r.Owner())
		}

		bare := sqldbtest.Open(t, db.Engine()) // no jobs migrations
		r2 := newRunner(t, bare, Config{}, Job{Name: "first", Every: time.Hour, Run: func(context.Context) (int64, error) { return 0, nil }})
		if err := r2.Run(context.Background()); err == nil {
			t.Fatal("Run without jobs_leases returned nil, want an error")
		}
	}, Migrations())
}

// TestNewRejectsBadJobs: New refuses jobs it could not run correctly.
func TestNewRejectsBadJobs(t *testing.T) {
	run := func(context.Context) (int64, error) { return 0, nil }
	ok := Job{Name: "ok", Every: time.Minute, Run: run}
	for _, tc := range []struct {
		name string
		jobs []Job
		want string
	}{
		{"empty name", []Job{{Every: time.Minute, Run: run}}, "bad job name"},
		{"upper case name", []Job{{Name: "Prune", Every: time.Minute, Run: run}}, "bad job name"},
		{"name with a space", []Job{{Name: "a b", Every: time.Minute, Run: run}}, "bad job name"},
		{"name too long", []Job{{Name: strings.Repeat("a", 101), Every: time.Minute, Run: run}}, "bad job name"},
		{"duplicate", []Job{ok, ok}, "twice"},
		{"no period", []Job{{Name: "x", Run: run}}, "Every must be positive"},
		{"negative period", []Job{{Name: "x", Every: -time.Second, Run: run}}, "Every must be positive"},
		{"no Run", []Job{{Name: "x", Every: time.Minute}}, "no Run"},
		{"negative timeout", []Job{{Name: "x", Every: time.Minute, Timeout: -1, Run: run}}, "negative Timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(nil, Config{Now: time.Now}, tc.jobs...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	r, err := New(nil, Config{Now: time.Now}, ok, Job{Name: "web.idempotency-prune_2", Every: time.Hour, Run: run})
	if err != nil {
		t.Fatalf("New with valid jobs: %v", err)
	}
	if r.byName["ok"].Timeout != time.Minute {
		t.Errorf("default Timeout = %v, want Every", r.byName["ok"].Timeout)
	}
	if r.Owner() == "" {
		t.Error("default Owner is empty")
	}
}

// TestClaimRace: runners that all find a job due claim it at the same
// instant, skipping the read that normally filters them; the conditional
// upsert lets exactly one of them run it, for the first run (an INSERT
// race) and for later ones (an UPDATE race).
func TestClaimRace(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		clk := newClock()
		const every, contenders, periods = time.Hour, 8, 4
		var runs atomic.Int64
		job := Job{Name: "race", Every: every, Run: func(context.Context) (int64, error) {
			runs.Add(1)
			return 0, nil
		}}
		handles := []*sqldb.DB{db, reopen(t, db)}
		var runners []*Runner
		for k := range contenders {
			runners = append(runners, newRunner(t, handles[k%2], Config{Owner: fmt.Sprintf("r%d", k), Now: clk.Now}, job))
		}
		for p := range periods {
			clk.Set(t0.Add(time.Duration(p) * every))
			before := runs.Load()
			gate := make(chan struct{})
			var won atomic.Int64
			var wg sync.WaitGroup
			for _, r := range runners {
				wg.Go(func() {
					<-gate
					_, ran, err := r.attempt(ctx, r.byName["race"], false)
					if err != nil {
						t.Errorf("attempt: %v", err)
					}
					if ran {
						won.Add(1)
					}
				})
			}
			close(gate)
			wg.Wait()
			if won.Load() != 1 || runs.Load()-before != 1 {
				t.Fatalf("period %d: %d claims won, %d runs; want exactly 1", p, won.Load(), runs.Load()-before)
			}
		}
	}, Migrations())
}
