package inbox

import (
	"context"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// ConsumerState is where one event stands with one consumer.
type ConsumerState struct {
	Consumer string `json:"consumer"`
	// Status is applied (its effect committed), retrying (its handler
	// failed; it comes back) or dead (parked in the dead letters).
	Status   string `json:"status"`
	At       string `json:"at" doc:"RFC 3339: when it was applied, last failed or was parked."`
	Attempts int    `json:"attempts,omitempty"`
	Error    string `json:"error,omitempty" doc:"The handler's last error (for operators)."`
}

// EventStates reports, for each of eventIDs, every consumer that applied it,
// is retrying it or parked it (an event no consumer has seen yet has no
// entry; inbox rows are pruned after their retention). Three queries, each
// on its table's (consumer, event_id) key.
func (m *Monitor) EventStates(ctx context.Context, eventIDs []string) (map[string][]ConsumerState, error) {
	const op = "inbox.EventStates"
	out := map[string][]ConsumerState{}
	if len(eventIDs) == 0 {
		return out, nil
	}
	args := sqldb.Args(eventIDs)
	// Both key columns given, so each lookup is the primary key's
	// (consumer, event_id): the consumers are the few that ever ran.
	in := "(" + sqldb.Placeholders(1, len(eventIDs)) + ") AND consumer IN (SELECT consumer FROM consumer_stats)"
	queries := []struct{ status, q string }{
		{"applied", `SELECT event_id, consumer, processed_at, 0, '' FROM inbox WHERE event_id IN ` + in},
		{"retrying", `SELECT event_id, consumer, last_failed_at, attempts, last_error FROM consumer_failures WHERE event_id IN ` + in},
		{"dead", `SELECT event_id, consumer, parked_at, attempts, last_error FROM dead_letters WHERE event_id IN ` + in},
	}
	for _, q := range queries {
		rows, err := m.db.Reader().QueryContext(ctx, q.q+` ORDER BY consumer`, args...)
		if err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		for rows.Next() {
			var id string
			var at int64
			s := ConsumerState{Status: q.status}
			if err := rows.Scan(&id, &s.Consumer, &at, &s.Attempts, &s.Error); err != nil {
				rows.Close()
				return nil, errs.E(op, errs.Internal, err)
			}
			s.At = sqldb.FromMicros(at).Format("2006-01-02T15:04:05.999999Z07:00")
			out[id] = append(out[id], s)
		}
		err = rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
	}
	return out, nil
}
