package inbox

import (
	"context"
	"testing"
	"time"

	"mercato/internal/platform/sqldb"
)

// TestBookkeepingMerged: the bookkeeping of several batches in one
// transaction — two of one consumer, touching one aggregate, one of
// another — is written together: every inbox row, each position once at
// its highest sequence (never moved back), the stats summed per consumer.
func TestBookkeepingMerged(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		occ := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
		batch := func(applied []string, moved map[aggKey]int64, processed int, at time.Time) *batchState {
			return &batchState{applied: applied, moved: moved, res: batchResult{processed: processed, lastOccurred: at}}
		}
		a, b := aggKey{"order", "o1"}, aggKey{"order", "o2"}
		write := func(bs ...bookkeeping) {
			t.Helper()
			if err := db.InTx(ctx, func(tx *sqldb.Tx) error {
				for _, x := range bs {
					if err := sqldb.AtCommit(ctx, tx, bookkeepingKey{}, writeBookkeeping, x); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		write(bookkeeping{"c1", batch([]string{"e1", "e2"}, map[aggKey]int64{a: 2}, 2, occ)},
			bookkeeping{"c2", batch([]string{"e1"}, map[aggKey]int64{a: 1}, 1, occ)},
			bookkeeping{"c1", batch([]string{"e3"}, map[aggKey]int64{a: 3, b: 1}, 1, occ.Add(time.Second))})
		write(bookkeeping{"c2", batch(nil, map[aggKey]int64{a: 0}, 0, time.Time{})}) // never back
		tests := []struct {
			what, q string
			want    int64
		}{
			{"inbox rows of c1", `SELECT COUNT(*) FROM inbox WHERE consumer = 'c1'`, 3},
			{"inbox rows of c2", `SELECT COUNT(*) FROM inbox WHERE consumer = 'c2'`, 1},
			{"c1's position on o1", `SELECT last_sequence FROM consumer_positions WHERE consumer = 'c1' AND aggregate_id = 'o1'`, 3},
			{"c1's position on o2", `SELECT last_sequence FROM consumer_positions WHERE consumer = 'c1' AND aggregate_id = 'o2'`, 1},
			{"c2's position on o1", `SELECT last_sequence FROM consumer_positions WHERE consumer = 'c2' AND aggregate_id = 'o1'`, 1},
			{"c1 processed", `SELECT processed FROM consumer_stats WHERE consumer = 'c1'`, 3},
			{"c2 processed", `SELECT processed FROM consumer_stats WHERE consumer = 'c2'`, 1},
			{"c1's last occurred", `SELECT last_occurred_at FROM consumer_stats WHERE consumer = 'c1'`, sqldb.Micros(occ.Add(time.Second))},
		}
		for _, tc := range tests {
			var got int64
			if err := db.Reader().QueryRowContext(ctx, tc.q).Scan(&got); err != nil {
				t.Fatalf("%s: %v", tc.what, err)
			}
			if got != tc.want {
				t.Errorf("%s = %d, want %d", tc.what, got, tc.want)
			}
		}
	})
}
