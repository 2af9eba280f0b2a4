package outbox

import (
	"context"
	"encoding/json"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
)

// Retained is a page of the events still in the outbox (unpublished, or
// published within the relay's retention period) that occurred at or after
// a point in time, in outbox order (per aggregate, sequence order).
type Retained struct {
	Events []event.Envelope
	// Next is the cursor of the following page; 0 on the last page.
	Next int64
}

// Since reads up to limit retained events that occurred at or after since,
// after the cursor after (0: from the first), on the reader pool: what a
// replay of "every event since then" to one consumer or endpoint reads.
// Events older than the retention period are gone and not reported.
func Since(ctx context.Context, db *sqldb.DB, since time.Time, after int64, limit int) (Retained, error) {
	const op = "outbox.Since"
	rows, err := db.Reader().QueryContext(ctx, `SELECT id, event_id, type, schema_version, aggregate_type,
			aggregate_id, sequence, occurred_at, data FROM outbox
		WHERE id > $1 AND occurred_at >= $2 ORDER BY id LIMIT $3`, after, sqldb.Micros(since), limit+1)
	if err != nil {
		return Retained{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	var out Retained
	var last int64
	for rows.Next() {
		var id, at int64
		var e event.Envelope
		var data string
		if err := rows.Scan(&id, &e.ID, &e.Type, &e.SchemaVersion, &e.AggregateType, &e.AggregateID,
			&e.Sequence, &at, &data); err != nil {
			return Retained{}, errs.E(op, errs.Internal, err)
		}
		if len(out.Events) == limit {
			out.Next = last
			break
		}
		e.OccurredAt, e.Data = sqldb.FromMicros(at), json.RawMessage(data)
		out.Events = append(out.Events, e)
		last = id
	}
	if err := rows.Err(); err != nil {
		return Retained{}, errs.E(op, errs.Internal, err)
	}
	return out, nil
}
