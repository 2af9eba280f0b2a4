package inbox

import (
	"context"
	"testing"

	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// TestEventStates: an event's state per consumer — applied (inbox row),
// retrying (a failure row, with its attempts and error) and dead (parked) —
// for the consumers that ever ran; other events are not reported.
func TestEventStates(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		for _, q := range []string{
			`INSERT INTO consumer_stats (consumer) VALUES ('a'), ('b'), ('c')`,
			`INSERT INTO inbox (consumer, event_id, processed_at) VALUES ('a', 'e1', 1000000), ('a', 'e2', 1000000), ('b', 'other', 1)`,
			`INSERT INTO consumer_failures (consumer, event_id, aggregate_type, aggregate_id, sequence, attempts, last_error, first_failed_at, last_failed_at)
				VALUES ('b', 'e1', 'order', 'o1', 1, 3, 'boom', 1, 2000000)`,
			`INSERT INTO dead_letters (consumer, event_id, envelope, attempts, last_error, parked_at) VALUES ('c', 'e1', '{}', 8, 'gave up', 3000000)`,
		} {
			if _, err := db.Writer().ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		got, err := NewMonitor(db, nil).EventStates(ctx, []string{"e1", "e2", "e3"})
		if err != nil {
			t.Fatal(err)
		}
		e1 := got["e1"]
		if len(e1) != 3 || e1[0] != (ConsumerState{Consumer: "a", Status: "applied", At: "1970-01-01T00:00:01Z"}) ||
			e1[1] != (ConsumerState{Consumer: "b", Status: "retrying", At: "1970-01-01T00:00:02Z", Attempts: 3, Error: "boom"}) ||
			e1[2] != (ConsumerState{Consumer: "c", Status: "dead", At: "1970-01-01T00:00:03Z", Attempts: 8, Error: "gave up"}) {
			t.Errorf("e1: %+v", e1)
		}
		if len(got["e2"]) != 1 || len(got["e3"]) != 0 {
			t.Errorf("e2 %+v, e3 %+v", got["e2"], got["e3"])
		}
	}, Migrations(), outbox.Migrations())
}
