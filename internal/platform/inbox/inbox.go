// Package inbox runs mercato's event consumers with exactly-once effect.
//
// A Consumer subscribes durably to event types and patterns (order.paid,
// order.*, *.created; see event.Pattern). Its handler is called for those
// types only, but per-aggregate order needs every sequence number of an
// aggregate, so the bus subscription covers the whole aggregates its
// patterns name (mercato.order.* for order.paid; every aggregate for a
// pattern like *.created). The other events of those aggregates have no
// effect and write nothing — no inbox row, and a position only where the
// consumer has one already: a consumer's position for an aggregate starts
// with the first event of it the consumer handles. So a consumer of
// order.cancelled alone writes nothing for the many orders that are placed
// and paid. When the first event a consumer handles is not its aggregate's
// first, the outbox (which keeps an aggregate's events for its retention)
// says whether an earlier one is of a type the consumer handles and thus
// on its way; if none is, the event is applied at once.
//
// The Runner hands a consumer its deliveries in batches; each batch is ONE transaction in
// which, per event and in aggregate-sequence order:
//
//   - an event already in the consumer's inbox, or with a sequence at or
//     below the consumer's position for its aggregate, is a duplicate: it is
//     acknowledged with no effect;
//   - an event whose predecessor is not applied yet (it is retrying, or is
//     in flight on another replica) is sent back for a short while, not
//     counted as a failure;
//   - otherwise the handler runs inside its own savepoint; on success the
//     event's inbox row and the new position are written; on failure the
//     savepoint is rolled back, the failure recorded (attempts, error text
//     for operators) and the event retried with exponential backoff and
//     jitter; after MaxAttempts failures it is parked in the dead-letter
//     list and the position moves past it, so the aggregate's later events
//     flow again.
//
// The transaction commits once, then the batch is acknowledged. An effect,
// its inbox row and its position commit together or not at all, so a
// redelivered event (lost ack, restart, re-published outbox tail) has no
// second effect. One aggregate's failures never hold up other aggregates.
//
// The inbox and position lookups of a batch are done with one query each
// before the handlers run, and the rows written with one statement each
// after them, inside the same transaction: the effect is the same as doing
// them per event inside its savepoint, for a fraction of the statements.
// Likewise a batch of first deliveries runs its handlers without
// savepoints; when one fails, the transaction is rolled back and the batch
// runs again at once with each handler in its own savepoint (so a failing
// handler may be called twice for one attempt; handlers write only through
// tx, so nothing of the first call remains).
//
// Parked events are listed and replayed through DeadLetters; Monitor reports
// the sync status (per-consumer counts, outbox backlog, dead letters) and
// works in a process that runs no consumer.
package inbox

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/event"
	"mercato/internal/platform/jobs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the inbox tables' migrations.
func Migrations() migrate.Source { return migrate.Embedded("inbox", migrations) }

