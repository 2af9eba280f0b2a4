package sqldb

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// WriteStats counts a DB's write transactions since it was opened: how many
// committed and rolled back, and how long they held a writer connection in
// all (from BEGIN to the end of COMMIT or ROLLBACK). On SQLite, with its one
// writer, Busy over a run's wall time is how loaded the writer was; a
// benchmark divides the counts by its units of work (commits per order).
//
// Statements counts the statements run on SQLite's writer connection
// (inside write transactions and out of them); it stays 0 on PostgreSQL.
type WriteStats struct {
	Commits, Rollbacks int64
	Busy               time.Duration
	Statements         int64
}

// Sub returns s minus an earlier reading.
func (s WriteStats) Sub(earlier WriteStats) WriteStats {
	return WriteStats{Commits: s.Commits - earlier.Commits, Rollbacks: s.Rollbacks - earlier.Rollbacks,
		Busy: s.Busy - earlier.Busy, Statements: s.Statements - earlier.Statements}
}

type writeStats struct {
	commits, rollbacks, busy, statements atomic.Int64
}

func (w *writeStats) ended(began time.Time, committed bool) {
	if w == nil {
		return
	}
	if committed {
		w.commits.Add(1)
	} else {
		w.rollbacks.Add(1)
	}
	w.busy.Add(int64(time.Since(began)))
}

// WriteStats reads db's write-transaction counters.
func (db *DB) WriteStats() WriteStats {
	return WriteStats{Commits: db.stats.commits.Load(), Rollbacks: db.stats.rollbacks.Load(),
		Busy: time.Duration(db.stats.busy.Load()), Statements: db.stats.statements.Load()}
}

// Collectors returns db's write-transaction counters as Prometheus metrics:
// mercato_db_write_commits_total, mercato_db_write_rollbacks_total,
// mercato_db_writer_busy_seconds_total and, on SQLite,
// mercato_db_writer_statements_total.
func (db *DB) Collectors() []prometheus.Collector {
	labels := prometheus.Labels{"engine": string(db.engine)}
	cs := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mercato_db_write_commits_total",
			Help: "Write transactions committed.", ConstLabels: labels},
			func() float64 { return float64(db.stats.commits.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mercato_db_write_rollbacks_total",
			Help: "Write transactions rolled back.", ConstLabels: labels},
			func() float64 { return float64(db.stats.rollbacks.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mercato_db_writer_busy_seconds_total",
			Help: "Time write transactions held a writer connection, BEGIN to COMMIT or ROLLBACK.", ConstLabels: labels},
			func() float64 { return time.Duration(db.stats.busy.Load()).Seconds() }),
	}
	if db.engine == SQLite {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mercato_db_writer_statements_total",
			Help: "Statements run on SQLite's writer connection.", ConstLabels: labels},
			func() float64 { return float64(db.stats.statements.Load()) }))
	}
	return cs
}
