package groupcommit_test

import (
	"testing"
	"time"

	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// TestWritePath runs the write-path conformance suite against the batcher,
// with its defaults and with batches that wait to fill up.
func TestWritePath(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  groupcommit.Config
	}{
		{"defaults", groupcommit.Config{}},
		{"big batches", groupcommit.Config{MaxBatch: 128, MaxDelay: 20 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sqldbtest.WritePath(t, func(t *testing.T, db *sqldb.DB) sqldb.Committer {
				b := groupcommit.New(db, tc.cfg)
				t.Cleanup(b.Close)
				return b
			})
		})
	}
}
