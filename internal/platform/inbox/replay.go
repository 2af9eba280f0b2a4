package inbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/jobs"
	"mercato/internal/platform/sqldb"
)

// The statuses of a replay.
const (
	ReplayRunning = "running"
	ReplayDone    = "done"
	ReplayFailed  = "failed"
)

// The stable codes of a replay refused.
const (
	// CodeNotReplayable: the consumer did not declare itself Replayable.
	CodeNotReplayable errs.Code = "consumer_not_replayable"
	// CodeReplayRunning: a replay of the consumer is running already.
	CodeReplayRunning errs.Code = "replay_running"
)

// Replay is one run of a consumer's handler over the retained outbox events
// since a point in time.
type Replay struct {
	ID       string    `json:"id"`
	Consumer string    `json:"consumer"`
	Since    time.Time `json:"since"`
	Status   string    `json:"status" doc:"running, done or failed."`
	Queued   int64     `json:"queued" doc:"The retained events since then that the consumer handles, counted when the replay was asked for."`
	Replayed int64     `json:"replayed" doc:"How many of them the handler has run again so far."`
	Attempts int       `json:"attempts,omitempty" doc:"Failed tries of the chunk the replay is at."`
	// Error is the handler's last error text, for operators (staff only).
	Error       string     `json:"error,omitempty" doc:"The handler's last error (for operators)."`
	RequestedBy string     `json:"requested_by"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
}

// ReplayPlan is the window of outbox rows a replay covers, read before its
// unit by Plan: every retained event that occurred at or after Since, up to
// the last one committed when it was read.
type ReplayPlan struct {
	Consumer string
	Since    time.Time
	Queued   int64 // the events in the window that the consumer handles
	from     int64 // the window starts after this outbox id
	until    int64 // and ends with this one
}

// ReplayConfig tunes Replays. Zero values take the defaults.
type ReplayConfig struct {
	// Retention is how far back a replay may start: the outbox's retention
	// of published rows (default 7 days, the relay's default).
	Retention time.Duration
	// Chunk is how many outbox rows one unit of a replay reads (default 200).
	Chunk int
	// MaxChunks is how many chunks one run of a replay job applies before
	// it lets the next run go on (default 50).
	MaxChunks int
	// MaxAttempts is how many failed tries of one chunk fail the replay
	// (default 5); the tries are a job period apart.
	MaxAttempts int
	// Every is the period of the replay jobs (default 2s): a replay starts
	// within about that long of being asked for.
	Every time.Duration
	// Logger receives failed chunks (default slog.Default()).
	Logger *slog.Logger
}

func (c ReplayConfig) withDefaults() ReplayConfig {
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.Chunk <= 0 {
		c.Chunk = 200
	}
	if c.MaxChunks <= 0 {
		c.MaxChunks = 50
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.Every <= 0 {
		c.Every = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Replays runs consumers' handlers again over retained outbox events, for
// staff repairing a projection or a downstream system ("replay everything
// since Tuesday 10:00 to the search indexer").
//
// A replay re-runs the handler only: it reads the outbox, never the bus,
// and leaves the consumer's inbox rows, positions and dead letters as they
// are, so the live consumer goes on undisturbed. Only consumers that
// declare themselves Replayable accept one. It runs through the write path
// in chunks, each chunk ONE unit in which the handler runs for the chunk's
// events in outbox id order (which is sequence order per aggregate) and
// the replay's cursor moves by a conditional update: a chunk commits with
// its effects or not at all, and of two processes running one replay only
// one applies each chunk. A chunk that fails is tried again at the next run
// and, after MaxAttempts, fails the replay where it stands. At most one
// replay of a consumer runs at a time.
//
// Replays needs no running consumer to be asked for (Plan, StartTx, Get,
// List); its jobs run in the processes that run the consumers. Safe for
// concurrent use.
type Replays struct {
	db        *sqldb.DB
	write     sqldb.Committer
	cfg       ReplayConfig
	consumers func() []Consumer
}

// NewReplays returns the replays of db's consumers, run through write.
// consumers lists every consumer the shop declares (asked for when used,
// so the list may be built after the Replays).
func NewReplays(db *sqldb.DB, write sqldb.Committer, cfg ReplayConfig, consumers func() []Consumer) *Replays {
	return &Replays{db: db, write: write, cfg: cfg.withDefaults(), consumers: consumers}
}

// replayer is a Replayable consumer with its event patterns.
type replayer struct {
	c  Consumer
	ps []event.Pattern
}

func (r replayer) selects(typ string) bool {
	for _, p := range r.ps {
		if p.Match(typ) {
			return true
		}
	}
	return false
}

// lookup finds consumer name: NotFound when the shop declares none, a
// Conflict (CodeNotReplayable) when it is not Replayable.
func (r *Replays) lookup(name string) (replayer, error) {
	const op = "inbox.Replays"
	for _, c := range r.consumers() {
		if c.Name != name {
			continue
		}
		if !c.Replayable {
			return replayer{}, errs.E(op, errs.Conflict, CodeNotReplayable,
				"this consumer's effects would be applied twice (it moves stock, money or sends mail once): it cannot be replayed")
		}
		rp := replayer{c: c}
		for _, s := range c.Events {
			p, err := event.ParsePattern(s)
			if err != nil {
				return replayer{}, errs.E(op, errs.Internal, err)
			}
			rp.ps = append(rp.ps, p)
		}
		return rp, nil
	}
	return replayer{}, errs.E(op, errs.NotFound, "no such consumer")
}

// Plan checks a replay of consumer since a point in time and reads its
// window from the outbox (on the reader, outside any unit): NotFound for a
// consumer the shop does not declare, Conflict consumer_not_replayable for
// one that is not Replayable, validation_failed for a since in the future
// or beyond the outbox's retention.
func (r *Replays) Plan(ctx context.Context, consumer string, since time.Time) (ReplayPlan, error) {
	const op = "inbox.Replays.Plan"
	rp, err := r.lookup(consumer)
	if err != nil {
		return ReplayPlan{}, err
	}
	now := r.db.Now()
	var v errs.Validation
	v.Check(!since.After(now), "since", "must not be in the future")
	v.Check(!since.Before(now.Add(-r.cfg.Retention)), "since",
		fmt.Sprintf("must be within the outbox's retention of events (%s)", r.cfg.Retention))
	if err := v.Err(op); err != nil {
		return ReplayPlan{}, err
	}
	p := ReplayPlan{Consumer: consumer, Since: since.UTC()}
	q := r.db.Reader()
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM outbox`).Scan(&p.until); err != nil {
		return ReplayPlan{}, errs.E(op, errs.Internal, err)
	}
	rows, err := q.QueryContext(ctx, `SELECT type, COUNT(*), MIN(id) FROM outbox WHERE occurred_at >= $1 AND id <= $2 GROUP BY type`,
		sqldb.Micros(p.Since), p.until)
	if err != nil {
		return ReplayPlan{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	p.from = p.until
	for rows.Next() {
		var typ string
		var n, first int64
		if err := rows.Scan(&typ, &n, &first); err != nil {
			return ReplayPlan{}, errs.E(op, errs.Internal, err)
		}
		if rp.selects(typ) {
			p.Queued += n
			p.from = min(p.from, first-1)
		}
	}
	if err := rows.Err(); err != nil {
		return ReplayPlan{}, errs.E(op, errs.Internal, err)
	}
	return p, nil
}

// StartTx records the replay of plan, asked for by by, in tx; the replay
// jobs run it after the commit. A replay of the consumer running already is
// Conflict replay_running. A plan with nothing to replay is done at once.
func (r *Replays) StartTx(ctx context.Context, tx *sqldb.Tx, plan ReplayPlan, by string) (Replay, error) {
	const op = "inbox.Replays.Start"
	rep := Replay{ID: event.NewID(), Consumer: plan.Consumer, Since: plan.Since, Status: ReplayRunning, Queued: plan.Queued,
		RequestedBy: by, CreatedAt: tx.Now, UpdatedAt: tx.Now}
	var finished any
	if plan.Queued == 0 {
		rep.Status, rep.FinishedAt, finished = ReplayDone, &tx.Now, sqldb.Micros(tx.Now)
	}
	now := sqldb.Micros(tx.Now)
	res, err := tx.ExecContext(ctx, `INSERT INTO consumer_replays (id, consumer, since, until_id, cursor_id, queued, status,
			requested_by, created_at, updated_at, finished_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) ON CONFLICT DO NOTHING`,
		rep.ID, rep.Consumer, sqldb.Micros(rep.Since), plan.until, plan.from, rep.Queued, rep.Status, by, now, finished)
	if err != nil {
		return Replay{}, errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Replay{}, errs.E(op, errs.Internal, err)
	} else if n == 0 {
		return Replay{}, errs.E(op, errs.Conflict, CodeReplayRunning, "a replay of this consumer is running; wait for it to end")
	}
	return rep, nil
}

const replayCols = `id, consumer, since, status, queued, replayed, attempts, last_error, requested_by, created_at, updated_at, finished_at`

func scanReplay(sc interface{ Scan(...any) error }) (Replay, error) {
	var rep Replay
	var since, created, updated int64
	var finished sql.NullInt64
	if err := sc.Scan(&rep.ID, &rep.Consumer, &since, &rep.Status, &rep.Queued, &rep.Replayed, &rep.Attempts, &rep.Error,
		&rep.RequestedBy, &created, &updated, &finished); err != nil {
		return Replay{}, err
	}
	rep.Since, rep.CreatedAt, rep.UpdatedAt = sqldb.FromMicros(since), sqldb.FromMicros(created), sqldb.FromMicros(updated)
	if finished.Valid {
		t := sqldb.FromMicros(finished.Int64)
		rep.FinishedAt = &t
	}
	return rep, nil
}

// Get returns replay id; NotFound when there is none.
func (r *Replays) Get(ctx context.Context, id string) (Replay, error) {
	rep, err := scanReplay(r.db.Reader().QueryRowContext(ctx, `SELECT `+replayCols+` FROM consumer_replays WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Replay{}, errs.E("inbox.Replays.Get", errs.NotFound, "no such replay")
	}
	if err != nil {
		return Replay{}, errs.E("inbox.Replays.Get", errs.Internal, err)
	}
	return rep, nil
}

// Running returns the replays running now, by consumer (an empty list,
// never nil).
func (r *Replays) Running(ctx context.Context) ([]Replay, error) {
	return r.query(ctx, "inbox.Replays.Running", `SELECT `+replayCols+` FROM consumer_replays WHERE status = 'running' ORDER BY consumer`)
}

// List returns up to limit replays (default 20, at most 100), newest
// first, after cursor ("" for the first page), and the next page's cursor
// ("" on the last). An unreadable cursor is validation_failed.
func (r *Replays) List(ctx context.Context, limit int, cursor string) ([]Replay, string, error) {
	const op = "inbox.Replays.List"
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 100)
	q, args := `SELECT `+replayCols+` FROM consumer_replays`, []any{}
	if cursor != "" {
		at, id, ok := parseReplayCursor(cursor)
		if !ok {
			return nil, "", errs.E(op, errs.Invalid, errs.CodeValidation, "invalid cursor",
				[]errs.FieldError{{Field: "cursor", Message: "is not a cursor this list gave"}})
		}
		q += ` WHERE created_at < $1 OR (created_at = $1 AND id < $2)`
		args = append(args, at, id)
	}
	out, err := r.query(ctx, op, q+` ORDER BY created_at DESC, id DESC LIMIT `+strconv.Itoa(limit+1), args...)
	if err != nil || len(out) <= limit {
		return out, "", err
	}
	last := out[limit-1]
	return out[:limit], strconv.FormatInt(sqldb.Micros(last.CreatedAt), 10) + "." + last.ID, nil
}

func parseReplayCursor(c string) (int64, string, bool) {
	for i := 0; i < len(c); i++ {
		if c[i] == '.' {
			at, err := strconv.ParseInt(c[:i], 10, 64)
			return at, c[i+1:], err == nil && i+1 < len(c)
		}
	}
	return 0, "", false
}

func (r *Replays) query(ctx context.Context, op, q string, args ...any) ([]Replay, error) {
	rows, err := r.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	out := []Replay{}
	for rows.Next() {
		rep, err := scanReplay(rows)
		if err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		out = append(out, rep)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	return out, nil
}

// Jobs returns the replay jobs of the Replayable consumers among names
// (the consumers this process runs): one "inbox.replay.<consumer>" job
// each, so that every replay runs where its consumer's handler is and once
// across replicas.
func (r *Replays) Jobs(names ...string) []jobs.Job {
	var out []jobs.Job
	for _, name := range names {
		if _, err := r.lookup(name); err != nil {
			continue
		}
		out = append(out, jobs.Job{Name: "inbox.replay." + name, Every: r.cfg.Every, Timeout: max(r.cfg.Every, 5*time.Minute),
			Run: func(ctx context.Context) (int64, error) { return r.Run(ctx, name) }})
	}
	return out
}

// Run applies up to MaxChunks chunks of consumer's running replay, if it
// has one, and reports how many events the handler ran for: the replay
// job's work. It returns the first chunk's failure (recorded on the
// replay, which a later run tries again).
func (r *Replays) Run(ctx context.Context, consumer string) (int64, error) {
	const op = "inbox.Replays.Run"
	rp, err := r.lookup(consumer)
	if err != nil {
		return 0, err
	}
	var id string
	err = r.db.Reader().QueryRowContext(ctx, `SELECT id FROM consumer_replays WHERE consumer = $1 AND status = 'running'`, consumer).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	var total int64
	for range r.cfg.MaxChunks {
		if ctx.Err() != nil {
			return total, nil
		}
		n, more, err := r.chunk(ctx, rp, id)
		total += int64(n)
		if err != nil || !more {
			return total, err
		}
	}
	return total, nil
}

// errLost: another process moved the replay on first; this try's chunk is
// rolled back.
var errLost = errors.New("inbox: the replay moved on meanwhile")

// chunk applies the next chunk of replay id as one unit: the handler for
// each of its events the consumer handles, then the cursor by a conditional
// update. It reports how many events the handler ran for and whether the
// replay goes on.
func (r *Replays) chunk(ctx context.Context, rp replayer, id string) (int, bool, error) {
	var n int
	var more bool
	err := r.write.Run(ctx, sqldb.Unit{
		Run: func(tx *sqldb.Tx) error {
			n, more = 0, false
			var cursor, until, since int64
			var status string
			if err := tx.QueryRowContext(ctx, `SELECT cursor_id, until_id, since, status FROM consumer_replays WHERE id = $1`, id).
				Scan(&cursor, &until, &since, &status); err != nil {
				return fmt.Errorf("inbox: replay %s: %w", id, err)
			}
			if status != ReplayRunning {
				return nil
			}
			evs, err := r.read(ctx, tx, cursor, until, since)
			if err != nil {
				return err
			}
			for _, e := range evs {
				if !rp.selects(e.e.Type) {
					continue
				}
				if err := call(ctx, rp.c.Handle, tx, e.e); err != nil {
					return fmt.Errorf("event %s (%s): %w", e.e.ID, e.e.Type, err)
				}
				n++
			}
			next, st, finished := until, ReplayDone, any(sqldb.Micros(tx.Now))
			if len(evs) == r.cfg.Chunk {
				next, st, finished, more = evs[len(evs)-1].id, ReplayRunning, nil, true
			}
			res, err := tx.ExecContext(ctx, `UPDATE consumer_replays SET cursor_id = $2, replayed = replayed + $3, status = $4,
				attempts = 0, last_error = '', updated_at = $5, finished_at = $6
				WHERE id = $1 AND cursor_id = $7 AND status = 'running'`, id, next, n, st, sqldb.Micros(tx.Now), finished, cursor)
			if err != nil {
				return fmt.Errorf("inbox: replay cursor: %w", err)
			}
			if k, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("inbox: replay cursor: %w", err)
			} else if k == 0 {
				return errLost
			}
			return nil
		},
		OnFail: func(tx *sqldb.Tx, herr error) error {
			if errors.Is(herr, errLost) {
				return nil
			}
			_, err := tx.ExecContext(ctx, `UPDATE consumer_replays SET attempts = attempts + 1, last_error = $2, updated_at = $3,
				status = CASE WHEN attempts + 1 >= $4 THEN 'failed' ELSE status END,
				finished_at = CASE WHEN attempts + 1 >= $4 THEN $3 ELSE finished_at END
				WHERE id = $1 AND status = 'running'`, id, errText(herr), sqldb.Micros(tx.Now), r.cfg.MaxAttempts)
			return err
		},
	})
	if errors.Is(err, errLost) {
		return 0, false, nil // the other process goes on with it
	}
	if err != nil {
		r.cfg.Logger.Warn("inbox: replay chunk failed; will retry", "consumer", rp.c.Name, "replay", id, "err", err)
		return 0, false, err
	}
	return n, more, nil
}

// outboxEvent is an outbox row read back as its envelope.
type outboxEvent struct {
	id int64
	e  event.Envelope
}

// read returns up to Chunk outbox rows after cursor, up to until, that
// occurred at or after since, in id order.
func (r *Replays) read(ctx context.Context, tx *sqldb.Tx, cursor, until, since int64) ([]outboxEvent, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, event_id, type, schema_version, aggregate_type, aggregate_id, sequence, occurred_at, data
		FROM outbox WHERE id > $1 AND id <= $2 AND occurred_at >= $3 ORDER BY id LIMIT $4`, cursor, until, since, r.cfg.Chunk)
	if err != nil {
		return nil, fmt.Errorf("inbox: replay read: %w", err)
	}
	defer rows.Close()
	var out []outboxEvent
	for rows.Next() {
		var ev outboxEvent
		var at int64
		var data string
		if err := rows.Scan(&ev.id, &ev.e.ID, &ev.e.Type, &ev.e.SchemaVersion, &ev.e.AggregateType, &ev.e.AggregateID,
			&ev.e.Sequence, &at, &data); err != nil {
			return nil, fmt.Errorf("inbox: replay read: %w", err)
		}
		ev.e.OccurredAt, ev.e.Data = sqldb.FromMicros(at), []byte(data)
		out = append(out, ev)
	}
	return out, rows.Err()
}
