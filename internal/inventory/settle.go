package inventory

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// CommitTx commits the reservation ref in tx: its units leave on_hand and
// reserved (the order was paid), counted units stay counted against the
// customer's limits. A committed reservation is a no-op (nil); a released
// one is invalid_transition (Conflict); an unknown ref not_found. Emits
// inventory.committed (aggregate: ref).
func (s *Service) CommitTx(ctx context.Context, tx *sqldb.Tx, ref string) error {
	return s.settle(ctx, tx, ref, StatusCommitted)
}

// ReleaseTx releases the reservation ref in tx: its units are available
// again and no longer count against the customer's limits (the order was
// cancelled or expired). A released reservation is a no-op (nil); a
// committed one is invalid_transition (Conflict); an unknown ref not_found.
// Emits inventory.released (aggregate: ref).
func (s *Service) ReleaseTx(ctx context.Context, tx *sqldb.Tx, ref string) error {
	return s.settle(ctx, tx, ref, StatusReleased)
}

// Commit is CommitTx as one unit of the write path.
func (s *Service) Commit(ctx context.Context, ref string) error {
	return s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.CommitTx(ctx, tx, ref) })
}

// Release is ReleaseTx as one unit of the write path.
func (s *Service) Release(ctx context.Context, ref string) error {
	return s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.ReleaseTx(ctx, tx, ref) })
}

// settle moves a reserved reservation to status (committed or released).
// The status row is taken by a conditional UPDATE first, so of a commit
// and a release racing exactly one wins.
func (s *Service) settle(ctx context.Context, tx *sqldb.Tx, ref, status string) error {
	op := "inventory.Commit"
	if status == StatusReleased {
		op = "inventory.Release"
	}
	res, err := tx.ExecContext(ctx, `UPDATE inventory_reservations SET status = $1, updated_at = $2
		WHERE ref = $3 AND status = 'reserved'`, status, sqldb.Micros(tx.Now), ref)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return errs.E(op, errs.Internal, err)
	} else if n == 0 {
		var cur string
		err := tx.QueryRowContext(ctx, `SELECT status FROM inventory_reservations WHERE ref = $1`, ref).Scan(&cur)
		switch {
		case errNoRows(err):
			return errs.E(op, errs.NotFound, "no reservation for this reference")
		case err != nil:
			return errs.E(op, errs.Internal, err)
		case cur == status:
			return nil // done before: a second call is a no-op
		}
		return errs.E(op, errs.Conflict, errs.CodeInvalidTransition, "the reservation is "+cur+" already")
	}
	lines, err := reservationLines(ctx, tx, ref)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	var ledger []ledgerRow
	var out []ReservedLine
	for _, l := range lines {
		st, err := s.state(ctx, tx, l.SKU)
		if err != nil {
			return err
		}
		loc := st.loc(l.Location)
		if loc == nil || loc.curReserved() < l.Quantity {
			// The stock was read (without a lock, by an earlier unit of the
			// transaction) before the reservation committed: the batch runs
			// again and reads afresh. (Were the rows truly short, the last
			// try fails with this error.)
			return errs.E(op, fmt.Errorf("reservation %s holds %d of %s at %s, more than was read reserved there: %w",
				ref, l.Quantity, l.SKU, l.Location, sqldb.ErrConflict))
		}
		row := ledgerRow{sku: l.SKU, location: l.Location, dRes: -l.Quantity}
		if status == StatusCommitted {
			loc.change(tx, -l.Quantity, -l.Quantity)
			row.reason, row.dOnHand = ReasonCommit, -l.Quantity
		} else {
			loc.change(tx, 0, -l.Quantity)
			row.reason = ReasonRelease
			if l.counted {
				if _, err := tx.ExecContext(ctx, `UPDATE inventory_customer_units SET units = units - $1
					WHERE customer_id = (SELECT customer_id FROM inventory_reservations WHERE ref = $2) AND sku = $3 AND units >= $1`,
					l.Quantity, ref, l.SKU); err != nil {
					return errs.E(op, errs.Internal, err)
				}
			}
		}
		ledger = append(ledger, row)
		out = append(out, ReservedLine{SKU: l.SKU, Location: l.Location, Quantity: l.Quantity})
	}
	if err := writeLedger(ctx, tx, ref, ledger); err != nil {
		return err
	}
	var ev event.Envelope
	if status == StatusCommitted {
		ev, err = Committed.New(ref, tx.Now, SettledData{Ref: ref, Lines: out})
	} else {
		ev, err = Released.New(ref, tx.Now, SettledData{Ref: ref, Lines: out})
	}
	if err != nil {
		return err
	}
	return outbox.Append(ctx, tx, &ev)
}

