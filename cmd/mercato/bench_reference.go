package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"mercato/internal/platform/sqldb"
)

// referenceFlags name the database a reference is measured on: the one the
// server runs on (its --data-dir or --database-url).
type referenceFlags struct {
	dataDir     string
	databaseURL string
	clients     int
	duration    time.Duration
}

func (r *referenceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.dataDir, "data-dir", "", "the server's SQLite data directory: measure the reference there (a scratch file beside mercato.db)")
	fs.StringVar(&r.databaseURL, "database-url", "", "the server's PostgreSQL URL: measure the reference there (a scratch table; pgbench -N when on PATH)")
	fs.IntVar(&r.clients, "reference-clients", 0, "PostgreSQL reference clients (default: as many as buyers)")
	fs.DurationVar(&r.duration, "reference-duration", 5*time.Second, "how long each reference measurement runs")
}

// enabled reports whether a database to measure was named.
func (r referenceFlags) enabled() bool { return r.dataDir != "" || r.databaseURL != "" }

// Reference is the database's own rate at the server's durability, measured
// in the same run as the figures it is the yardstick of.
type Reference struct {
	Engine        string  `json:"engine"`
	What          string  `json:"what"`
	Clients       int     `json:"clients"`
	Seconds       float64 `json:"seconds"`
	Commits       int64   `json:"commits"`
	CommitsPerSec float64 `json:"commits_per_sec"`
	// PgbenchTPS is pgbench -N's tps at Clients (PostgreSQL, pgbench on PATH).
	PgbenchTPS  float64 `json:"pgbench_tps,omitempty"`
	PgbenchNote string  `json:"pgbench_note,omitempty"`
}

const referenceSynopsis = `Measure the database's one-row-one-commit rate at the server's durability:
on SQLite (--data-dir) a single writer with synchronous=FULL committing one
INSERT per transaction, in a scratch file beside the server's database; on
PostgreSQL (--database-url) --reference-clients clients each running
INSERT+COMMIT in a scratch table, then pgbench -N at the same client count
in a scratch schema when pgbench is on PATH. Everything scratch is removed.`

func cmdBenchReference(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench reference (--data-dir D | --database-url U) [flags]", referenceSynopsis)
	var r referenceFlags
	r.register(fs)
	jsonOut := fs.Bool("json", false, "print the result as JSON on stdout")
	if done, err := helpOK(parse(fs, args, getenv, stdout)); done {
		return err
	}
	if !r.enabled() {
		return usagef(fs, "give --data-dir or --database-url")
	}
	if r.clients <= 0 {
		r.clients = 32
	}
	ref, err := measureReference(ctx, r, stderr)
	if err != nil {
		return err
	}
	if *jsonOut {
		return writeJSON(stdout, ref)
	}
	printReference(stdout, ref)
	return nil
}

func printReference(w io.Writer, ref *Reference) {
	fmt.Fprintf(w, "reference (%s): %s\n", ref.Engine, ref.What)
	fmt.Fprintf(w, "  %d commits in %.1fs at %d client(s): %.0f commits/s\n", ref.Commits, ref.Seconds, ref.Clients, ref.CommitsPerSec)
	if ref.PgbenchTPS > 0 {
		fmt.Fprintf(w, "  pgbench -N at %d clients: %.0f tps\n", ref.Clients, ref.PgbenchTPS)
	}
	if ref.PgbenchNote != "" {
		fmt.Fprintf(w, "  pgbench: %s\n", ref.PgbenchNote)
	}
}

