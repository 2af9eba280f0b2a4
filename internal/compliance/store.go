package compliance

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// Actor is the staff member saving rules.
type Actor struct{ ID, IP string }

// PutTx saves r as the rules' next version in tx: validated, its products
// known to the catalog, audited (compliance.rules_updated), with
// compliance.updated.
func (s *Service) PutTx(ctx context.Context, tx *sqldb.Tx, by Actor, r Rules) (Document, error) {
	const op = "compliance.Put"
	r.normalise()
	if err := r.validate(); err != nil {
		return Document{}, err
	}
	if s.products != nil {
		var v errs.Validation
		for i, x := range r.Restrictions {
			for j, id := range x.ProductIDs {
				ok, err := s.products.ProductExistsTx(ctx, tx, id)
				if err != nil {
					return Document{}, errs.E(op, err)
				}
				v.Check(ok, fmt.Sprintf("restrictions[%d].product_ids[%d]", i, j), "names no product")
			}
		}
		if err := v.Err(op); err != nil {
			return Document{}, err
		}
	}
	doc, _ := json.Marshal(r)
	var ver int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM compliance_rules`).Scan(&ver); err != nil {
		return Document{}, errs.E(op, errs.Internal, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO compliance_rules (version, doc, created_by, created_at) VALUES ($1, $2, $3, $4)`,
		ver, string(doc), by.ID, sqldb.Micros(tx.Now)); err != nil {
		if sqldb.IsUniqueViolation(err) {
			return Document{}, errs.E(op, errs.Internal, errors.Join(sqldb.ErrConflict, err))
		}
		return Document{}, errs.E(op, errs.Internal, err)
	}
	now := tx.Now
	d := Document{Version: ver, Rules: r, UpdatedBy: by.ID, UpdatedAt: &now}
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: by.ID, Action: "compliance.rules_updated", TargetType: "compliance",
		TargetID: "rules", IP: by.IP, After: d}); err != nil {
		return Document{}, err
	}
	ev, err := Updated.New("rules", tx.Now, UpdatedData{Version: ver})
	if err != nil {
		return Document{}, errs.E(op, errs.Internal, err)
	}
	n := puts(tx)
	*n++
	tx.OnRollback(func() { *n-- })
	if err := s.cache.ChangedTx(ctx, tx); err != nil {
		return Document{}, errs.E(op, errs.Internal, err)
	}
	return d, outbox.Append(ctx, tx, &ev)
}

// Put is PutTx as one unit of the write path.
func (s *Service) Put(ctx context.Context, by Actor, r Rules) (d Document, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { d, err = s.PutTx(ctx, tx, by, r); return err })
	return d, err
}

type rowQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func current(ctx context.Context, q rowQueryer) (Document, error) {
	const op = "compliance.current"
	var d Document
	var doc string
	var at int64
	err := q.QueryRowContext(ctx, `SELECT version, doc, created_by, created_at FROM compliance_rules ORDER BY version DESC LIMIT 1`).
		Scan(&d.Version, &doc, &d.UpdatedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		d.Rules.normalise()
		return d, nil
	}
	if err != nil {
		return Document{}, errs.E(op, errs.Internal, err)
	}
	if err := json.Unmarshal([]byte(doc), &d.Rules); err != nil {
		return Document{}, errs.E(op, errs.Internal, err)
	}
	t := sqldb.FromMicros(at)
	d.UpdatedAt = &t
	return d, nil
}

// Current returns the current rules as staff read them.
func (s *Service) Current(ctx context.Context) (Document, error) { return current(ctx, s.db.Reader()) }

type putsKey struct{}

// puts counts the units of tx that saved rules (and were not rolled back).
func puts(tx *sqldb.Tx) *int {
	v, _ := tx.Local(putsKey{}, func() (any, error) { return new(int), nil })
	return v.(*int)
}

// currentTx returns the current rules for a unit of tx: from the process's
// cache (no row read), or read in tx when it saved rules (which the cache
// does not show yet). The rules are shared: callers must not change them.
func (s *Service) currentTx(ctx context.Context, tx *sqldb.Tx) (Document, error) {
	if *puts(tx) > 0 {
		return current(ctx, tx)
	}
	return s.cache.Get(func() (Document, error) { return current(ctx, s.db.Reader()) })
}