// Handler applies one event inside the batch transaction tx (within a
// savepoint of its own). It must write its effects through tx only. It is
// called only for the types its Consumer's Events select (decode with the
// module's event.Kind); returning nil counts the event as applied and
// advances the ordering. A returned error (or a panic) rolls
// back what it wrote and retries the event later. ctx is not cancelled when
// the Runner stops, so that an in-flight batch can commit.
type Handler func(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error

// Consumer is one durable event consumer.
type Consumer struct {
	// Name identifies the consumer: its durable bus subscription and its
	// rows. Renaming a consumer starts it afresh.
	Name string
	// Events are the event types and patterns it handles (see
	// event.Pattern): "order.paid", "order.*", "*.created", "*".
	Events []string
	// Handle applies an event of a type that Events selects; it is not
	// called for the others.
	Handle Handler
	// MaxAttempts is how many failures park an event (default 8).
	MaxAttempts int
	// Replayable declares that Handle may run again on events it applied
	// before — also after newer events of their aggregates — and changes
	// nothing twice: it rebuilds a projection from current state, or
	// records its effect keyed by the event id. Only such a consumer
	// accepts a replay of past events (Replays). A consumer that moves
	// stock or money must never set it.
	Replayable bool
}

// RunnerConfig tunes a Runner. Zero values take the defaults.
type RunnerConfig struct {
	// BatchSize caps the deliveries applied in one transaction (default 512).
	BatchSize int
	// AckWait is how long the bus waits for a batch's settlement before it
	// redelivers (default 30s).
	AckWait time.Duration
	// MaxAckPending caps the unsettled deliveries of a consumer, retrying
	// and waiting ones included (default 20,000).
	MaxAckPending int
	// RetryBase and RetryCap shape a failing event's backoff: about
	// RetryBase·2^(attempt-1), at most RetryCap, minus up to a quarter of
	// jitter (defaults 100ms and 30s).
	RetryBase, RetryCap time.Duration
	// GapDelay is how long an event whose predecessor is not applied yet
	// waits before it comes back, growing with its deliveries up to
	// 20·GapDelay (default 50ms).
	GapDelay time.Duration
	// GapPatience is how many deliveries an event waits for missing
	// predecessors that the outbox no longer keeps (pruned after its
	// retention, or never written there) before it goes on without them —
	// they may have aged out of the bus before the consumer existed. Never
	// while a predecessor is known to be retrying, nor while the outbox
	// keeps one of a type the consumer handles: that one is on its way
	// (default 10). Missing predecessors the outbox keeps, none of them of
	// a type the consumer handles, are not waited for.
	GapPatience int
	// InboxRetention is how long inbox rows are kept (default 7 days);
	// positions keep de-duplicating older redeliveries.
	InboxRetention time.Duration
	// Write, when set, is the write path a batch of first deliveries is
	// applied on as one unit, sharing the commit of whatever else runs on it
	// (the process's group-commit batcher on SQLite, whose one writer would
	// otherwise run every consumer's batch as a commit of its own). A batch
	// with a retry, or whose unit fails, runs in its own transaction as
	// without it. Handlers must then write through tx only and never wait
	// for the write path themselves.
	Write sqldb.Committer
	// Logger receives failures and parking (default slog.Default()).
	Logger *slog.Logger
	// Registerer, when set, gets the consumers' metrics.
	Registerer prometheus.Registerer
}

func (c RunnerConfig) withDefaults() RunnerConfig {
	if c.BatchSize <= 0 {
		c.BatchSize = 512
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 20000
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 100 * time.Millisecond
	}
	if c.RetryCap <= 0 {
		c.RetryCap = 30 * time.Second
	}
	if c.GapDelay <= 0 {
		c.GapDelay = 50 * time.Millisecond
	}
	if c.GapPatience <= 0 {
		c.GapPatience = 10
	}
	if c.InboxRetention <= 0 {
		c.InboxRetention = 7 * 24 * time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Runner runs consumers against one database and bus.
type Runner struct {
	db        *sqldb.DB
	sub       bus.Subscriber
	cfg       RunnerConfig
	consumers []Consumer
	subjects  map[string][]string // consumer name → bus subject filters
	patterns  map[string][]event.Pattern
	metrics   *consumerMetrics
	monitor   *Monitor
	dead      *DeadLetters
}

// NewRunner returns a Runner of consumers. It panics when a consumer has no
// name, no events or no handler, when one of its Events is not a valid
// pattern, or when two share a name: those are wiring mistakes.
func NewRunner(db *sqldb.DB, sub bus.Subscriber, cfg RunnerConfig, consumers ...Consumer) *Runner {
	cfg = cfg.withDefaults()
	consumers = slices.Clone(consumers)
	subjects := make(map[string][]string, len(consumers))
	patterns := make(map[string][]event.Pattern, len(consumers))
	seen := map[string]bool{}
	for i, c := range consumers {
		if c.Name == "" || len(c.Events) == 0 || c.Handle == nil {
			panic(fmt.Sprintf("inbox: consumer %d (%q) needs a name, events and a handler", i, c.Name))
		}
		if seen[c.Name] {
			panic(fmt.Sprintf("inbox: two consumers named %q", c.Name))
		}
		seen[c.Name] = true
		ps := make([]event.Pattern, len(c.Events))
		for j, s := range c.Events {
			p, err := event.ParsePattern(s)
			if err != nil {
				panic(fmt.Sprintf("inbox: consumer %q: %v", c.Name, err))
			}
			ps[j] = p
		}
		subjects[c.Name], patterns[c.Name] = aggregateSubjects(ps), ps
		consumers[i].Handle = only(ps, c.Handle)
		if c.MaxAttempts <= 0 {
			consumers[i].MaxAttempts = 8
		}
	}
	names := make([]string, len(consumers))
	for i, c := range consumers {
		names[i] = c.Name
	}
	return &Runner{db: db, sub: sub, cfg: cfg, consumers: consumers, subjects: subjects, patterns: patterns,
		metrics: newConsumerMetrics(cfg.Registerer, sub, names),
		monitor: NewMonitor(db, sub), dead: NewDeadLetters(db, consumers...)}
}

// Status reports the sync status (see Monitor.Status).
func (r *Runner) Status(ctx context.Context) (SyncStatus, error) { return r.monitor.Status(ctx) }

// DeadLetters returns the dead-letter list, able to replay the events of
// this Runner's consumers.
func (r *Runner) DeadLetters() *DeadLetters { return r.dead }

// Run runs every consumer until ctx ends, then returns nil once the batches
// in flight have committed and been settled. Bus and database errors are
// logged and retried; Run returns an error only when it cannot register the
// consumers at start.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.register(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("inbox: register consumers: %w", err)
	}
	var wg sync.WaitGroup
	for _, c := range r.consumers {
		w := &worker{r: r, c: c, m: r.metrics.with(c.Name)}
		wg.Go(func() { w.run(ctx) })
	}
	wg.Wait()
	return nil
}

// register creates the consumers' stats rows, so that the sync monitor lists
// them before their first event.
func (r *Runner) register(ctx context.Context) error {
	return r.db.InTx(ctx, func(tx *sqldb.Tx) error {
		for _, c := range r.consumers {
			if _, err := tx.ExecContext(ctx, `INSERT INTO consumer_stats (consumer, processed, failed)
				VALUES ($1, 0, 0) ON CONFLICT (consumer) DO NOTHING`, c.Name); err != nil {
				return err
			}
		}
		return nil
	})
}

// Prune deletes inbox rows older than InboxRetention (in chunks, so the
// SQLite writer is never held long) and reports how many: a periodic job
// (the process runs it on its job runner, once per period across replicas).
// Positions keep de-duplicating redeliveries older than the retention.
func (r *Runner) Prune(ctx context.Context) (int64, error) {
	cutoff := sqldb.Micros(r.db.Now().Add(-r.cfg.InboxRetention))
	return jobs.DeleteChunked(ctx, r.db, "inbox", "consumer, event_id", "processed_at < $1", cutoff)
}

// worker runs one consumer.
type worker struct {
	r *Runner
	c Consumer
	m *workerMetrics
}

// run consumes until ctx ends, re-subscribing after transport errors.
func (w *worker) run(ctx context.Context) {
	cfg := bus.ConsumerConfig{Durable: w.c.Name, Subjects: w.r.subjects[w.c.Name],
		AckWait: w.r.cfg.AckWait, MaxAckPending: w.r.cfg.MaxAckPending}
	backoff := w.r.cfg.RetryBase
	for {
		err := w.r.sub.Consume(ctx, cfg, w.r.cfg.BatchSize, w.handle)
		if ctx.Err() != nil {
			return
		}
		w.r.cfg.Logger.Error("inbox: consume", "consumer", w.c.Name, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// aggregateSubjects returns the bus subject filters that carry every event
// of every aggregate ps may select: one mercato.<noun>.* per noun, sorted,
// or the single mercato.*.* when a pattern spans every aggregate. The
// filters never overlap (buses may refuse overlapping filters).
func aggregateSubjects(ps []event.Pattern) []string {
	var out []string
	for _, p := range ps {
		if p.Noun() == "*" {
			return []string{event.SubjectPrefix + "*.*"}
		}
		out = append(out, event.SubjectPrefix+p.Noun()+".*")
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// only returns a handler that calls h for the event types ps select and
// applies the others with no effect.
func only(ps []event.Pattern, h Handler) Handler {
	return func(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
		if selects(ps, e.Type) {
			return h(ctx, tx, e)
		}
		return nil
	}
}

// selects reports whether one of ps matches the event type typ.
func selects(ps []event.Pattern, typ string) bool {
	for _, p := range ps {
		if p.Match(typ) {
			return true
		}
	}
	return false
}

// selects reports whether the worker's consumer handles events of type typ.
func (w *worker) selects(typ string) bool { return selects(w.r.patterns[w.c.Name], typ) }
