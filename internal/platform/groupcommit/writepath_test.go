package groupcommit_test

import (
	"context"
	"testing"
	"time"

	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// TestWritePath runs the write-path conformance suite against the batcher,
// with its defaults, with batches that wait to fill up, and with every
// unit in the prompt lane (its small batches keep the same rules).
func TestWritePath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    groupcommit.Config
		prompt bool
	}{
		{"defaults", groupcommit.Config{}, false},
		{"big batches", groupcommit.Config{MaxBatch: 128, MaxDelay: 20 * time.Millisecond}, false},
		{"prompt lane", groupcommit.Config{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sqldbtest.WritePath(t, func(t *testing.T, db *sqldb.DB) sqldb.Committer {
				b := groupcommit.New(db, tc.cfg)
				t.Cleanup(b.Close)
				if tc.prompt {
					return promptCommitter{b}
				}
				return b
			})
		})
	}
}

// promptCommitter marks every unit it runs Prompt.
type promptCommitter struct{ b *groupcommit.Batcher }

func (c promptCommitter) Do(ctx context.Context, fn func(*sqldb.Tx) error) error {
	return c.Run(ctx, sqldb.Unit{Run: fn})
}

func (c promptCommitter) Run(ctx context.Context, u sqldb.Unit) error {
	u.Prompt = true
	return c.b.Run(ctx, u)
}