// CheckTx decides c against the current rules in tx (package
// documentation) and returns their version; nothing is written.
func (s *Service) CheckTx(ctx context.Context, tx *sqldb.Tx, c Cart) (int64, error) {
	d, err := s.currentTx(ctx, tx)
	if err != nil {
		return 0, err
	}
	return d.Version, s.decide(ctx, tx, d.Rules, c, "", false)
}

// CountTx decides c as CheckTx does and counts order orderID's amount
// against every per-year limit that applies, with a conditional write on
// the customer's counter: of concurrent checkouts, those that would take
// the year over the limit are 422 limit_exceeded. A guest's order is
// checked against the per-order limits only.
func (s *Service) CountTx(ctx context.Context, tx *sqldb.Tx, orderID string, c Cart) (int64, error) {
	d, err := s.currentTx(ctx, tx)
	if err != nil {
		return 0, err
	}
	return d.Version, s.decide(ctx, tx, d.Rules, c, orderID, true)
}

func (s *Service) decide(ctx context.Context, tx *sqldb.Tx, r Rules, c Cart, orderID string, count bool) error {
	const op = "compliance.Check"
	if err := r.restricted(c); err != nil {
		return err
	}
	year := tx.Now.UTC().Year()
	counted := false
	for _, x := range r.limits(c) {
		if x.PerOrder > 0 && c.Amount > x.PerOrder {
			return overLimit(x, "per_order", c.Amount, 0, x.PerOrder, c.Currency)
		}
		if x.PerYear == 0 || c.CustomerID == "" || c.Amount <= 0 {
			continue
		}
		region := x.Place.Region
		if c.Amount > x.PerYear {
			return overLimit(x, "per_year", c.Amount, 0, x.PerYear, c.Currency)
		}
		if !count {
			var spent int64
			err := tx.QueryRowContext(ctx, `SELECT spent FROM compliance_spent WHERE customer_id = $1 AND country = $2
				AND region = $3 AND currency = $4 AND year = $5`, c.CustomerID, x.Place.Country, region, c.Currency, year).Scan(&spent)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return errs.E(op, errs.Internal, err)
			}
			if spent+c.Amount > x.PerYear {
				return overLimit(x, "per_year", c.Amount, spent, x.PerYear, c.Currency)
			}
			continue
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO compliance_spent (customer_id, country, region, currency, year, spent)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (customer_id, country, region, currency, year)
			DO UPDATE SET spent = compliance_spent.spent + excluded.spent WHERE compliance_spent.spent + excluded.spent <= $7`,
			c.CustomerID, x.Place.Country, region, c.Currency, year, c.Amount, x.PerYear)
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			var spent int64
			tx.QueryRowContext(ctx, `SELECT spent FROM compliance_spent WHERE customer_id = $1 AND country = $2
				AND region = $3 AND currency = $4 AND year = $5`, c.CustomerID, x.Place.Country, region, c.Currency, year).Scan(&spent)
			return overLimit(x, "per_year", c.Amount, spent, x.PerYear, c.Currency)
		}
		if counted {
			return errs.E(op, errs.Invalid, errs.CodeValidation, "two per-year limits apply to one order: rule "+x.ID)
		}
		counted = true
		if _, err := tx.ExecContext(ctx, `INSERT INTO compliance_counts (order_id, customer_id, country, region, currency, year, amount)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, orderID, c.CustomerID, x.Place.Country, region, c.Currency, year, c.Amount); err != nil {
			return errs.E(op, errs.Internal, err)
		}
	}
	return nil
}

// ReleaseTx gives order orderID's share of its yearly counter back, once.
func (s *Service) ReleaseTx(ctx context.Context, tx *sqldb.Tx, orderID string) error {
	const op = "compliance.Release"
	var cust, country, region, cur string
	var year int
	var amount int64
	err := tx.QueryRowContext(ctx, `UPDATE compliance_counts SET released_at = $1 WHERE order_id = $2 AND released_at IS NULL
		RETURNING customer_id, country, region, currency, year, amount`, sqldb.Micros(tx.Now), orderID).
		Scan(&cust, &country, &region, &cur, &year, &amount)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE compliance_spent SET spent = spent - $1 WHERE customer_id = $2 AND country = $3
		AND region = $4 AND currency = $5 AND year = $6 AND spent >= $1`, amount, cust, country, region, cur, year); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	return nil
}
