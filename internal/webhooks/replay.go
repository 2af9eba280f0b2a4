package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// Replay since a point in time: POST …/{id}/replay-events {"since": T}
// re-records, for one webhook endpoint or connector, a delivery of every
// event still retained in the outbox (7 days by default) that occurred at or
// after T and that the endpoint's filters (and channels) select — also the
// events it never had a delivery of (it was registered later, or its
// delivered rows were pruned). A delivery already pending or in flight is
// left as it is (it goes out anyway); a delivered or dead one is made
// pending again with a fresh schedule; a missing one is recorded. Each
// request is a replay with its own id, and a delivery remembers the replay
// that re-recorded it last, so applying one replay twice (a retried unit,
// a page sent again with its cursor) re-records nothing twice; a retried
// HTTP request with its Idempotency-Key replays the first answer.
//
// A request scans at most Config.MaxReplay retained events, read outside
// the transaction; when more remain the answer has next_cursor, and the
// next request with {"since": T, "cursor": …} continues the same replay.
// Every request is one unit of the write path, audited.

// ReplayEventsRequest asks for the retained events since a time.
type ReplayEventsRequest struct {
	Since  *time.Time `json:"since" doc:"Re-record every retained event that occurred at or after this time (required)."`
	Cursor string     `json:"cursor,omitempty" maxlen:"100" doc:"A previous answer's next_cursor: continue that replay."`
}

// ReplayedEvents is the answer of a replay since a time.
type ReplayedEvents struct {
	ReplayID   string    `json:"replay_id"`
	Since      time.Time `json:"since"`
	Scanned    int       `json:"scanned" doc:"Retained events read by this request."`
	Recorded   int64     `json:"recorded" doc:"Deliveries this request made pending: new, or delivered or dead before."`
	NextCursor string    `json:"next_cursor,omitempty" doc:"More events remain: send it as cursor to continue."`
}

// replayPage is what a replay request read outside its unit.
type replayPage struct {
	replayID string // "" for a new replay
	since    time.Time
	events   []event.Envelope
	next     int64
}

func badCursor(op string) error {
	return errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
		[]errs.FieldError{{Field: "cursor", Message: "is not a next_cursor of this endpoint's replay since this time"}})
}

// readReplay validates in and reads its page of the outbox (outside any
// transaction).
func (s *Service) readReplay(ctx context.Context, in ReplayEventsRequest) (replayPage, error) {
	const op = "webhooks.ReplayEvents"
	if in.Since == nil {
		return replayPage{}, errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "since", Message: "is required (RFC 3339)"}})
	}
	pg := replayPage{since: in.Since.UTC()}
	var after int64
	if in.Cursor != "" {
		id, n, ok := strings.Cut(in.Cursor, ".")
		var err error
		if after, err = strconv.ParseInt(n, 10, 64); !ok || id == "" || err != nil || after <= 0 {
			return replayPage{}, badCursor(op)
		}
		pg.replayID = id
	}
	r, err := outbox.Since(ctx, s.db, pg.since, after, s.cfg.MaxReplay)
	if err != nil {
		return replayPage{}, err
	}
	pg.events, pg.next = r.Events, r.Next
	return pg, nil
}

