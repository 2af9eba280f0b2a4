package accounts

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"mercato/internal/platform/errs"
)

// jobQueue runs the work of requests that are answered before it is done
// (password-reset and unlock requests: the write and the e-mail), one job
// at a time, in order, with at most size jobs waiting. Answering first
// makes such a request take the same time whether or not its address has
// an account. Safe for concurrent use.
type jobQueue struct {
	log  *slog.Logger
	jobs chan job

	mu     sync.RWMutex
	closed bool // guarded by mu; jobs is closed with it
	done   chan struct{}
	start  sync.Once // the worker starts with the first job: building a Service starts nothing

	// gate, when set, runs before each job (tests hold jobs with it).
	gate atomic.Pointer[func()]
}

// job is one unit of deferred work; name says what it is in the log (it
// never names an address or a secret).
type job struct {
	name string
	run  func(ctx context.Context) error
}

// jobTimeout bounds one job (a write and one e-mail).
const jobTimeout = time.Minute

func newJobQueue(size int, log *slog.Logger) *jobQueue {
	if size <= 0 {
		size = 256
	}
	return &jobQueue{log: log, jobs: make(chan job, size), done: make(chan struct{})}
}

var (
	errQueueFull = &errs.Error{Op: "accounts.jobs", Kind: errs.RateLimited, Code: string(errs.CodeRateLimited),
		Msg: "too many requests are waiting; try again shortly", RetryAfter: 5}
	errQueueClosed = errs.E("accounts.jobs", errs.Unavailable, "the server is shutting down; try again")
)

// add queues j, or refuses it at once: 429 when the queue is full, 503
// after close. It never waits.
func (q *jobQueue) add(j job) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return errQueueClosed
	}
	q.start.Do(func() { go q.work() })
	select {
	case q.jobs <- j:
		return nil
	default:
		return errQueueFull
	}
}

// waiting is the number of jobs queued and not yet started.
func (q *jobQueue) waiting() int { return len(q.jobs) }

func (q *jobQueue) work() {
	defer close(q.done)
	for j := range q.jobs {
		if g := q.gate.Load(); g != nil {
			(*g)()
		}
		ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
		if err := j.run(ctx); err != nil {
			q.log.ErrorContext(ctx, "accounts: deferred job failed", "job", j.name, "err", err)
		}
		cancel()
	}
}

// close stops taking jobs and returns once the queued ones have run.
// Calling it again only waits.
func (q *jobQueue) close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.jobs)
	}
	q.mu.Unlock()
	q.start.Do(func() { close(q.done) }) // never started: nothing to wait for
	<-q.done
}
