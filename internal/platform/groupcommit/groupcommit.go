// Package groupcommit batches concurrent units of database work into shared
// transactions, so that many callers pay for one durable commit.
//
// A unit is a sqldb.Unit (Do takes its Run alone). Units that arrive while a
// batch is being committed, or within MaxDelay of the first unit of a batch,
// run in one transaction by the rules of sqldb.RunBatch: a unit that fails
// is rolled back alone, its OnFail commits, and its caller gets its error
// while the others commit; a batch that loses a PostgreSQL conflict
// (deadlock, serialization failure) is tried again. A unit may therefore run
// more than once and must have no effect outside tx other than setting its
// own results; the outcome its caller sees is that of the run that
// committed. Every caller learns its own outcome only after the commit, so an
// acknowledged unit is durable (SQLite synchronous=FULL, PostgreSQL default
// fsync).
//
// When the commit itself fails, every unit of the batch gets the error and
// nothing of the batch is kept.
//
// A unit marked sqldb.Unit.Prompt (a tiny unit whose caller has more to
// do once it is durable, such as a write-ahead) goes in a lane of its own:
// a worker that finishes a batch first commits the prompt units queued
// meanwhile, at most MaxPrompt of them, in a small batch of their own, and
// only then gathers the next ordinary batch, so a prompt unit waits for the
// batch in progress but not for the next full one. The lane cannot starve
// the ordinary units: while ordinary units are queued, a worker runs at
// most one prompt batch between two ordinary ones. A prompt batch commits
// by the same rules as any other.
package groupcommit

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"mercato/internal/platform/sqldb"
)

// Config bounds a batch.
type Config struct {
	// MaxBatch is the most units in one transaction (default 256 on SQLite,
	// 64 on PostgreSQL, where more subtransactions per transaction overflow
	// the server's per-backend cache and slow other sessions' snapshots).
	MaxBatch int
	// MaxDelay is how long a batch may wait for more units after its first
	// one when fewer than MaxBatch are queued. Zero (the default) does not
	// sleep: a batch is what queued while the previous commit ran, plus what
	// arrives while the worker yields the processor a few times — under load
	// that fills batches without adding latency to a lone caller.
	MaxDelay time.Duration
	// MaxPrompt is the most units in one batch of the prompt lane (units
	// marked sqldb.Unit.Prompt); default MaxBatch/8, at least 1. A prompt
	// batch never waits for more units: it takes what is queued in the lane.
	MaxPrompt int
	// Workers is the number of batches in flight at once (default 1 on
	// SQLite, where there is one writer and more would only queue behind it;
	// 4 on PostgreSQL, where batches commit in parallel and each statement
	// is a round trip, so batches in flight overlap their round trips and
	// their WAL flushes: on 2 cores, POST /me/addresses through HTTP ran
	// 1.65× faster with 4 than one commit per request, against 1.4× with 2
	// (BenchmarkHTTPWrite); raise it with the core count).
	Workers int
	// Logger receives the panics of units (nil: slog.Default()).
	Logger *slog.Logger
}

// maxYields is how often a worker without MaxDelay yields the processor to
// let runnable callers enqueue before it commits what it has.
const maxYields = 3

// carefulBatches is how many batches run guarded after an optimistic
// batch failed.
const carefulBatches = 16

// ErrClosed is returned by Do and Run after Close.
var ErrClosed = errors.New("groupcommit: batcher closed")

type unit struct {
	ctx  context.Context
	u    sqldb.Unit
	err  error
	done chan struct{}
}

// Batcher runs units of work in group commits. Safe for concurrent use.
type Batcher struct {
	db    *sqldb.DB
	cfg   Config
	queue chan *unit
	// prompt is the lane of units marked sqldb.Unit.Prompt.
	prompt chan *unit
	wg     sync.WaitGroup

	// careful counts the batches still to run guarded after a failure.
	careful atomic.Int32

	mu     sync.RWMutex // guards closed against sends on queue and prompt
	closed bool
}

