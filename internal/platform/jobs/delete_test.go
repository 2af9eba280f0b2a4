package jobs

import (
	"context"
	"strings"
	"testing"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// createTables makes two test tables: prune_rows with a rowid/ctid and an
// id key, prune_pairs keyed by (a, b) (WITHOUT ROWID on SQLite, as inbox is).
func createTables(t *testing.T, db *sqldb.DB) {
	t.Helper()
	ctx := context.Background()
	pairs := `CREATE TABLE prune_pairs (a TEXT NOT NULL, b BIGINT NOT NULL, expired INTEGER NOT NULL, PRIMARY KEY (a, b))`
	if db.Engine() == sqldb.SQLite {
		pairs += ` WITHOUT ROWID`
	}
	if err := db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE prune_rows (id BIGINT NOT NULL PRIMARY KEY, expired INTEGER NOT NULL)`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, pairs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// fill empties table and inserts total rows, the first expired of them with
// expired = 1.
func fill(t *testing.T, db *sqldb.DB, table string, total, expired int) {
	t.Helper()
	ctx := context.Background()
	cols, vals := "id, expired", "i"
	if table == "prune_pairs" {
		cols, vals = "a, b, expired", "'k', i"
	}
	if err := db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1)
			INSERT INTO `+table+` (`+cols+`) SELECT `+vals+`, CASE WHEN i <= $2 THEN 1 ELSE 0 END FROM s`, total, expired)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, db *sqldb.DB, table, where string) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRow(`SELECT count(*) FROM ` + table + ` WHERE ` + where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDeleteChunked: exactly the matching rows go, a chunk per transaction,
// whatever the key (physical row id, one column, two columns) and however
// the count falls against the chunk size.
func TestDeleteChunked(t *testing.T) {
	cases := []struct {
		name           string
		table, key     string
		total, expired int
		chunk          int
		wantChunks     int
	}{
		{"row id, several chunks and a short one", "prune_rows", "", 50, 23, 5, 5},
		{"row id, an exact multiple needs one empty chunk", "prune_rows", "", 40, 20, 10, 3},
		{"id column", "prune_rows", "id", 30, 17, 4, 5},
		{"composite key of a WITHOUT ROWID table", "prune_pairs", "a, b", 30, 12, 5, 3},
		{"nothing matches", "prune_pairs", "a,b", 10, 0, 5, 1},
		{"everything matches", "prune_rows", "id", 9, 9, 4, 3},
	}
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		createTables(t, db)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				fill(t, db, tc.table, tc.total, tc.expired)
				n, chunks, err := deleteChunked(context.Background(), db, tc.chunk, tc.table, tc.key, "expired = $1", []any{1})
				if err != nil {
					t.Fatalf("deleteChunked: %v", err)
				}
				if n != int64(tc.expired) || chunks != tc.wantChunks {
					t.Errorf("deleted %d rows in %d chunks, want %d in %d", n, chunks, tc.expired, tc.wantChunks)
				}
				if left := count(t, db, tc.table, "expired = 1"); left != 0 {
					t.Errorf("%d matching rows left", left)
				}
				if kept := count(t, db, tc.table, "expired = 0"); kept != tc.total-tc.expired {
					t.Errorf("%d other rows kept, want %d", kept, tc.total-tc.expired)
				}
			})
		}

		t.Run("exported, past ChunkSize", func(t *testing.T) {
			const expired, total = 2*ChunkSize + 500, 2*ChunkSize + 600
			fill(t, db, "prune_rows", total, expired)
			n, err := DeleteChunked(context.Background(), db, "prune_rows", "", "expired = $1 AND id > $2", 1, 0)
			if err != nil || n != expired {
				t.Fatalf("DeleteChunked = %d, %v; want %d", n, err, expired)
			}
			if kept := count(t, db, "prune_rows", "1 = 1"); kept != total-expired {
				t.Fatalf("%d rows kept, want %d", kept, total-expired)
			}
		})

		t.Run("cancelled context deletes nothing", func(t *testing.T) {
			fill(t, db, "prune_rows", 10, 10)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			n, err := DeleteChunked(ctx, db, "prune_rows", "", "expired = $1", 1)
			if err == nil || n != 0 || count(t, db, "prune_rows", "1 = 1") != 10 {
				t.Fatalf("DeleteChunked on a cancelled ctx = %d, %v; want 0 and an error, rows intact", n, err)
			}
		})
	})
}

// TestDeleteChunkedRejectsBadNames: names that are not plain identifiers,
// and an empty where, are refused before any SQL runs.
func TestDeleteChunkedRejectsBadNames(t *testing.T) {
	for _, tc := range []struct {
		name, table, key, where, want string
	}{
		{"table with SQL", "outbox; DROP TABLE orders", "", "x = $1", "bad table name"},
		{"quoted table", `"outbox"`, "", "x = $1", "bad table name"},
		{"key with SQL", "outbox", "id) OR (1=1", "x = $1", "bad key column"},
		{"empty key column", "inbox", "consumer,", "x = $1", "bad key column"},
		{"empty where", "outbox", "id", "  ", "empty where"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, e := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
				if _, err := chunkSQL(e, tc.table, tc.key, tc.where, 2); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: chunkSQL = %v, want an error containing %q", e, err, tc.want)
				}
			}
		})
	}
}

// BenchmarkDeleteChunked measures a prune of 20,000 rows on each engine
// (synchronous=FULL on SQLite): ms/chunk is how long one chunk holds the
// writer.
func BenchmarkDeleteChunked(b *testing.B) {
	const rows = 20 * ChunkSize
	for _, e := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		b.Run(string(e), func(b *testing.B) {
			db := sqldbtest.Open(b, e)
			ctx := context.Background()
			if _, err := db.Writer().ExecContext(ctx, `CREATE TABLE prune_rows (id BIGINT NOT NULL PRIMARY KEY, expired INTEGER NOT NULL)`); err != nil {
				b.Fatal(err)
			}
			var chunks int
			for b.Loop() {
				b.StopTimer()
				if _, err := db.Writer().ExecContext(ctx, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1)
					INSERT INTO prune_rows (id, expired) SELECT i, 1 FROM s`, rows); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				n, c, err := deleteChunked(ctx, db, ChunkSize, "prune_rows", "", "expired = $1", []any{1})
				if err != nil || n != rows {
					b.Fatalf("deleted %d, %v", n, err)
				}
				chunks += c
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(chunks), "ms/chunk")
		})
	}
}
