package channels

import (
	"context"
	"log/slog"
	"time"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/jobs"
	"mercato/internal/platform/sqldb"
)

// DefaultRetainFor is how long an import keeps the buyer's e-mail address
// and name as the channel gave them (the orders' own retention period).
const DefaultRetainFor = 2 * 365 * 24 * time.Hour

// retentionChunk is how many imports one unit anonymises.
const retentionChunk = 500

// retentionJob is channels.retention: the buyer's e-mail address and name
// of imports older than retainFor are erased (the import keeps its key and
// order, so that a late duplicate still finds it).
func (s *Service) retentionJob() jobs.Job {
	return jobs.Job{Name: "channels.retention", Every: 24 * time.Hour, Run: s.AnonymiseDue}
}

// AnonymiseDue erases the buyer data of every import older than the
// retention period, a chunk per unit of the write path, each audited.
func (s *Service) AnonymiseDue(ctx context.Context) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.write.Do(ctx, func(tx *sqldb.Tx) (err error) { n, err = s.AnonymiseDueTx(ctx, tx, retentionChunk); return err })
		if err != nil {
			return total, err
		}
		total += n
		if n < retentionChunk {
			break
		}
	}
	slog.InfoContext(ctx, "channels.retention", "anonymised", total, "retain_for", s.retainFor().String())
	return total, nil
}

// AnonymiseDueTx erases the buyer data of at most limit due imports in tx
// and audits them.
func (s *Service) AnonymiseDueTx(ctx context.Context, tx *sqldb.Tx, limit int) (int64, error) {
	const op = "channels.AnonymiseDue"
	cutoff := sqldb.Micros(tx.Now.Add(-s.retainFor()))
	res, err := tx.ExecContext(ctx, `UPDATE channels_imports SET customer_email = '', customer_name = ''
		WHERE (channel, external_id) IN (SELECT channel, external_id FROM channels_imports
			WHERE created_at <= $1 AND (customer_email <> '' OR customer_name <> '')
			ORDER BY created_at, channel, external_id LIMIT $2)`, cutoff, limit)
	if err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	if n > 0 {
		if err := audit.Record(ctx, tx, audit.Entry{ActorID: "system", Action: "channel_import.anonymised",
			TargetType: "channel_imports", After: map[string]any{"count": n, "older_than": tx.Now.Add(-s.retainFor())}}); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (s *Service) retainFor() time.Duration {
	if s.cfg.RetainFor > 0 {
		return s.cfg.RetainFor
	}
	return DefaultRetainFor
}