// measureReference runs the reference that r names.
func measureReference(ctx context.Context, r referenceFlags, log io.Writer) (*Reference, error) {
	if r.duration <= 0 {
		r.duration = 5 * time.Second
	}
	if r.databaseURL != "" {
		return referencePostgres(ctx, r, log)
	}
	return referenceSQLite(ctx, r)
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// referenceSQLite commits one row per transaction through the same opening
// (pragmas, synchronous=FULL, one writer) as the server's, in a scratch
// database beside the server's file, on the same file system.
func referenceSQLite(ctx context.Context, r referenceFlags) (*Reference, error) {
	dir := filepath.Join(r.dataDir, "bench-reference-"+randomSuffix())
	defer os.RemoveAll(dir)
	db, err := sqldb.Open(ctx, sqldb.Config{DataDir: dir})
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	defer db.Close()
	if _, err := db.Writer().ExecContext(ctx, `CREATE TABLE bench_reference (id INTEGER PRIMARY KEY, v BIGINT NOT NULL, at BIGINT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	start := time.Now()
	var n int64
	for time.Since(start) < r.duration && ctx.Err() == nil {
		if err := insertCommit(ctx, db, `INSERT INTO bench_reference (v, at) VALUES ($1, $2)`, n); err != nil {
			return nil, fmt.Errorf("reference: %w", err)
		}
		n++
	}
	el := time.Since(start).Seconds()
	return &Reference{Engine: "sqlite", What: "one INSERT per transaction, one writer, synchronous=FULL (WAL)",
		Clients: 1, Seconds: el, Commits: n, CommitsPerSec: float64(n) / el}, nil
}

// insertCommit runs BEGIN; INSERT; COMMIT on the writer.
func insertCommit(ctx context.Context, db *sqldb.DB, insert string, v int64) error {
	tx, err := db.Writer().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, insert, v, time.Now().UnixMicro()); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// referencePostgres runs r.clients clients each committing one INSERT per
// transaction into a scratch table, then pgbench -N at the same count.
func referencePostgres(ctx context.Context, r referenceFlags, log io.Writer) (*Reference, error) {
	db, err := sqldb.Open(ctx, sqldb.Config{URL: r.databaseURL, MaxConns: r.clients + 1})
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	defer db.Close()
	table := "bench_reference_" + randomSuffix()
	if _, err := db.Writer().ExecContext(ctx, `CREATE TABLE `+table+` (id BIGSERIAL PRIMARY KEY, v BIGINT NOT NULL, at BIGINT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	defer db.Writer().ExecContext(context.WithoutCancel(ctx), `DROP TABLE `+table)
	insert := `INSERT INTO ` + table + ` (v, at) VALUES ($1, $2)`
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range r.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < r.duration && ctx.Err() == nil {
				if err := insertCommit(ctx, db, insert, n.Load()); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	if firstErr != nil {
		return nil, fmt.Errorf("reference: %w", firstErr)
	}
	ref := &Reference{Engine: "postgres", What: "INSERT+COMMIT per transaction, each client in a loop",
		Clients: r.clients, Seconds: el, Commits: n.Load(), CommitsPerSec: float64(n.Load()) / el}
	ref.PgbenchTPS, ref.PgbenchNote = runPgbench(ctx, db, r, log)
	return ref, nil
}

// libpqURL is u without the parameters libpq does not know but pgx takes
// as run-time parameters (search_path): pgbench gets its schema from
// PGOPTIONS.
func libpqURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	q.Del("search_path")
	p.RawQuery = q.Encode()
	return p.String()
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// runPgbench runs `pgbench -N` (no updates of tellers and branches) with
// r.clients clients for r.duration, its tables in a scratch schema (named by
// PGOPTIONS' search_path) that is dropped afterwards. It answers the tps, or
// a note saying why there is none.
func runPgbench(ctx context.Context, db *sqldb.DB, r referenceFlags, log io.Writer) (float64, string) {
	bin, err := exec.LookPath("pgbench")
	if err != nil {
		return 0, "pgbench is not on PATH: no pgbench -N figure"
	}
	schema := "mercato_pgbench_" + randomSuffix()
	if _, err := db.Writer().ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		return 0, fmt.Sprintf("scratch schema: %v", err)
	}
	defer db.Writer().ExecContext(context.WithoutCancel(ctx), `DROP SCHEMA `+schema+` CASCADE`)
	env := append(os.Environ(), "PGOPTIONS=-c search_path="+schema)
	connURL := libpqURL(r.databaseURL)
	pg := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, bin, append(args, connURL)...)
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	if out, err := pg("-i", "-q", "-s", "1"); err != nil {
		return 0, fmt.Sprintf("pgbench -i failed: %v: %s", err, truncate(out, 300))
	}
	secs := max(1, int(r.duration.Round(time.Second)/time.Second))
	threads := min(r.clients, runtime.GOMAXPROCS(0))
	out, err := pg("-N", "-n", "-c", strconv.Itoa(r.clients), "-j", strconv.Itoa(threads), "-T", strconv.Itoa(secs))
	if err != nil {
		return 0, fmt.Sprintf("pgbench -N failed: %v: %s", err, truncate(out, 300))
	}
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		return 0, "pgbench printed no tps: " + truncate(out, 300)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	return tps, ""
}
