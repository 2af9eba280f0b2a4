package channels

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"strings"

	"mercato/internal/orders"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/sqldb"
)

// ImportRequest is POST /api/v1/channels/{code}/orders's body.
type ImportRequest struct {
	ExternalID      string                `json:"external_id" maxlen:"100" doc:"The channel's order id: an order is imported once per channel and external_id."`
	Lines           []orders.ImportLine   `json:"lines" doc:"1 to 100 lines at the channel's prices."`
	Customer        orders.ImportCustomer `json:"customer"`
	ShippingAddress *orders.Address       `json:"shipping_address"`
}

// Imported is an import's outcome: the order, and whether this call
// created it (false: the (channel, external_id) was imported before).
type Imported struct {
	Order   orders.Order
	Created bool
}

// ImportTx imports channel code's order in in tx, once per (code,
// in.ExternalID): a repeat returns the first order (Created false) and
// reserves nothing. The unit first claims the key in channels_imports
// (INSERT … ON CONFLICT DO NOTHING): of racing units one inserts; on
// PostgreSQL the others' INSERT waits for it to commit and then inserts
// nothing, and they answer with its order (had it rolled back, one of them
// inserts instead). Then it writes the order through orders.ImportTx
// (validation and unknown SKUs 422, shortage 409 out_of_stock) and counts
// the lines against the channel's quotas (409 quota_exceeded). Any refusal
// leaves nothing, the claim included: the unit rolls back.
func (s *Service) ImportTx(ctx context.Context, tx *sqldb.Tx, code string, in ImportRequest) (Imported, error) {
	const op = "channels.Import"
	if s.orders == nil {
		return Imported{}, errs.E(op, errs.Unavailable, "no orders module is wired")
	}
	if _, err := getTx(ctx, tx, code); err != nil {
		return Imported{}, err
	}
	var v errs.Validation
	v.Check(strings.TrimSpace(in.ExternalID) != "", "external_id", "is required")
	v.Check(in.ShippingAddress != nil, "shipping_address", "is required")
	if err := v.Err(op); err != nil {
		return Imported{}, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO channels_imports (channel, external_id, order_id, customer_email, customer_name, created_at)
		VALUES ($1, $2, NULL, $3, $4, $5) ON CONFLICT DO NOTHING`,
		code, in.ExternalID, in.Customer.Email, in.Customer.Name, sqldb.Micros(tx.Now))
	if err != nil {
		return Imported{}, errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Imported{}, errs.E(op, errs.Internal, err)
	} else if n == 0 {
		id, err := importedTx(ctx, tx, code, in.ExternalID)
		if err != nil {
			return Imported{}, err
		}
		o, err := s.orders.OrderTx(ctx, tx, id)
		return Imported{Order: o}, err
	}
	o, err := s.orders.ImportTx(ctx, tx, orders.Import{Channel: code, ExternalID: in.ExternalID, Lines: in.Lines,
		Customer: in.Customer, Address: *in.ShippingAddress})
	if err != nil {
		return Imported{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE channels_imports SET order_id = $1 WHERE channel = $2 AND external_id = $3`,
		o.ID, code, in.ExternalID); err != nil {
		return Imported{}, errs.E(op, errs.Internal, err)
	}
	if err := s.countQuotasTx(ctx, tx, code, in.Lines); err != nil {
		return Imported{}, err
	}
	return Imported{Order: o, Created: true}, nil
}

// Import is ImportTx as one unit of the write path (without the
// idempotency store: channels_imports alone de-duplicates).
func (s *Service) Import(ctx context.Context, code string, in ImportRequest) (im Imported, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { im, err = s.ImportTx(ctx, tx, code, in); return err })
	return im, err
}

// importedTx returns the order imported for (code, externalID), a key
// committed (or claimed earlier in tx) with its order.
func importedTx(ctx context.Context, tx *sqldb.Tx, code, externalID string) (string, error) {
	var id sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT order_id FROM channels_imports WHERE channel = $1 AND external_id = $2`,
		code, externalID).Scan(&id)
	if err == nil && !id.Valid {
		err = errors.New("an import key without its order")
	}
	if err != nil {
		return "", errs.E("channels.Import", errs.Internal, err)
	}
	return id.String, nil
}

// countQuotasTx adds lines to channel code's quota counters, in SKU order,
// each with a conditional UPDATE (reserved + n <= units); a SKU without a
// quota is not counted. Every SKU over its cap is named in the 409.
func (s *Service) countQuotasTx(ctx context.Context, tx *sqldb.Tx, code string, lines []orders.ImportLine) error {
	const op = "channels.quota"
	sorted := append([]orders.ImportLine(nil), lines...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].SKU < sorted[j].SKU })
	var over []errs.FieldError
	for _, l := range sorted {
		res, err := tx.ExecContext(ctx, `UPDATE channels_quotas SET reserved = reserved + $1, updated_at = $2
			WHERE channel = $3 AND sku = $4 AND reserved + $1 <= units`, l.Quantity, sqldb.Micros(tx.Now), code, l.SKU)
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		if n == 1 {
			continue
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM channels_quotas WHERE channel = $1 AND sku = $2`, code, l.SKU).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue // no quota on this SKU
		case err != nil:
			return errs.E(op, errs.Internal, err)
		}
		over = append(over, errs.FieldError{Field: "lines", Message: l.SKU + " is over the channel's quota"})
	}
	if len(over) > 0 {
		return errs.E(op, errs.Conflict, errs.Code("quota_exceeded"), "the channel's quota of a SKU would be exceeded", over)
	}
	return nil
}

// QuotaConsumer gives a cancelled imported order's units back to its
// channel's quotas (reserved counts down), so that a quota caps the units
// a channel holds, not those it ever sold. Exactly-once through the inbox;
// an order that was not imported is no concern of it.
func (s *Service) QuotaConsumer() inbox.Consumer {
	return inbox.Consumer{Name: "channels_quotas", Events: []string{orders.OrderCancelled.Type()}, Handle: s.HandleOrderCancelled}
}

// HandleOrderCancelled is QuotaConsumer's handler.
func (s *Service) HandleOrderCancelled(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
	const op = "channels.release"
	if e.Type != orders.OrderCancelled.Type() || s.orders == nil {
		return nil
	}
	var channel string
	err := tx.QueryRowContext(ctx, `SELECT channel FROM channels_imports WHERE order_id = $1`, e.AggregateID).Scan(&channel)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	o, err := s.orders.OrderTx(ctx, tx, e.AggregateID)
	if err != nil {
		return err
	}
	lines := append([]orders.OrderLine(nil), o.Lines...)
	sort.Slice(lines, func(i, j int) bool { return lines[i].SKU < lines[j].SKU })
	for _, l := range lines {
		if _, err := tx.ExecContext(ctx, `UPDATE channels_quotas
			SET reserved = CASE WHEN reserved >= $1 THEN reserved - $1 ELSE 0 END, updated_at = $2
			WHERE channel = $3 AND sku = $4`, l.Quantity, sqldb.Micros(tx.Now), channel, l.SKU); err != nil {
			return errs.E(op, errs.Internal, err)
		}
	}
	return nil
}
