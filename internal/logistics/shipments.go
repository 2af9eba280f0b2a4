package logistics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mercato/internal/logistics/carrier"
	"mercato/internal/orders"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// Line is a SKU and a quantity of it.
type Line struct {
	SKU      string `json:"sku" maxlen:"64"`
	Quantity int64  `json:"quantity" doc:"1 or more."`
}

// ShipmentRequest is POST /api/v1/admin/orders/{id}/shipments's body.
type ShipmentRequest struct {
	Carrier string `json:"carrier" maxlen:"40" doc:"The carrier's code: sandbox."`
	Lines   []Line `json:"lines,omitempty" doc:"What the parcel holds; absent: every unshipped unit of the order."`
}

// Shipment is a parcel of some of an order's lines.
type Shipment struct {
	ID             string         `json:"id"`
	OrderID        string         `json:"order_id"`
	Carrier        string         `json:"carrier"`
	TrackingNumber string         `json:"tracking_number"`
	Status         carrier.Status `json:"status"`
	Lines          []Line         `json:"lines"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
	DeliveredAt    *time.Time     `json:"delivered_at,omitempty"`
}

// maxShipmentLines bounds a shipment request's lines.
const maxShipmentLines = 100

// CodeAlreadyShipped is the 409 of a shipment asking for units that are
// shipped already (or were taken by a shipment created meanwhile).
const CodeAlreadyShipped errs.Code = "already_shipped"

// shippable reports whether an order in status st may get a shipment.
func shippable(st orders.Status) bool {
	return st == orders.StatusPaid || st == orders.StatusPartiallyShipped
}

// OpenFulfilmentTx opens the fulfilment of paid order id in tx: its lines
// to ship and a pick list per location, from inventory's allocation of
// the order's reservation (one pick list at default when it has none). It
// is idempotent: what exists (the first shipment may have come first) is
// kept.
func (s *Service) OpenFulfilmentTx(ctx context.Context, tx *sqldb.Tx, id string) error {
	const op = "logistics.OpenFulfilment"
	o, err := s.orders.OrderTx(ctx, tx, id)
	if errs.Is(err, errs.NotFound) {
		return nil // an order this database does not hold: nothing to fulfil
	}
	if err != nil {
		return err
	}
	if _, err := s.seedTx(ctx, tx, o); err != nil {
		return err
	}
	picks := map[[2]string]int64{}
	if s.stock != nil {
		if r, err := s.stock.Reservation(ctx, id); err == nil {
			for _, l := range r.Lines {
				picks[[2]string{l.Location, l.SKU}] += l.Quantity
			}
		} else if !errs.Is(err, errs.NotFound) {
			return err
		}
	}
	if len(picks) == 0 {
		for _, l := range o.Lines {
			picks[[2]string{"default", l.SKU}] += int64(l.Quantity)
		}
	}
	keys := make([][2]string, 0, len(picks))
	for k := range picks {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1]) })
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, `INSERT INTO logistics_pick_lines (order_id, location, sku, quantity) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, id, k[0], k[1], picks[k]); err != nil {
			return errs.E(op, errs.Internal, err)
		}
	}
	return nil
}

