package inventory

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// The reasons of ledger rows.
const (
	ReasonReceipt     = "receipt"     // on_hand raised by staff (PUT)
	ReasonAdjustment  = "adjustment"  // on_hand lowered by staff (PUT)
	ReasonReservation = "reservation" // units reserved for an order
	ReasonRelease     = "release"     // a reservation released (cancel, expiry)
	ReasonCommit      = "commit"      // a reservation committed (paid): units left stock
	ReasonReturn      = "return"      // units returned to stock
)

// LedgerEntry is one change of a SKU's stock at a location.
type LedgerEntry struct {
	ID       string `json:"id"`
	SKU      string `json:"sku"`
	Location string `json:"location"`
	Reason   string `json:"reason" doc:"receipt, adjustment, reservation, release, commit or return"`
	// Reference is the order reference of a reservation, release or commit,
	// or the staff member's id for a receipt or adjustment.
	Reference     string    `json:"reference"`
	OnHandDelta   int64     `json:"on_hand_delta"`
	ReservedDelta int64     `json:"reserved_delta"`
	At            time.Time `json:"at"`
}

type ledgerRow struct {
	sku, location, reason string
	dOnHand, dRes         int64
	ref                   string // set by writeLedger
}

type ledgerKey struct{}

// writeLedger appends rows (with reference ref) to the ledger. The rows of
// all the transaction's units are inserted together just before it commits
// (sqldb.AtCommit: a batch of reservations is one INSERT), so a read of the
// ledger inside tx does not see them yet.
func writeLedger(ctx context.Context, tx *sqldb.Tx, ref string, rows []ledgerRow) error {
	if len(rows) == 0 {
		return nil
	}
	for i := range rows {
		rows[i].ref = ref
	}
	return sqldb.AtCommit(ctx, tx, ledgerKey{}, insertLedger, rows...)
}

// ledgerChunk bounds the rows of one ledger INSERT (6 parameters each).
const ledgerChunk = 500

// insertLedger inserts rows in order, a multi-row INSERT per ledgerChunk.
func insertLedger(ctx context.Context, tx *sqldb.Tx, rows []ledgerRow) error {
	for start := 0; start < len(rows); start += ledgerChunk {
		chunk := rows[start:min(start+ledgerChunk, len(rows))]
		var b strings.Builder
		b.WriteString(`INSERT INTO inventory_ledger (sku, location, reason, reference, on_hand_delta, reserved_delta, created_at) VALUES `)
		args := make([]any, 0, 5*len(chunk)+1)
		args = append(args, sqldb.Micros(tx.Now))
		for i, r := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			n := len(args)
			fmt.Fprintf(&b, "($%d, $%d, $%d, $%d, $%d, $%d, $1)", n+1, n+2, n+3, n+4, n+5, n+6)
			args = append(args, r.sku, r.location, r.reason, r.ref, r.dOnHand, r.dRes)
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return errs.E("inventory.ledger", errs.Internal, err)
		}
	}
	return nil
}

// Ledger returns a page of sku's ledger, newest first.
func (s *Service) Ledger(ctx context.Context, sku string, p web.PageRequest) (web.Page[LedgerEntry], error) {
	const op = "inventory.Ledger"
	if msg := checkSKU(sku); msg != "" {
		return web.Page[LedgerEntry]{}, skuInvalid(op, msg)
	}
	var after int64
	has, err := p.After(&after)
	if err != nil {
		return web.Page[LedgerEntry]{}, err
	}
	q := `SELECT id, location, reason, reference, on_hand_delta, reserved_delta, created_at FROM inventory_ledger WHERE sku = $1`
	args := []any{sku}
	if has {
		q += ` AND id < $3`
		args = append(args, p.Limit+1, after)
	} else {
		args = append(args, p.Limit+1)
	}
	rows, err := s.db.Reader().QueryContext(ctx, q+` ORDER BY id DESC LIMIT $2`, args...)
	if err != nil {
		return web.Page[LedgerEntry]{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	var out []LedgerEntry
	for rows.Next() {
		e := LedgerEntry{SKU: sku}
		var id, at int64
		if err := rows.Scan(&id, &e.Location, &e.Reason, &e.Reference, &e.OnHandDelta, &e.ReservedDelta, &at); err != nil {
			return web.Page[LedgerEntry]{}, errs.E(op, errs.Internal, err)
		}
		e.ID, e.At = strconv.FormatInt(id, 10), sqldb.FromMicros(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return web.Page[LedgerEntry]{}, errs.E(op, errs.Internal, err)
	}
	return web.NewPage(out, p.Limit, func(last LedgerEntry) any { n, _ := strconv.ParseInt(last.ID, 10, 64); return n }), nil
}