// New starts a batcher over db. Close it to stop its workers.
func New(db *sqldb.DB, cfg Config) *Batcher {
	pg := db.Engine() == sqldb.Postgres
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
		if pg {
			cfg.MaxBatch = 64
		}
	}
	if cfg.MaxPrompt <= 0 {
		cfg.MaxPrompt = max(cfg.MaxBatch/8, 1)
	}
	cfg.MaxPrompt = min(cfg.MaxPrompt, cfg.MaxBatch)
	if cfg.Workers <= 0 {
		cfg.Workers = 1
		if pg {
			cfg.Workers = 4
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &Batcher{db: db, cfg: cfg, queue: make(chan *unit, cfg.MaxBatch*cfg.Workers*4),
		prompt: make(chan *unit, cfg.MaxPrompt*cfg.Workers*4)}
	for range cfg.Workers {
		b.wg.Add(1)
		go b.work()
	}
	return b
}

// Do runs fn as a unit of a group commit (see Run).
func (b *Batcher) Do(ctx context.Context, fn func(*sqldb.Tx) error) error {
	return b.Run(ctx, sqldb.Unit{Run: fn})
}

// Run runs u as one unit of a group commit (see sqldb.Unit) and returns
// after that transaction has committed (nil, or u's error if it failed and
// was rolled back alone, with OnFail's writes committed) or failed as a
// whole (the commit's error).
//
// If ctx ends before the unit is taken into a batch, Run returns ctx's error
// and u never runs; once taken, Run waits for the outcome, so a nil error
// always means committed. u must not keep tx after it returns. A unit
// marked Prompt is queued in the prompt lane (see the package comment).
func (b *Batcher) Run(ctx context.Context, u sqldb.Unit) error {
	q := &unit{ctx: ctx, u: u, done: make(chan struct{})}
	lane := b.queue
	if u.Prompt {
		lane = b.prompt
	}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	select {
	case lane <- q:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	<-q.done
	return q.err
}

// Close stops accepting units, finishes the queued ones and stops the workers.
func (b *Batcher) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
		close(b.prompt)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *Batcher) work() {
	defer b.wg.Done()
	// A CPU profile tells the writer's time from the rest of the process:
	// go tool pprof -tagfocus mercato=writer.
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("mercato", "writer")))
	batch := make([]*unit, 0, b.cfg.MaxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	// The lanes this worker still reads: nil once closed and drained (a
	// receive from nil blocks, so select skips it).
	queue, prompt := b.queue, b.prompt
	// promptDue: no prompt batch ran since the last ordinary one.
	promptDue := true
	for queue != nil || prompt != nil {
		batch = batch[:0]
		if promptDue {
			// The prompt units queued during the last batch, before the next
			// ordinary one is gathered.
			take(&batch, &prompt, b.cfg.MaxPrompt)
			if len(batch) > 0 {
				b.run(batch, true)
				promptDue = false
				continue
			}
			if queue == nil && prompt == nil { // take found the lane closed
				return
			}
		}
		// The next ordinary batch if any ordinary unit is queued (so that
		// while they wait at most one prompt batch runs between two
		// ordinary ones); otherwise whichever lane has a unit first.
		var first *unit
		var ok, fromPrompt bool
		select {
		case first, ok = <-queue:
		default:
			select {
			case first, ok = <-queue:
			case first, ok = <-prompt:
				fromPrompt = true
			}
		}
		switch {
		case !ok && fromPrompt:
			prompt = nil
		case !ok:
			queue = nil
		case fromPrompt:
			batch = append(batch, first)
			take(&batch, &prompt, b.cfg.MaxPrompt)
			b.run(batch, true)
			promptDue = false
		default:
			batch = append(batch, first)
			if !b.gather(&batch, timer) {
				queue = nil
			}
			b.run(batch, false)
			promptDue = true
		}
	}
}

// take adds the units queued in *lane to batch, without waiting, until
// batch holds n; it sets *lane to nil when the lane is closed and drained.
func take(batch *[]*unit, lane *chan *unit, n int) {
	for len(*batch) < n {
		select {
		case u, ok := <-*lane:
			if !ok {
				*lane = nil
				return
			}
			*batch = append(*batch, u)
		default:
			return
		}
	}
}

// gather adds queued ordinary units to batch until it is full, the queue is
// empty and MaxDelay has passed, or the queue is closed (reported as false).
func (b *Batcher) gather(batch *[]*unit, timer *time.Timer) bool {
	yields := 0
	for len(*batch) < b.cfg.MaxBatch {
		select {
		case u, ok := <-b.queue:
			if !ok {
				return false
			}
			*batch = append(*batch, u)
			continue
		default:
		}
		if b.cfg.MaxDelay <= 0 {
			if yields < maxYields {
				yields++
				runtime.Gosched()
				continue
			}
			return true
		}
		timer.Reset(b.cfg.MaxDelay)
		select {
		case u, ok := <-b.queue:
			timer.Stop()
			if !ok {
				return false
			}
			*batch = append(*batch, u)
		case <-timer.C:
			return true
		}
	}
	return true
}

// run executes one batch: units whose context already ended are answered
// with its error and skipped; the rest run in one sqldb.RunBatch. After an
// ordinary batch whose optimistic pass failed, the next carefulBatches
// ordinary ones run guarded straight away (failures come in runs, e.g. a
// sold-out SKU), so a unit's function runs at most twice per try. A prompt
// batch (prompt) neither runs guarded for that nor counts: its units are
// another stream, whose failures say nothing of the ordinary ones.
func (b *Batcher) run(batch []*unit, prompt bool) {
	live := batch[:0:0]
	for _, u := range batch {
		if err := u.ctx.Err(); err != nil {
			u.err = err
			close(u.done)
			continue
		}
		live = append(live, u)
	}
	if len(live) == 0 {
		return
	}
	units := make([]sqldb.Unit, len(live))
	for i, u := range live {
		units[i] = u.u
	}
	guarded := !prompt && b.careful.Load() > 0
	if guarded {
		b.careful.Add(-1)
	}
	res := b.db.RunBatch(context.Background(), sqldb.Batch{Units: units, Guarded: guarded, Logger: b.cfg.Logger})
	if res.Rerun && !prompt {
		b.careful.Store(carefulBatches)
	}
	for i, u := range live {
		u.err = res.Outcomes[i]
		close(u.done)
	}
}
