package sqldbtest

import (
	"context"
	"errors"

	"mercato/internal/platform/sqldb"
)

// ErrCrash is what a CrashCommitter returns in place of a commit.
var ErrCrash = errors.New("sqldbtest: simulated crash before commit")

// CrashCommitter is a sqldb.Committer that runs each unit (and its OnFail,
// when Run fails) in a transaction and then rolls it back as a crash between
// the work and the commit would, returning ErrCrash: nothing the unit wrote
// is kept.
type CrashCommitter struct{ DB *sqldb.DB }

// Do runs fn as a Unit without OnFail.
func (c CrashCommitter) Do(ctx context.Context, fn func(*sqldb.Tx) error) error {
	return c.Run(ctx, sqldb.Unit{Run: fn})
}

// Run runs u and rolls its transaction back.
func (c CrashCommitter) Run(ctx context.Context, u sqldb.Unit) error {
	tx, err := c.DB.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := u.Run(tx); err != nil {
		if u.OnFail == nil {
			return err
		}
		if ferr := u.OnFail(tx, err); ferr != nil {
			return ferr
		}
	}
	return ErrCrash
}