// RestockCancelledTx puts the committed units of ref — a paid order
// cancelled before it shipped — back on hand where they were reserved, with
// return ledger rows, and marks the reservation released (emitting
// inventory.released, so stock watchers see the units come back). The
// reservation row is taken by a conditional UPDATE first: a second call is
// a no-op, and a reservation that is not committed is left alone
// (invalid_transition, or not_found).
func (s *Service) RestockCancelledTx(ctx context.Context, tx *sqldb.Tx, ref string) error {
	const op = "inventory.RestockCancelled"
	res, err := tx.ExecContext(ctx, `UPDATE inventory_reservations SET status = $1, updated_at = $2
		WHERE ref = $3 AND status = $4`, StatusReleased, sqldb.Micros(tx.Now), ref, StatusCommitted)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return errs.E(op, errs.Internal, err)
	} else if n == 0 {
		var cur string
		switch err := tx.QueryRowContext(ctx, `SELECT status FROM inventory_reservations WHERE ref = $1`, ref).Scan(&cur); {
		case errNoRows(err):
			return errs.E(op, errs.NotFound, "no reservation for this reference")
		case err != nil:
			return errs.E(op, errs.Internal, err)
		case cur == StatusReleased:
			return nil // restocked or released before
		}
		return errs.E(op, errs.Conflict, errs.CodeInvalidTransition, "the reservation is "+cur)
	}
	lines, err := reservationLines(ctx, tx, ref)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	out := make([]ReservedLine, 0, len(lines))
	for _, l := range lines {
		out = append(out, ReservedLine{SKU: l.SKU, Location: l.Location, Quantity: l.Quantity})
		if l.counted { // the customer's purchase cap counts them no more
			if _, err := tx.ExecContext(ctx, `UPDATE inventory_customer_units SET units = units - $1
				WHERE customer_id = (SELECT customer_id FROM inventory_reservations WHERE ref = $2) AND sku = $3 AND units >= $1`,
				l.Quantity, ref, l.SKU); err != nil {
				return errs.E(op, errs.Internal, err)
			}
		}
	}
	if err := s.ReturnTx(ctx, tx, ref, out); err != nil {
		return err
	}
	ev, err := Released.New(ref, tx.Now, SettledData{Ref: ref, Lines: out})
	if err != nil {
		return err
	}
	return outbox.Append(ctx, tx, &ev)
}

// ReturnTx puts returned units of the committed order ref back on hand in
// tx: each line's quantity is added to on_hand at its location (which
// must hold the SKU already), with a return ledger row referencing ref.
// It emits no event. Lines are validated like a reservation's.
func (s *Service) ReturnTx(ctx context.Context, tx *sqldb.Tx, ref string, lines []ReservedLine) error {
	const op = "inventory.Return"
	var v errs.Validation
	v.Check(ref != "" && len(ref) <= MaxRefLen, "ref", fmt.Sprintf("must be 1 to %d bytes", MaxRefLen))
	v.Check(len(lines) > 0 && len(lines) <= MaxLines, "lines", fmt.Sprintf("must hold 1 to %d lines", MaxLines))
	for i, l := range lines {
		if msg := checkSKU(l.SKU); msg != "" {
			v.Add(fmt.Sprintf("lines[%d].sku", i), msg)
		}
		v.Check(l.Quantity >= 1 && l.Quantity <= MaxQuantity, fmt.Sprintf("lines[%d].quantity", i), fmt.Sprintf("must be from 1 to %d", MaxQuantity))
	}
	if err := v.Err(op); err != nil {
		return err
	}
	sorted := slices.Clone(lines)
	slices.SortFunc(sorted, func(a, b ReservedLine) int {
		return cmp.Or(strings.Compare(a.SKU, b.SKU), strings.Compare(a.Location, b.Location))
	})
	ledger := make([]ledgerRow, 0, len(sorted))
	for i, l := range sorted {
		st, err := s.state(ctx, tx, l.SKU)
		if err != nil {
			return err
		}
		loc := st.loc(l.Location)
		if loc == nil {
			return errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
				[]errs.FieldError{{Field: fmt.Sprintf("lines[%d].location", i), Message: "holds no stock of this SKU"}})
		}
		if loc.curOnHand()+l.Quantity > MaxOnHand {
			return errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
				[]errs.FieldError{{Field: fmt.Sprintf("lines[%d].quantity", i), Message: "would raise on_hand over its maximum"}})
		}
		loc.change(tx, l.Quantity, 0)
		ledger = append(ledger, ledgerRow{sku: l.SKU, location: l.Location, reason: ReasonReturn, dOnHand: l.Quantity})
	}
	return writeLedger(ctx, tx, ref, ledger)
}

