// Package sqldb opens mercato's database on one of two engines — embedded
// SQLite (the default) or PostgreSQL — and runs work in transactions that
// carry a fixed Now.
//
// Conventions every store follows so that one SQL text serves both engines:
//   - placeholders are $1, $2 … (both drivers bind them);
//   - times are BIGINT unix microseconds in UTC, columns named *_at
//     (use Micros and FromMicros); never now() in SQL;
//   - booleans are INTEGER 0/1 on both engines when a column must compare in
//     shared SQL, or BOOLEAN where only per-engine SQL touches it;
//   - case-insensitive matching is lower(x) = lower($1).
//
// SQLite runs in WAL mode with synchronous=FULL (a committed transaction is
// on disk), foreign keys on, one writer connection that begins IMMEDIATE
// transactions, and a pool of read-only readers.
//
// # The write path
//
// Every state-changing use case is a Unit run by a Committer: DB.Run (a
// transaction per unit) or the group-commit batcher (many units per
// transaction). Both go through RunBatch, the one place that decides what a
// failing unit rolls back (its writes alone; its OnFail commits), contains
// panics, and tries a batch again when PostgreSQL reports a deadlock or
// serialization failure. Units of one transaction share state through
// Tx.Local, Tx.BeforeCommit and Tx.OnRollback, which is how many
// reservations of one hot row become one UPDATE (see docs/writepath.md).
//
// # Lock order
//
// On PostgreSQL two batches commit at once, and each holds the row locks of
// all its units until COMMIT, so a deadlock needs only two batches that
// lock two rows in opposite orders. To keep them rare:
//   - inside a unit, lock rows in the canonical order: module, then table,
//     then key ascending (the outbox sorts a transaction's aggregates for
//     this reason);
//   - a row that many units of a batch touch (a hot SKU) is read once per
//     transaction by the first unit through Tx.Local (FOR UPDATE), and
//     written once, by a BeforeCommit hook; a module that merges several such
//     rows writes them in one hook, sorted by key;
//   - no unit waits for anything outside the database while it holds locks.
//
// Units of one batch still take their first locks in arrival order, so the
// order across a batch cannot be total: a deadlock that happens anyway is
// retried (Retry), at the cost of PostgreSQL's deadlock_timeout (1 s by
// default) for the batch that loses.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Engine names a storage engine.
type Engine string

// The engines.
const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// Config says which database to open.
type Config struct {
	// URL selects PostgreSQL when it starts with postgres:// or postgresql://.
	// Empty means SQLite under DataDir.
	URL string
	// DataDir holds mercato.db when URL is empty.
	DataDir string
	// MaxConns caps PostgreSQL connections (default 16) and SQLite readers
	// (default 2×GOMAXPROCS, at least 4).
	MaxConns int
	// Synchronous overrides SQLite's synchronous pragma ("FULL" by default).
	// Only benchmarks that measure the cost of durability change it.
	Synchronous string
}

// DB is an open database: a writer and a reader pool (the same pool on
// PostgreSQL). Safe for concurrent use.
type DB struct {
	engine Engine
	w, r   *sql.DB
	url    string // PostgreSQL URL (for LISTEN/NOTIFY and advisory-lock connections)
	path   string // SQLite file
	now    func() time.Time
	retry  Retry
	stats  writeStats
}

// Open opens (creating if needed) the database that cfg names and checks
// that it answers.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	db, err := open(cfg)
	if err != nil {
		return nil, err
	}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqldb: ping %s: %w", db.engine, err)
	}
	return db, nil
}

func open(cfg Config) (*DB, error) {
	if IsPostgresURL(cfg.URL) {
		n := cfg.MaxConns
		if n <= 0 {
			n = 16
		}
		p, err := sql.Open("pgx", cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("sqldb: open postgres: %w", err)
		}
		p.SetMaxOpenConns(n)
		p.SetMaxIdleConns(n)
		p.SetConnMaxIdleTime(5 * time.Minute)
		return &DB{engine: Postgres, w: p, r: p, url: cfg.URL, now: time.Now}, nil
	}
	if cfg.URL != "" {
		return nil, fmt.Errorf("sqldb: unsupported database URL scheme (want postgres://)")
	}
	dir := cfg.DataDir
	if dir == "" {
		dir = "data"
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("sqldb: data dir: %w", err)
	}
	path := filepath.Join(dir, "mercato.db")
	sync := cfg.Synchronous
	if sync == "" {
		sync = "FULL"
	}
	base := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(10000)" +
		"&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)&_pragma=synchronous(" + sync + ")"
	db := &DB{engine: SQLite, path: path, now: time.Now}
	w := openSQLite(base+"&_txlock=immediate", &db.stats)
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// Create the file and switch it to WAL before readers open it.
	if _, err := w.Exec("SELECT 1"); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqldb: open sqlite: %w", err)
	}
	n := cfg.MaxConns
	if n <= 0 {
		n = max(4, 2*runtime.GOMAXPROCS(0))
	}
	r := openSQLite(base+"&_pragma=query_only(1)", nil)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	db.w, db.r = w, r
	return db, nil
}

// IsPostgresURL reports whether u names a PostgreSQL database.
func IsPostgresURL(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// Engine reports which engine db runs on.
func (db *DB) Engine() Engine { return db.engine }

// URL is the PostgreSQL connection URL ("" on SQLite), for the few parts
// (LISTEN/NOTIFY, session advisory locks) that need a dedicated connection.
func (db *DB) URL() string { return db.url }

// Path is the SQLite database file ("" on PostgreSQL).
func (db *DB) Path() string { return db.path }

// Reader is the pool for reads outside a transaction. On SQLite it sees every
// committed write (WAL), so reads after a write are read-your-writes.
func (db *DB) Reader() *sql.DB { return db.r }

// Writer is the pool writes go through (one connection on SQLite). Prefer InTx.
func (db *DB) Writer() *sql.DB { return db.w }

// SetClock replaces the clock that stamps transactions (tests only).
func (db *DB) SetClock(now func() time.Time) { db.now = now }

// Now reads db's clock, in UTC.
func (db *DB) Now() time.Time { return db.now().UTC() }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return err
	}
	if db.r != db.w {
		return db.r.PingContext(ctx)
	}
	return nil
}

// Close closes both pools.
func (db *DB) Close() error {
	err := db.w.Close()
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	return err
}

// Micros converts t to the stored form of a time: unix microseconds.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// FromMicros converts a stored time back, in UTC. Zero stays the zero time.
func FromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// NullMicros converts a nullable stored time; NULL is the zero time.
func NullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return FromMicros(v.Int64)
}

// IsUniqueViolation reports whether err is a unique or primary-key
// constraint violation on either engine.
func IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// IsForeignKeyViolation reports whether err is a foreign-key violation.
func IsForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}
