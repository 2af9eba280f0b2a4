package idem

import (
	"context"
	"crypto/hmac"
	"database/sql"
	"embed"
	"errors"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Migrations is the schema of the idempotency_records table (module "idem").
func Migrations() migrate.Source { return migrate.Embedded("idem", migrations) }

// lookup returns n's record if there is one: found with its outcome when
// the fingerprint matches, found with ErrKeyReused when it does not.
func (s *Store) lookup(ctx context.Context, n name) (res Result, found bool, err error) {
	var fp, rec []byte
	err = s.db.Reader().QueryRowContext(ctx,
		`SELECT fingerprint, record FROM idempotency_records WHERE key_id = $1`, n.keyID).Scan(&fp, &rec)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Result{}, false, nil
	case err != nil && ctx.Err() != nil:
		return Result{}, true, errs.E("idem.Do", errs.Unavailable, "the request was cancelled", err)
	case err != nil:
		return Result{}, true, errs.E("idem.Do", errs.Internal, err)
	case !hmac.Equal(fp, n.fp):
		return Result{}, true, ErrKeyReused
	}
	out, err := open(n, rec)
	if err != nil {
		return Result{}, true, errs.E("idem.Do", errs.Internal, err)
	}
	return Result{Outcome: out, Replayed: true}, true, nil
}

func (s *Store) insert(ctx context.Context, tx *sqldb.Tx, n name, o Outcome) error {
	rec, err := seal(n, o)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO idempotency_records
		(key_id, scope_id, fingerprint, record, created_at) VALUES ($1, $2, $3, $4, $5)`,
		n.keyID, n.scopeID, n.fp, rec, sqldb.Micros(tx.Now))
	return err
}

// Forget deletes, in tx, every record of scope (a named scope, as passed in
// Request.Scope) and reports how many: the erasure of a customer.
func (s *Store) Forget(ctx context.Context, tx *sqldb.Tx, scope string) (int64, error) {
	if scope == "" {
		return 0, errs.E("idem.Forget", errs.Invalid, "an empty scope names no caller")
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM idempotency_records WHERE scope_id = $1`, s.keys.scopeID(scope))
	if err != nil {
		return 0, errs.E("idem.Forget", errs.Internal, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, errs.E("idem.Forget", errs.Internal, err)
	}
	return n, nil
}

// Prune deletes the records older than Retention and reports how many.
func (s *Store) Prune(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM idempotency_records WHERE created_at < $1`,
			sqldb.Micros(tx.Now.Add(-s.cfg.Retention)))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, errs.E("idem.Prune", errs.Internal, err)
	}
	return n, nil
}
