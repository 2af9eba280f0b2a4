package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// ServerWrites is what the server's write transactions cost over a run, read
// from its GET /metrics before and after (counted work, not timing): commits
// per paid order is the figure group commit drives down; the writer's busy
// share says how close SQLite's one writer was to its limit.
type ServerWrites struct {
	Commits         float64 `json:"commits"`
	Rollbacks       float64 `json:"rollbacks"`
	BusySeconds     float64 `json:"writer_busy_seconds"`
	Statements      float64 `json:"writer_statements"` // SQLite only
	StmtsPerOrder   float64 `json:"writer_statements_per_paid_order"`
	CommitsPerOrder float64 `json:"commits_per_paid_order"`
	BusyMsPerOrder  float64 `json:"writer_busy_ms_per_paid_order"`
	WriterBusyShare float64 `json:"writer_busy_share"` // busy seconds ÷ seconds from the first loop to the settled read-back
	// ByQuery breaks Statements down by query text, most run first (only
	// when the server runs with --profile-statements).
	ByQuery []QueryCount `json:"writer_statements_by_query,omitempty"`
}

// QueryCount is how often the writer ran one query text over a run.
type QueryCount struct {
	Kind     string  `json:"kind"` // verb and table, e.g. "INSERT orders_orders"
	Query    string  `json:"query"`
	Count    float64 `json:"count"`
	PerOrder float64 `json:"per_paid_order"`
}

// writeCounters are the counters at one moment.
type writeCounters struct {
	commits, rollbacks, busy, statements float64
	byQuery                              map[string]float64
}

// scrapeWrites reads the write counters from the server's /metrics; ok is
// false when the server serves no metrics there (--metrics-addr elsewhere).
func scrapeWrites(ctx context.Context, c *benchClient) (writeCounters, bool) {
	a := c.do(ctx, "GET", "/metrics", nil, "")
	if !a.ok(200) {
		return writeCounters{}, false
	}
	var w writeCounters
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(a.body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var dst *float64
		switch {
		case strings.HasPrefix(line, "mercato_db_writer_statements_by_query_total{"):
			q, v, ok := queryLine(line)
			if ok {
				if w.byQuery == nil {
					w.byQuery = map[string]float64{}
				}
				w.byQuery[q] += v
			}
			continue
		case strings.HasPrefix(line, "mercato_db_write_commits_total"):
			dst = &w.commits
		case strings.HasPrefix(line, "mercato_db_write_rollbacks_total"):
			dst = &w.rollbacks
		case strings.HasPrefix(line, "mercato_db_writer_busy_seconds_total"):
			dst = &w.busy
		case strings.HasPrefix(line, "mercato_db_writer_statements_total"):
			dst = &w.statements
		default:
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		*dst += v
		found++
	}
	return w, found > 0
}

// serverWrites is the difference of two readings, per paid order.
func serverWrites(before, after writeCounters, paid int, seconds float64) *ServerWrites {
	s := &ServerWrites{Commits: after.commits - before.commits, Rollbacks: after.rollbacks - before.rollbacks,
		BusySeconds: after.busy - before.busy, Statements: after.statements - before.statements}
	if paid > 0 {
		s.StmtsPerOrder = s.Statements / float64(paid)
		s.CommitsPerOrder = s.Commits / float64(paid)
		s.BusyMsPerOrder = 1000 * s.BusySeconds / float64(paid)
	}
	if seconds > 0 {
		s.WriterBusyShare = s.BusySeconds / seconds
	}
	for q, n := range after.byQuery {
		if d := n - before.byQuery[q]; d > 0 {
			qc := QueryCount{Kind: statementKind(q), Query: q, Count: d}
			if paid > 0 {
				qc.PerOrder = d / float64(paid)
			}
			s.ByQuery = append(s.ByQuery, qc)
		}
	}
	slices.SortFunc(s.ByQuery, func(a, b QueryCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Query, b.Query))
	})
	return s
}

// queryLine parses one line of mercato_db_writer_statements_by_query_total:
// its query label (unescaped) and its value.
func queryLine(line string) (query string, v float64, ok bool) {
	const key = `query="`
	i := strings.Index(line, key)
	if i < 0 {
		return "", 0, false
	}
	var b strings.Builder
	rest := line[i+len(key):]
	for j := 0; j < len(rest); j++ {
		switch c := rest[j]; {
		case c == '\\' && j+1 < len(rest):
			j++
			if rest[j] == 'n' {
				b.WriteByte('\n')
			} else {
				b.WriteByte(rest[j])
			}
		case c == '"':
			f := strings.Fields(rest[j+1:])
			if len(f) == 0 {
				return "", 0, false
			}
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			return b.String(), v, err == nil
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false
}

// statementKind names what a statement does to which table: its verb and
// the first table it names ("SELECT idem_keys", "SAVEPOINT").
func statementKind(q string) string {
	f := strings.Fields(q)
	if len(f) == 0 {
		return ""
	}
	verb := strings.ToUpper(f[0])
	after := func(word string) string {
		for i, w := range f[:len(f)-1] {
			if strings.EqualFold(w, word) {
				return strings.Trim(f[i+1], "(),;")
			}
		}
		return ""
	}
	var table string
	switch verb {
	case "SELECT", "DELETE", "WITH":
		table = after("FROM")
	case "INSERT", "REPLACE":
		table = after("INTO")
	case "UPDATE":
		if len(f) > 1 {
			table = f[1]
		}
	case "RELEASE", "ROLLBACK":
		verb = "SAVEPOINT"
	}
	return strings.TrimSpace(verb + " " + table)
}

func printServerWrites(w io.Writer, s *ServerWrites) {
	if s == nil {
		return
	}
	fmt.Fprintf(w, "  server writes: %.0f commits (%.2f per paid order), %.0f rollbacks; writer busy %.2f ms per paid order, %.0f%% of the run\n",
		s.Commits, s.CommitsPerOrder, s.Rollbacks, s.BusyMsPerOrder, 100*s.WriterBusyShare)
	if s.Statements > 0 {
		fmt.Fprintf(w, "  statements on the writer: %.1f per paid order\n", s.StmtsPerOrder)
	}
	for _, q := range s.ByQuery {
		fmt.Fprintf(w, "    %6.2f  %-32s %s\n", q.PerOrder, q.Kind, q.Query)
	}
}
