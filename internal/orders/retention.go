package orders

import (
	"context"
	"encoding/json"
	"time"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/jobs"
	"mercato/internal/platform/sqldb"
)

// retentionChunk is how many orders one unit of orders.retention
// anonymises.
const retentionChunk = 100

// closedStatuses are the statuses after which an order's personal data is
// kept only for Config.RetainFor.
const closedStatuses = `('completed', 'cancelled', 'expired', 'returned')`

// retentionJob is orders.retention: AnonymiseDue every
// Config.RetentionEvery.
func (s *Service) retentionJob() jobs.Job {
	return jobs.Job{Name: "orders.retention", Every: s.cfg.RetentionEvery,
		Run: func(ctx context.Context) (int64, error) { return s.AnonymiseDue(ctx) }}
}

// AnonymiseDue anonymises the personal data of every order closed (last
// changed) more than Config.RetainFor ago: the shipping address keeps its
// country and region only, the identity goes; the amounts, lines and
// events (accounting facts) stay. Each chunk is one unit of the write path
// with an audit entry (action order.anonymised, target "orders", the ids)
// and a log line; it reports how many orders it anonymised.
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
	if s.logger != nil {
		s.logger.Info("orders.retention", "anonymised", total, "retain_for", s.cfg.RetainFor.String())
	}
	return total, nil
}

// AnonymiseDueTx anonymises at most limit due orders in tx and audits them.
func (s *Service) AnonymiseDueTx(ctx context.Context, tx *sqldb.Tx, limit int) (int64, error) {
	const op = "orders.AnonymiseDue"
	cutoff := sqldb.Micros(tx.Now.Add(-s.cfg.RetainFor))
	rows, err := tx.QueryContext(ctx, `SELECT id, shipping_address FROM orders_orders
		WHERE status IN `+closedStatuses+` AND updated_at <= $1 AND anonymised_at IS NULL ORDER BY updated_at, id LIMIT $2`,
		cutoff, limit)
	if err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	type due struct{ id, addr string }
	var todo []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.addr); err != nil {
			rows.Close()
			return 0, errs.E(op, errs.Internal, err)
		}
		todo = append(todo, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	if len(todo) == 0 {
		return 0, nil
	}
	ids := make([]string, len(todo))
	for i, d := range todo {
		ids[i] = d.id
		if err := anonymiseTx(ctx, tx, d.id, d.addr, &tx.Now); err != nil {
			return 0, err
		}
	}
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: "system", Action: "order.anonymised", TargetType: "orders",
		TargetID: ids[0], After: map[string]any{"order_ids": ids, "retain_for": s.cfg.RetainFor.String()}}); err != nil {
		return 0, errs.E(op, err)
	}
	return int64(len(todo)), nil
}

// anonymiseTx rewrites order id's address to its country and region and
// drops its identity; at (nil: an erasure) is recorded as anonymised_at.
func anonymiseTx(ctx context.Context, tx *sqldb.Tx, id, addr string, at *time.Time) error {
	const op = "orders.anonymise"
	var a Address
	if err := json.Unmarshal([]byte(addr), &a); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	b, _ := json.Marshal(Address{Name: erasedName, Region: a.Region, Country: a.Country})
	var when any
	if at != nil {
		when = sqldb.Micros(*at)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE orders_orders SET shipping_address = $1, identity = NULL, identity_hash = NULL,
		anonymised_at = COALESCE($2, anonymised_at) WHERE id = $3`, string(b), when, id); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	return nil
}

// eraseAll is the module's erasure: the addresses (erase) and the
// identities of the customer's orders.
func (s *Service) eraseAll(ctx context.Context, tx *sqldb.Tx, userID string) error {
	if err := s.erase(ctx, tx, userID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE orders_orders SET identity = NULL, identity_hash = NULL WHERE customer_id = $1`, userID); err != nil {
		return errs.E("orders.erase", errs.Internal, err)
	}
	return nil
}
