package sqldb

import (
	"regexp"
	"strings"
	"sync"
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
	byQuery                              atomic.Pointer[queryCounts] // nil unless ProfileStatements
}

// queryCounts counts statements by query text.
type queryCounts struct {
	mu sync.Mutex
	n  map[string]int64 // guarded by mu
}

// statement counts one statement run on the writer.
func (w *writeStats) statement(query string) {
	w.statements.Add(1)
	if q := w.byQuery.Load(); q != nil {
		q.mu.Lock()
		q.n[query]++
		q.mu.Unlock()
	}
}

// ProfileStatements makes db count the statements its SQLite writer runs by
// query text too, from now on (a benchmark's breakdown of Statements; it
// costs a map update per statement, nothing while off). A no-op on
// PostgreSQL, where statements are not counted.
func (db *DB) ProfileStatements() {
	if db.engine == SQLite {
		db.stats.byQuery.CompareAndSwap(nil, &queryCounts{n: map[string]int64{}})
	}
}

// StatementsByQuery returns the writer's statements counted since
// ProfileStatements, by QueryLabel; nil when not profiling.
func (db *DB) StatementsByQuery() map[string]int64 {
	q := db.stats.byQuery.Load()
	if q == nil {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string]int64, len(q.n))
	for text, n := range q.n {
		out[QueryLabel(text)] += n
	}
	return out
}

// QueryLabelLength is how much of a query's text StatementsByQuery keeps.
const QueryLabelLength = 120

// Placeholder lists: "?, ?, ?" (or "$4, $5") is "…", and "(…), (…)" is "(…)…",
// so that the IN lists and multi-row forms of one statement count together.
var (
	placeholderList = regexp.MustCompile(`(\?|\$\d+)(, (\?|\$\d+))+`)
	tupleList       = regexp.MustCompile(`\((\?|\$\d+|…)\)(, \((\?|\$\d+|…)\))+`)
)

// QueryLabel is query as StatementsByQuery names it: its runs of white space
// made one space, its lists of placeholders (IN lists, multi-row VALUES)
// shortened to one, cut after QueryLabelLength bytes.
func QueryLabel(query string) string {
	s := strings.Join(strings.Fields(query), " ")
	s = placeholderList.ReplaceAllString(s, "…")
	s = tupleList.ReplaceAllString(s, "(…)…")
	if len(s) > QueryLabelLength {
		s = strings.ToValidUTF8(s[:QueryLabelLength], "") + "…"
	}
	return s
}

// byQueryCollector exports StatementsByQuery.
type byQueryCollector struct {
	db   *DB
	desc *prometheus.Desc
}

func (c byQueryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c byQueryCollector) Collect(ch chan<- prometheus.Metric) {
	for q, n := range c.db.StatementsByQuery() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), q)
	}
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
// mercato_db_writer_statements_total and (while ProfileStatements is on)
// mercato_db_writer_statements_by_query_total{query}.
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
			func() float64 { return float64(db.stats.statements.Load()) }),
			byQueryCollector{db: db, desc: prometheus.NewDesc("mercato_db_writer_statements_by_query_total",
				"Statements run on SQLite's writer connection by query text (only while profiling).", []string{"query"}, labels)})
	}
	return cs
}
