package jobs

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// ChunkSize is how many rows DeleteChunked deletes per transaction.
const ChunkSize = 1000

// DeleteChunked deletes the rows of table that match where, ChunkSize rows
// per transaction, until a chunk comes back short, and reports how many it
// deleted. Between chunks other writers get the database, so a large prune
// never holds the (SQLite) writer for long. It stops at the first failure
// (or when ctx ends) and reports what it deleted before.
//
// table, key and where are SQL text and must come from code, never from
// input: only args are bound as parameters. where refers to args as $1, $2 …
// (the chunk size is bound after them); its arguments are the same for every
// chunk, so compute cut-off times once, before the call. key names the
// column or columns, comma-separated, that identify a row ("id",
// "consumer, event_id"); "" uses the engine's physical row id (SQLite rowid,
// PostgreSQL ctid) and so needs no index, but is not allowed for SQLite
// WITHOUT ROWID tables. where should be served by an index on a large table,
// since each chunk searches it afresh.
//
// modernc's SQLite is built without DELETE … LIMIT, so a chunk is
// "DELETE … WHERE <key> IN (SELECT <key> … WHERE <where> LIMIT n)" on both
// engines (PostgreSQL's ctid as = ANY(ARRAY(…)) for a TID scan).
func DeleteChunked(ctx context.Context, db *sqldb.DB, table, key, where string, args ...any) (int64, error) {
	n, _, err := deleteChunked(ctx, db, ChunkSize, table, key, where, args)
	return n, err
}

// deleteChunked is DeleteChunked with the chunk size given; it also reports
// how many transactions it ran.
func deleteChunked(ctx context.Context, db *sqldb.DB, chunk int, table, key, where string, args []any) (total int64, chunks int, err error) {
	const op = "jobs.DeleteChunked"
	q, err := chunkSQL(db.Engine(), table, key, where, len(args)+1)
	if err != nil {
		return 0, 0, errs.E(op, errs.Internal, err)
	}
	bound := append(slices.Clip(args), chunk)
	for {
		if err := ctx.Err(); err != nil {
			return total, chunks, errs.E(op, errs.Internal, err)
		}
		var n int64
		err := db.InTx(ctx, func(tx *sqldb.Tx) error {
			res, err := tx.ExecContext(ctx, q, bound...)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, chunks, errs.E(op, errs.Internal, fmt.Errorf("%s: %w", table, err))
		}
		total += n
		chunks++
		if n < int64(chunk) {
			return total, chunks, nil
		}
	}
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// chunkSQL builds one chunk's DELETE; limitArg is the number of the
// placeholder that binds the chunk size. It rejects names that are not
// plain identifiers (a guard against misuse, not a licence for input).
func chunkSQL(e sqldb.Engine, table, key, where string, limitArg int) (string, error) {
	if !identRE.MatchString(table) {
		return "", fmt.Errorf("bad table name %q", table)
	}
	if strings.TrimSpace(where) == "" {
		return "", fmt.Errorf("delete from %s: empty where (refusing to delete every row)", table)
	}
	limit := fmt.Sprintf("$%d", limitArg)
	if key == "" {
		if e == sqldb.Postgres {
			return "DELETE FROM " + table + " WHERE ctid = ANY(ARRAY(SELECT ctid FROM " + table +
				" WHERE (" + where + ") LIMIT " + limit + "))", nil
		}
		return "DELETE FROM " + table + " WHERE rowid IN (SELECT rowid FROM " + table +
			" WHERE (" + where + ") LIMIT " + limit + ")", nil
	}
	cols := strings.Split(key, ",")
	for i, c := range cols {
		cols[i] = strings.TrimSpace(c)
		if !identRE.MatchString(cols[i]) {
			return "", fmt.Errorf("bad key column %q of %s", c, table)
		}
	}
	list := strings.Join(cols, ", ")
	lhs := list
	if len(cols) > 1 {
		lhs = "(" + list + ")"
	}
	return "DELETE FROM " + table + " WHERE " + lhs + " IN (SELECT " + list + " FROM " + table +
		" WHERE (" + where + ") LIMIT " + limit + ")", nil
}