// seedTx makes sure order o's fulfilment and lines exist in tx (whichever
// of the order.paid consumer and the first shipment comes first) and
// reports whether it created them.
func (s *Service) seedTx(ctx context.Context, tx *sqldb.Tx, o orders.Order) (bool, error) {
	const op = "logistics.seed"
	now := sqldb.Micros(tx.Now)
	res, err := tx.ExecContext(ctx, `INSERT INTO logistics_fulfilments (order_id, status, currency, created_at, updated_at)
		VALUES ($1, 'open', $2, $3, $3) ON CONFLICT DO NOTHING`, o.ID, o.Currency, now)
	if err != nil {
		return false, errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, errs.E(op, errs.Internal, err)
	} else if n == 0 {
		return false, nil // there already
	}
	lines := slices.Clone(o.Lines)
	slices.SortFunc(lines, func(a, b orders.OrderLine) int { return strings.Compare(a.SKU, b.SKU) })
	for _, l := range lines {
		if _, err := tx.ExecContext(ctx, `INSERT INTO logistics_order_lines (order_id, sku, quantity, unit_price) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, o.ID, l.SKU, l.Quantity, l.UnitPrice.Amount()); err != nil {
			return false, errs.E(op, errs.Internal, err)
		}
	}
	return true, nil
}

// prepareShipment checks the request that needs no database and asks the
// carrier for a label: the work before the unit.
func (s *Service) prepareShipment(ctx context.Context, shipmentID, orderID string, in ShipmentRequest) (carrier.Label, error) {
	const op = "logistics.CreateShipment"
	var v errs.Validation
	c, ok := s.carriers[in.Carrier]
	v.Check(ok, "carrier", "is not a carrier this shop uses")
	v.Check(len(in.Lines) <= maxShipmentLines, "lines", fmt.Sprintf("must hold at most %d lines", maxShipmentLines))
	seen := map[string]bool{}
	units := 0
	for i, l := range in.Lines {
		v.Check(l.SKU != "", fmt.Sprintf("lines[%d].sku", i), "is required")
		v.Check(!seen[l.SKU], fmt.Sprintf("lines[%d].sku", i), "is given twice")
		v.Check(l.Quantity >= 1 && l.Quantity <= 1_000_000, fmt.Sprintf("lines[%d].quantity", i), "must be from 1 to 1000000")
		seen[l.SKU] = true
		units += int(l.Quantity)
	}
	if err := v.Err(op); err != nil {
		return carrier.Label{}, err
	}
	l, err := c.Label(ctx, carrier.LabelRequest{ShipmentID: shipmentID, OrderID: orderID, Units: units})
	if err != nil {
		return carrier.Label{}, errs.E(op, errs.Unavailable, "the carrier did not issue a label; try again", err)
	}
	return l, nil
}

// CreateShipmentTx records shipment shipmentID of order id in tx, with the
// label the carrier issued: the lines asked for (all unshipped units when
// none are) are taken from what is left to ship by conditional writes, so
// that of two shipments of the same last units one wins and the other is
// 409 already_shipped. The order moves to partially_shipped, or shipped
// when nothing is left (order.shipped); an order that is unpaid,
// cancelled or shipped is 409 invalid_transition. Emits shipment.created.
func (s *Service) CreateShipmentTx(ctx context.Context, tx *sqldb.Tx, shipmentID, id string, in ShipmentRequest, label carrier.Label) (Shipment, error) {
	const op = "logistics.CreateShipment"
	o, err := s.orders.OrderTx(ctx, tx, id)
	if err != nil {
		return Shipment{}, err
	}
	if !shippable(o.Status) {
		return Shipment{}, errs.E(op, errs.Conflict, errs.CodeInvalidTransition, fmt.Sprintf("an order that is %s cannot be shipped", o.Status))
	}
	if _, err := s.seedTx(ctx, tx, o); err != nil {
		return Shipment{}, err
	}
	if err := lockFulfilment(ctx, tx, id); err != nil {
		return Shipment{}, err
	}
	left, err := unshipped(ctx, tx, id)
	if err != nil {
		return Shipment{}, err
	}
	lines := slices.Clone(in.Lines)
	if len(lines) == 0 {
		for _, l := range left {
			if l.Quantity > 0 {
				lines = append(lines, l)
			}
		}
		if len(lines) == 0 {
			return Shipment{}, errs.E(op, errs.Conflict, errs.CodeInvalidTransition, "every unit of the order is shipped")
		}
	}
	var v errs.Validation
	for i, l := range lines {
		v.Check(slices.ContainsFunc(left, func(x Line) bool { return x.SKU == l.SKU }), fmt.Sprintf("lines[%d].sku", i), "is not in the order")
	}
	if err := v.Err(op); err != nil {
		return Shipment{}, err
	}
	slices.SortFunc(lines, func(a, b Line) int { return strings.Compare(a.SKU, b.SKU) })
	for _, l := range lines {
		res, err := tx.ExecContext(ctx, `UPDATE logistics_order_lines SET shipped = shipped + $1
			WHERE order_id = $2 AND sku = $3 AND shipped + $1 <= quantity`, l.Quantity, id, l.SKU)
		if err != nil {
			return Shipment{}, errs.E(op, errs.Internal, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return Shipment{}, errs.E(op, errs.Internal, err)
		} else if n == 0 {
			return Shipment{}, errs.E(op, errs.Conflict, CodeAlreadyShipped, fmt.Sprintf("fewer than %d units of %s are left to ship", l.Quantity, l.SKU))
		}
	}
	rest, err := unshipped(ctx, tx, id)
	if err != nil {
		return Shipment{}, err
	}
	all := !slices.ContainsFunc(rest, func(l Line) bool { return l.Quantity > 0 })
	now := sqldb.Micros(tx.Now)
	if _, err := tx.ExecContext(ctx, `INSERT INTO logistics_shipments (id, order_id, carrier, tracking_number, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'label_created', $5, $5)`, shipmentID, id, in.Carrier, label.TrackingNumber, now); err != nil {
		return Shipment{}, errs.E(op, errs.Internal, err)
	}
	evLines := make([]EventLine, len(lines))
	for i, l := range lines {
		if _, err := tx.ExecContext(ctx, `INSERT INTO logistics_shipment_lines (shipment_id, sku, quantity) VALUES ($1, $2, $3)`,
			shipmentID, l.SKU, l.Quantity); err != nil {
			return Shipment{}, errs.E(op, errs.Internal, err)
		}
		evLines[i] = EventLine(l)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO logistics_tracking_events (shipment_id, seq, source_id, status, occurred_at, description)
		VALUES ($1, 1, $2, 'label_created', $3, 'Shipping label created')`, shipmentID, labelKey, now); err != nil {
		return Shipment{}, errs.E(op, errs.Internal, err)
	}
	if all {
		if _, err := tx.ExecContext(ctx, `UPDATE logistics_fulfilments SET status = 'shipped', updated_at = $1 WHERE order_id = $2`, now, id); err != nil {
			return Shipment{}, errs.E(op, errs.Internal, err)
		}
	}
	if _, err := s.orders.ShipTx(ctx, tx, id, shipmentID, all); err != nil {
		return Shipment{}, err
	}
	ev, err := ShipmentCreated.New(shipmentID, tx.Now, ShipmentData{ShipmentID: shipmentID, OrderID: id, Carrier: in.Carrier,
		TrackingNumber: label.TrackingNumber, Lines: evLines})
	if err != nil {
		return Shipment{}, errs.E(op, errs.Internal, err)
	}
	if err := outbox.Append(ctx, tx, &ev); err != nil {
		return Shipment{}, err
	}
	return Shipment{ID: shipmentID, OrderID: id, Carrier: in.Carrier, TrackingNumber: label.TrackingNumber, Status: carrier.LabelCreated,
		Lines: lines, CreatedAt: tx.Now, UpdatedAt: tx.Now}, nil
}

// CreateShipment asks the carrier for a label and records the shipment as
// one unit of the write path (CreateShipmentTx).
func (s *Service) CreateShipment(ctx context.Context, id string, in ShipmentRequest) (sh Shipment, err error) {
	shipmentID := newID()
	label, err := s.prepareShipment(ctx, shipmentID, id, in)
	if err != nil {
		return Shipment{}, err
	}
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error {
		sh, err = s.CreateShipmentTx(ctx, tx, shipmentID, id, in, label)
		return err
	})
	return sh, err
}

