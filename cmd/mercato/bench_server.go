package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
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
}

// writeCounters are the three counters at one moment.
type writeCounters struct{ commits, rollbacks, busy, statements float64 }

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
	return s
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
}
