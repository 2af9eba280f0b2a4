package inbox

import (
	"context"
	"database/sql"
	"time"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// SyncStatus is the sync monitor's report (API.md GET /api/v1/admin/sync).
type SyncStatus struct {
	Consumers     []ConsumerStatus `json:"consumers"`
	OutboxPending int64            `json:"outbox_pending"`
	DeadLetters   int64            `json:"dead_letters"`
}

// ConsumerStatus is one consumer's counts. Pending is the events not yet
// applied (retrying included); Failed counts failed handler attempts.
type ConsumerStatus struct {
	Name            string     `json:"name"`
	Pending         int64      `json:"pending"`
	Processed       int64      `json:"processed"`
	Failed          int64      `json:"failed"`
	LastProcessedAt *time.Time `json:"last_processed_at"`
}

// Monitor reports the sync status from the database and the bus. It needs no
// running consumer, so a process that only serves the API can report on
// consumers that run elsewhere. Safe for concurrent use.
type Monitor struct {
	db  *sqldb.DB
	sub bus.Subscriber
}

// NewMonitor returns a monitor of db's consumers, whose backlogs sub knows.
func NewMonitor(db *sqldb.DB, sub bus.Subscriber) *Monitor { return &Monitor{db: db, sub: sub} }

// Status reports every consumer that has ever run (by name), the outbox
// backlog and the number of dead letters. Lists are empty, never nil.
func (m *Monitor) Status(ctx context.Context) (SyncStatus, error) {
	const op = "inbox.Monitor.Status"
	st := SyncStatus{Consumers: []ConsumerStatus{}}
	rows, err := m.db.Reader().QueryContext(ctx,
		`SELECT consumer, processed, failed, last_processed_at FROM consumer_stats ORDER BY consumer`)
	if err != nil {
		return st, errs.E(op, err)
	}
	for rows.Next() {
		var c ConsumerStatus
		var last sql.NullInt64
		if err := rows.Scan(&c.Name, &c.Processed, &c.Failed, &last); err != nil {
			rows.Close()
			return st, errs.E(op, err)
		}
		if last.Valid {
			t := sqldb.FromMicros(last.Int64)
			c.LastProcessedAt = &t
		}
		st.Consumers = append(st.Consumers, c)
	}
	if err := rows.Close(); err != nil {
		return st, errs.E(op, err)
	}
	for i := range st.Consumers {
		n, err := m.sub.Pending(ctx, st.Consumers[i].Name)
		if err != nil {
			return st, errs.E(op, errs.Unavailable, "the bus does not answer", err)
		}
		st.Consumers[i].Pending = n
	}
	if st.OutboxPending, err = outbox.Pending(ctx, m.db); err != nil {
		return st, errs.E(op, err)
	}
	if st.DeadLetters, err = NewDeadLetters(m.db).Count(ctx); err != nil {
		return st, errs.E(op, err)
	}
	return st, nil
}
