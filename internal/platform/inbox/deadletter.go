package inbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
)

// DeadLetter is an event a consumer parked after its last failed attempt.
type DeadLetter struct {
	ID       string `json:"id"`
	Consumer string `json:"consumer"`
	// Event is the parked envelope; for a message that was not an envelope,
	// only its ID is set.
	Event    event.Envelope `json:"event"`
	Attempts int            `json:"attempts"`
	// LastError is the handler's last error text, for operators' logs and
	// tools: it may hold internal detail and is never sent to clients.
	LastError string    `json:"-"`
	ParkedAt  time.Time `json:"parked_at"`
}

// DeadLetters lists parked events and replays those of the consumers it
// knows. Safe for concurrent use.
type DeadLetters struct {
	db        *sqldb.DB
	consumers map[string]Consumer
}

// NewDeadLetters returns the dead-letter list of db; it can replay the
// events of consumers (none: list only).
func NewDeadLetters(db *sqldb.DB, consumers ...Consumer) *DeadLetters {
	m := make(map[string]Consumer, len(consumers))
	for _, c := range consumers {
		m[c.Name] = c
	}
	return &DeadLetters{db: db, consumers: m}
}

// List returns up to limit dead letters (default 20, at most 100), oldest
// first, after cursor ("" for the first page), and the cursor of the next
// page ("" on the last page). An unreadable cursor is an Invalid error.
func (d *DeadLetters) List(ctx context.Context, limit int, cursor string) ([]DeadLetter, string, error) {
	const op = "inbox.DeadLetters.List"
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 100)
	var after int64
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n < 0 {
			return nil, "", errs.E(op, errs.Invalid, errs.CodeValidation, "invalid cursor",
				[]errs.FieldError{{Field: "cursor", Message: "is not a cursor this list gave"}})
		}
		after = n
	}
	rows, err := d.db.Reader().QueryContext(ctx, `SELECT id, consumer, event_id, envelope, attempts, last_error, parked_at
		FROM dead_letters WHERE id > $1 ORDER BY id LIMIT $2`, after, limit+1)
	if err != nil {
		return nil, "", errs.E(op, err)
	}
	defer rows.Close()
	out := []DeadLetter{}
	var ids []int64
	for rows.Next() {
		var id int64
		var dl DeadLetter
		var eventID, envelope string
		var parked int64
		if err := rows.Scan(&id, &dl.Consumer, &eventID, &envelope, &dl.Attempts, &dl.LastError, &parked); err != nil {
			return nil, "", errs.E(op, err)
		}
		dl.ID, dl.ParkedAt = strconv.FormatInt(id, 10), sqldb.FromMicros(parked)
		if json.Unmarshal([]byte(envelope), &dl.Event) != nil {
			dl.Event = event.Envelope{}
		}
		dl.Event.ID = eventID
		out = append(out, dl)
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, "", errs.E(op, err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(ids[limit-1], 10)
	}
	return out, next, nil
}

// Count reports how many events are parked.
func (d *DeadLetters) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := d.db.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM dead_letters`).Scan(&n); err != nil {
		return 0, errs.E("inbox.DeadLetters.Count", err)
	}
	return n, nil
}

// Replay applies the parked event id through its consumer's handler, in one
// transaction, without the ordering gate (the consumer has moved past it):
// on success the event is recorded in the inbox and leaves the dead letters;
// an event the inbox already holds just leaves them. When the handler fails
// again the failure is recorded on the dead letter and Replay returns a
// Conflict error. NotFound: no such dead letter. Unavailable: its consumer
// does not run in this process.
func (d *DeadLetters) Replay(ctx context.Context, id string) error {
	const op = "inbox.DeadLetters.Replay"
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return errs.E(op, errs.NotFound, "no such dead letter")
	}
	var herr error
	err = d.db.InTx(ctx, func(tx *sqldb.Tx) error {
		herr = nil
		var consumer, eventID, envelope string
		err := tx.QueryRowContext(ctx, `SELECT consumer, event_id, envelope FROM dead_letters WHERE id = $1`, n).
			Scan(&consumer, &eventID, &envelope)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.E(op, errs.NotFound, "no such dead letter")
		}
		if err != nil {
			return err
		}
		c, ok := d.consumers[consumer]
		if !ok {
			return errs.E(op, errs.Unavailable, "the consumer of this event does not run in this process")
		}
		var done int
		err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM inbox WHERE consumer = $1 AND event_id = $2`,
			consumer, eventID).Scan(&done)
		if err != nil {
			return err
		}
		if done == 0 {
			var e event.Envelope
			if err := json.Unmarshal([]byte(envelope), &e); err != nil {
				herr = errors.New("malformed envelope: " + err.Error())
			} else {
				herr = tx.Savepoint(ctx, func() error { return call(ctx, c.Handle, tx, e) })
			}
			if herr != nil {
				_, err := tx.ExecContext(ctx, `UPDATE dead_letters SET attempts = attempts + 1, last_error = $1
					WHERE id = $2`, errText(herr), n)
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO inbox (consumer, event_id, processed_at) VALUES ($1, $2, $3)`,
				consumer, eventID, sqldb.Micros(tx.Now)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE consumer_stats SET processed = processed + 1,
				last_processed_at = $1 WHERE consumer = $2`, sqldb.Micros(tx.Now), consumer); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM dead_letters WHERE id = $1`, n)
		return err
	})
	if err != nil {
		return errs.E(op, err)
	}
	if herr != nil {
		return errs.E(op, errs.Conflict, "the handler failed again; the event stays parked", herr)
	}
	return nil
}
