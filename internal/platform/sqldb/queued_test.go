package sqldb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// TestQueued: AtCommit's rows of a batch's units are written by one flush,
// in the order queued; a failed unit's rows are not; a row queued by a later
// BeforeCommit hook is written at once; Queued shows what is still queued,
// and Unqueue takes rows out (put back when its unit fails).
func TestQueued(t *testing.T) {
	ctx := context.Background()
	db := sqldbtest.Open(t, sqldb.SQLite)
	tests := []struct {
		name    string
		guarded bool
		// units add rows; "fail" in a unit's rows makes it fail after adding.
		units [][]string
		late  bool // a BeforeCommit hook registered after the first Add adds "late"
		want  string
	}{
		{"one flush for the batch, in order", false, [][]string{{"a"}, {"b", "c"}, {"d"}}, false, "[[a b c d]]"},
		{"a failed unit takes its rows back", true, [][]string{{"a"}, {"b", "fail"}, {"c"}}, false, "[[a c]]"},
		{"a batch of failures flushes nothing", true, [][]string{{"fail"}}, false, "[]"},
		{"a row added after the flush is written at once", false, [][]string{{"a"}}, true, "[[a] [late]]"},
		{"Unqueue takes queued rows out", false, [][]string{{"a", "x1"}, {"b"}, {"remove x"}, {"x2"}}, false, "[[a b x2]]"},
		{"a failed unit's Unqueue is undone", true, [][]string{{"a", "x1"}, {"remove x", "fail"}, {"b"}}, false, "[[a x1 b]]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var flushes [][]string
			type key struct{}
			write := func(_ context.Context, _ *sqldb.Tx, rows []string) error {
				flushes = append(flushes, append([]string(nil), rows...))
				return nil
			}
			var units []sqldb.Unit
			for i, rows := range tc.units {
				units = append(units, sqldb.Unit{Run: func(tx *sqldb.Tx) error {
					rows := rows // a unit may run more than once
					if rows[0] == "remove x" {
						sqldb.Unqueue(tx, key{}, func(r string) bool { return strings.HasPrefix(r, "x") })
						rows = rows[1:]
					}
					before := len(sqldb.Queued[string](tx, key{}))
					if err := sqldb.AtCommit(ctx, tx, key{}, write, rows...); err != nil {
						return err
					}
					if got := len(sqldb.Queued[string](tx, key{})); got != before+len(rows) {
						return fmt.Errorf("unit %d: Queued holds %d, want %d", i, got, before+len(rows))
					}
					if i == 0 && tc.late {
						tx.BeforeCommit(func(ctx context.Context) error { return sqldb.AtCommit(ctx, tx, key{}, write, "late") })
					}
					for _, r := range rows {
						if r == "fail" {
							return errors.New("fail")
						}
					}
					return nil
				}})
			}
			res := db.RunBatch(ctx, sqldb.Batch{Units: units, Guarded: tc.guarded})
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			for i, err := range res.Outcomes {
				if err != nil && err.Error() != "fail" {
					t.Fatalf("unit %d: %v", i, err)
				}
			}
			if got := fmt.Sprint(flushes); got != tc.want {
				t.Fatalf("flushed %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParams(t *testing.T) {
	for _, c := range []struct {
		e       sqldb.Engine
		from, n int
		want    string
	}{
		{sqldb.Postgres, 3, 3, "$3, $4, $5"}, {sqldb.SQLite, 3, 3, "?, ?, ?"},
		{sqldb.Postgres, 1, 0, ""}, {sqldb.SQLite, 1, 1, "?"},
	} {
		var b strings.Builder
		sqldb.Params(c.e, &b, c.from, c.n)
		if b.String() != c.want {
			t.Errorf("Params(%v, %d, %d) = %q, want %q", c.e, c.from, c.n, b.String(), c.want)
		}
	}
}
