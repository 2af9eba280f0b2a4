package inventory

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// ReceiveTx adds received units to on_hand at location in tx (goods in
// from a supplier, a warehouse's receipt): each line's quantity is added to
// what is there, as a change and not a new count, so receipts racing
// reservations or other receipts of the SKU merge with them (one
// conditional UPDATE per row per batch) and none is lost. actorID (a staff
// id, or "warehouse:<code>") is the ledger rows' reference and the audit
// entry's actor. The location must exist and each SKU be given once
// (validation_failed, naming the field); a SKU new at the location gets its
// row there. It returns each line's SKU level after the change, in line
// order.
func (s *Service) ReceiveTx(ctx context.Context, tx *sqldb.Tx, location string, lines []Line, actorID string) ([]Level, error) {
	const op = "inventory.Receive"
	if location == "" {
		location = DefaultLocation
	}
	var v errs.Validation
	v.Check(len(location) <= MaxLocationLen && locationRE.MatchString(location), "location", "is not a location code")
	v.Check(len(lines) > 0 && len(lines) <= MaxLines, "lines", fmt.Sprintf("must hold 1 to %d lines", MaxLines))
	seen := map[string]bool{}
	for i, l := range lines {
		if msg := checkSKU(l.SKU); msg != "" {
			v.Add(fmt.Sprintf("lines[%d].sku", i), msg)
		}
		v.Check(!seen[l.SKU], fmt.Sprintf("lines[%d].sku", i), "is given twice")
		seen[l.SKU] = true
		v.Check(l.Quantity >= 1 && l.Quantity <= MaxQuantity, fmt.Sprintf("lines[%d].quantity", i), fmt.Sprintf("must be from 1 to %d", MaxQuantity))
	}
	if err := v.Err(op); err != nil {
		return nil, err
	}
	// SKU order: the lock order of the rows the flush takes.
	order := make([]int, len(lines))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(lines[a].SKU, lines[b].SKU) })
	states := make([]*skuState, len(lines))
	ledger := make([]ledgerRow, 0, len(lines))
	for _, i := range order {
		l := lines[i]
		st, err := s.state(ctx, tx, l.SKU)
		if err != nil {
			return nil, err
		}
		loc := st.loc(location)
		if loc == nil {
			if loc, err = s.addLocation(ctx, tx, st, location); err != nil {
				return nil, err
			}
		}
		if loc.curOnHand()+l.Quantity > MaxOnHand {
			return nil, errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
				[]errs.FieldError{{Field: fmt.Sprintf("lines[%d].quantity", i), Message: "would raise on_hand over its maximum"}})
		}
		loc.change(tx, l.Quantity, 0)
		states[i] = st
		ledger = append(ledger, ledgerRow{sku: l.SKU, location: location, reason: ReasonReceipt, dOnHand: l.Quantity})
	}
	if err := writeLedger(ctx, tx, actorID, ledger); err != nil {
		return nil, err
	}
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: "inventory.stock_received", TargetType: "location",
		TargetID: location, After: map[string]any{"lines": lines}}); err != nil {
		return nil, err
	}
	out := make([]Level, len(lines))
	for i, st := range states {
		out[i] = st.level()
	}
	return out, nil
}

// LocationExists reports whether the stock location code exists.
func (s *Service) LocationExists(ctx context.Context, code string) (bool, error) {
	var n int
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM inventory_locations WHERE code = $1`, code).Scan(&n); err != nil {
		return false, errs.E("inventory.LocationExists", errs.Internal, err)
	}
	return n > 0, nil
}