// replayEventsTx records pg's deliveries to endpoint id (of fam) in tx.
func (s *Service) replayEventsTx(ctx context.Context, tx *sqldb.Tx, actorID, id string, fam family, pg replayPage) (ReplayedEvents, error) {
	const op = "webhooks.ReplayEvents"
	t, err := loadTarget(ctx, tx, op, id, fam)
	if err != nil {
		return ReplayedEvents{}, err
	}
	out := ReplayedEvents{ReplayID: pg.replayID, Since: pg.since, Scanned: len(pg.events)}
	if out.ReplayID == "" {
		out.ReplayID = event.NewID()
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhooks_replays (id, endpoint_id, since, scanned, recorded,
				requested_by, created_at) VALUES ($1, $2, $3, 0, 0, $4, $5)`,
			out.ReplayID, id, sqldb.Micros(pg.since), actorID, sqldb.Micros(tx.Now)); err != nil {
			return ReplayedEvents{}, errs.E(op, errs.Internal, err)
		}
	} else {
		var since int64
		err := tx.QueryRowContext(ctx, `SELECT since FROM webhooks_replays WHERE id = $1 AND endpoint_id = $2`,
			out.ReplayID, id).Scan(&since)
		if errors.Is(err, sql.ErrNoRows) || err == nil && since != sqldb.Micros(pg.since) {
			return ReplayedEvents{}, badCursor(op)
		}
		if err != nil {
			return ReplayedEvents{}, errs.E(op, errs.Internal, err)
		}
	}
	now := sqldb.Micros(tx.Now)
	for _, e := range pg.events {
		if !t.selects(e.Type) {
			continue
		}
		ch := channelOnce{s: s, tx: tx, e: e}
		if ok, err := ch.admits(ctx, &t); err != nil {
			return ReplayedEvents{}, errs.E(op, errs.Internal, err)
		} else if !ok {
			continue
		}
		body, err := json.Marshal(e)
		if err != nil {
			return ReplayedEvents{}, errs.E(op, errs.Internal, err)
		}
		if err := putEvent(ctx, tx, e, body); err != nil {
			return ReplayedEvents{}, errs.E(op, errs.Internal, err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO webhooks_deliveries (id, endpoint_id, event_id, event_type,
				aggregate_type, aggregate_id, sequence, status, attempts, next_at, created_at, updated_at, replay_id, fifo)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8, $8, $9, $10)
			ON CONFLICT (event_id, endpoint_id) DO UPDATE SET status = 'pending', attempts = 0, fifo = excluded.fifo,
				next_at = excluded.next_at, updated_at = excluded.updated_at, replay_id = excluded.replay_id
			WHERE webhooks_deliveries.status IN ('delivered', 'dead') AND webhooks_deliveries.replay_id <> excluded.replay_id`,
			event.NewID(), id, e.ID, e.Type, e.AggregateType, e.AggregateID, e.Sequence, now, out.ReplayID, boolInt(t.fifo))
		if err != nil {
			return ReplayedEvents{}, errs.E(op, errs.Internal, fmt.Errorf("record: %w", err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return ReplayedEvents{}, errs.E(op, errs.Internal, err)
		}
		out.Recorded += n
	}
	if _, err := tx.ExecContext(ctx, `UPDATE webhooks_replays SET scanned = scanned + $2, recorded = recorded + $3
		WHERE id = $1`, out.ReplayID, out.Scanned, out.Recorded); err != nil {
		return ReplayedEvents{}, errs.E(op, errs.Internal, err)
	}
	if pg.next != 0 {
		out.NextCursor = out.ReplayID + "." + strconv.FormatInt(pg.next, 10)
	}
	if out.Recorded > 0 {
		tx.AfterCommit(s.disp.Wake)
	}
	return out, audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: fam.action("events_replayed"),
		TargetType: fam.target(), TargetID: id, After: out})
}

// ReplayEvents replays the retained events since in.Since to webhook
// endpoint id: the outbox read, then one unit of the write path.
func (s *Service) ReplayEvents(ctx context.Context, actorID, id string, in ReplayEventsRequest) (ReplayedEvents, error) {
	return s.replayEvents(ctx, actorID, id, in, webhooksOnly)
}

// ReplayConnectorEvents is ReplayEvents for connector id.
func (s *Service) ReplayConnectorEvents(ctx context.Context, actorID, id string, in ReplayEventsRequest) (ReplayedEvents, error) {
	return s.replayEvents(ctx, actorID, id, in, connectorsOnly)
}

func (s *Service) replayEvents(ctx context.Context, actorID, id string, in ReplayEventsRequest, fam family) (r ReplayedEvents, err error) {
	pg, err := s.readReplay(ctx, in)
	if err != nil {
		return ReplayedEvents{}, err
	}
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { r, err = s.replayEventsTx(ctx, tx, actorID, id, fam, pg); return err })
	return r, err
}

// loadTarget reads endpoint id's filters (enabled or not) in tx.
func loadTarget(ctx context.Context, tx *sqldb.Tx, op, id string, fam family) (target, error) {
	var events, channels string
	var fifo int
	err := tx.QueryRowContext(ctx, `SELECT events, channels, fifo FROM webhooks_endpoints WHERE id = $1 AND `+fam.where(), id).
		Scan(&events, &channels, &fifo)
	if errors.Is(err, sql.ErrNoRows) {
		return target{}, errs.E(op, errs.NotFound, "no such "+fam.noun())
	}
	if err != nil {
		return target{}, errs.E(op, errs.Internal, err)
	}
	t := target{dueEndpoint: dueEndpoint{id: id, fifo: fifo == 1}}
	var fs []string
	if err := errors.Join(json.Unmarshal([]byte(events), &fs), json.Unmarshal([]byte(channels), &t.channels)); err != nil {
		return target{}, errs.E(op, errs.Internal, err)
	}
	if len(t.channels) == 0 {
		t.channels = nil
	}
	for _, f := range fs {
		if p, err := event.ParsePattern(f); err == nil {
			t.patterns = append(t.patterns, p)
		}
	}
	return t, nil
}
