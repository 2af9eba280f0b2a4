package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"reflect"
	"strings"
	"unicode"

	"modernc.org/sqlite"
)

// SQLite statement cache.
//
// database/sql hands a query with arguments to the driver's ExecContext or
// QueryContext, and the SQLite driver parses and plans it again on every
// call, then throws the statement away: on the checkout path that parsing was
// a fifth of the process's CPU, most of it on the one writer connection. The
// connector below wraps the driver so that each connection keeps its prepared
// statements by query text and binds new arguments to them: a statement is
// parsed once per connection. SQLite re-prepares a kept statement by itself
// when the schema changes (a migration), so a kept statement never runs a
// stale plan.
//
// A statement is reused only when it is free: while the rows of a query are
// open, the same text run again on that connection (a query inside the loop
// over its own results) is prepared afresh and finalized after. Scripts (more
// than one statement) are never kept. A connection keeps at most
// stmtCacheSize statements and, when full, drops the one used least recently
// (texts built for a number of arguments, like IN lists, come and go).
const stmtCacheSize = 256

// cachingConnector opens SQLite connections that keep their statements.
type cachingConnector struct {
	dsn   string
	drv   driver.Driver
	count *writeStats // the writer's counters (nil: not counted)
}

func newCachingConnector(dsn string, count *writeStats) *cachingConnector {
	return &cachingConnector{dsn: dsn, drv: &sqlite.Driver{}, count: count}
}

func (c *cachingConnector) Connect(context.Context) (driver.Conn, error) {
	dc, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &cachingConn{Conn: dc, stmts: map[string]*cachedStmt{}, count: c.count}, nil
}

func (c *cachingConnector) Driver() driver.Driver { return c.drv }

// sqliteConn is what the driver's connection implements besides driver.Conn.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// cachingConn is a connection with its kept statements. database/sql uses a
// connection from one goroutine at a time (rows included), so it needs no
// lock of its own.
type cachingConn struct {
	driver.Conn
	stmts map[string]*cachedStmt
	tick  uint64 // use counter, for least-recently-used eviction
	count *writeStats
}

type cachedStmt struct {
	s      driver.Stmt
	busy   bool // rows of it are open
	used   uint64
	broken bool // failed to run; finalized when free
}

func (c *cachingConn) base() sqliteConn { return c.Conn.(sqliteConn) }

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.base().BeginTx(ctx, opts)
}

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.base().PrepareContext(ctx, query)
}

func (c *cachingConn) Ping(ctx context.Context) error { return c.base().Ping(ctx) }

func (c *cachingConn) ResetSession(ctx context.Context) error { return c.base().ResetSession(ctx) }

func (c *cachingConn) IsValid() bool { return c.base().IsValid() }

// Close finalizes the kept statements, then closes the connection.
func (c *cachingConn) Close() error {
	for q, cs := range c.stmts {
		cs.s.Close()
		delete(c.stmts, q)
	}
	return c.Conn.Close()
}

// cacheable reports whether query may be kept: one statement of the kinds
// a use case runs again and again (not a script, pragma or schema command).
func cacheable(query string) bool {
	q := strings.TrimSpace(query)
	if strings.Contains(strings.TrimSuffix(q, ";"), ";") {
		return false
	}
	word := q
	if i := strings.IndexFunc(q, unicode.IsSpace); i >= 0 {
		word = q[:i]
	}
	switch strings.ToUpper(word) {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "REPLACE":
		return true
	}
	return false
}

// get returns query's kept statement, marking it used, or nil when the
// query is not kept or its statement is busy.
func (c *cachingConn) get(ctx context.Context, query string) (*cachedStmt, error) {
	if c.count != nil { // every statement run on the connection passes here
		c.count.statement(query)
	}
	cs, ok := c.stmts[query]
	if ok {
		if cs.busy {
			return nil, nil
		}
		c.tick++
		cs.used = c.tick
		return cs, nil
	}
	if !cacheable(query) {
		return nil, nil
	}
	s, err := c.base().PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if len(c.stmts) >= stmtCacheSize {
		c.evict()
	}
	c.tick++
	cs = &cachedStmt{s: s, used: c.tick}
	c.stmts[query] = cs
	return cs, nil
}

// evict drops the free statement used least recently.
func (c *cachingConn) evict() {
	var oldest string
	var at uint64
	for q, cs := range c.stmts {
		if !cs.busy && (oldest == "" || cs.used < at) {
			oldest, at = q, cs.used
		}
	}
	if oldest != "" {
		c.stmts[oldest].s.Close()
		delete(c.stmts, oldest)
	}
}

// drop finalizes a kept statement that failed in a way that may have left
// it unusable (never for ordinary errors such as a constraint violation,
// which leave a statement reset and reusable).
func (c *cachingConn) drop(query string, cs *cachedStmt) {
	if c.stmts[query] == cs {
		delete(c.stmts, query)
	}
	cs.s.Close()
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.get(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.base().ExecContext(ctx, query, args)
	}
	r, err := cs.s.(driver.StmtExecContext).ExecContext(ctx, args)
	if err != nil && ctx.Err() != nil {
		c.drop(query, cs) // interrupted: do not trust its state
	}
	return r, err
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.get(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.base().QueryContext(ctx, query, args)
	}
	r, err := cs.s.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		if ctx.Err() != nil {
			c.drop(query, cs)
		}
		return nil, err
	}
	cs.busy = true
	return &cachedRows{Rows: r, cs: cs}, nil
}

// cachedRows frees its statement when closed. It passes on the column type
// methods of the driver's rows.
type cachedRows struct {
	driver.Rows
	cs *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.cs.busy = false
	return err
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

// openSQLite opens a pool of statement-keeping connections to dsn, counting
// the statements they run in count when it is not nil.
func openSQLite(dsn string, count *writeStats) *sql.DB {
	return sql.OpenDB(newCachingConnector(dsn, count))
}