// Reservation returns the reservation of ref with its lines; not_found
// when there is none.
func (s *Service) Reservation(ctx context.Context, ref string) (Reservation, error) {
	const op = "inventory.Reservation"
	r := Reservation{Ref: ref, Lines: []ReservedLine{}}
	var created, expires int64
	err := s.db.Reader().QueryRowContext(ctx, `SELECT customer_id, status, created_at, expires_at FROM inventory_reservations
		WHERE ref = $1`, ref).Scan(&r.CustomerID, &r.Status, &created, &expires)
	if errNoRows(err) {
		return Reservation{}, errs.E(op, errs.NotFound, "no reservation for this reference")
	}
	if err != nil {
		return Reservation{}, errs.E(op, errs.Internal, err)
	}
	r.CreatedAt, r.ExpiresAt = sqldb.FromMicros(created), sqldb.FromMicros(expires)
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT sku, location, quantity FROM inventory_reservation_lines
		WHERE ref = $1 ORDER BY sku, location`, ref)
	if err != nil {
		return Reservation{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	for rows.Next() {
		var l ReservedLine
		if err := rows.Scan(&l.SKU, &l.Location, &l.Quantity); err != nil {
			return Reservation{}, errs.E(op, errs.Internal, err)
		}
		r.Lines = append(r.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return Reservation{}, errs.E(op, errs.Internal, err)
	}
	return r, nil
}

type lineRow struct {
	ReservedLine
	counted bool
}

// reservationLines reads ref's lines in the order rows are locked in.
func reservationLines(ctx context.Context, tx *sqldb.Tx, ref string) ([]lineRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT sku, location, quantity, counted FROM inventory_reservation_lines
		WHERE ref = $1 ORDER BY sku, location`, ref)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []lineRow
	for rows.Next() {
		var l lineRow
		var counted int
		if err := rows.Scan(&l.SKU, &l.Location, &l.Quantity, &counted); err != nil {
			return nil, err
		}
		l.counted = counted == 1
		out = append(out, l)
	}
	return out, rows.Err()
}

// ExpiredTx lists up to limit references whose reservations are still
// reserved and expired at tx.Now, the earliest first: the work of the
// orders module's expiry job, which expires each order (order.expired
// releases it here) or calls ReleaseTx in the same unit.
func (s *Service) ExpiredTx(ctx context.Context, tx *sqldb.Tx, limit int) ([]string, error) {
	return expired(ctx, tx, tx.Now, limit)
}

// Expired is ExpiredTx on the reader, at the database clock's now.
func (s *Service) Expired(ctx context.Context, limit int) ([]string, error) {
	return expired(ctx, s.db.Reader(), s.db.Now(), limit)
}

func expired(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, now time.Time, limit int) ([]string, error) {
	const op = "inventory.Expired"
	rows, err := q.QueryContext(ctx, `SELECT ref FROM inventory_reservations WHERE status = 'reserved' AND expires_at <= $1
		ORDER BY expires_at, ref LIMIT $2`, sqldb.Micros(now), limit)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var ref string
		if err := rows.Scan(&ref); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		out = append(out, ref)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