// lockFulfilment takes order id's fulfilment row in tx, so that the units
// deciding about the order as a whole (is this the last unit shipped? the
// last shipment delivered?) run one after the other and each sees what
// the one before committed.
func lockFulfilment(ctx context.Context, tx *sqldb.Tx, id string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE logistics_fulfilments SET updated_at = $1 WHERE order_id = $2`, sqldb.Micros(tx.Now), id); err != nil {
		return errs.E("logistics.lock", errs.Internal, err)
	}
	return nil
}

// labelKey is the source id of a timeline's label_created event: one per
// shipment, whether the module or the carrier reported it.
const labelKey = "label_created"

// unshipped lists order id's lines with the units left to ship, by SKU.
func unshipped(ctx context.Context, tx *sqldb.Tx, id string) ([]Line, error) {
	rows, err := tx.QueryContext(ctx, `SELECT sku, quantity - shipped FROM logistics_order_lines WHERE order_id = $1 ORDER BY sku`, id)
	if err != nil {
		return nil, errs.E("logistics.unshipped", errs.Internal, err)
	}
	defer rows.Close()
	out := []Line{}
	for rows.Next() {
		var l Line
		if err := rows.Scan(&l.SKU, &l.Quantity); err != nil {
			return nil, errs.E("logistics.unshipped", errs.Internal, err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E("logistics.unshipped", errs.Internal, err)
	}
	return out, nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
