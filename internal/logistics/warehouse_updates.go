package logistics

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"mercato/internal/inventory"
	"mercato/internal/logistics/carrier"
	"mercato/internal/orders"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/outbox"
	serversecret "mercato/internal/platform/secret"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// The types of a warehouse update.
const (
	UpdatePicked        = "picked"         // the order's units are picked
	UpdatePacked        = "packed"         // the order is packed
	UpdateShipped       = "shipped"        // a parcel left with a carrier: a shipment
	UpdateStockReceived = "stock_received" // units arrived at the warehouse's location
	UpdateStockAdjusted = "stock_adjusted" // a count of units at the warehouse's location
)

// The Standard Webhooks headers a warehouse signs its updates with.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// signatureTolerance is how far a signed update's timestamp may be from
// the server's clock (Standard Webhooks' recommendation).
const signatureTolerance = 5 * time.Minute

// maxUpdateID bounds an update id (the webhook-id header).
const maxUpdateID = 100

var (
	updateIDRE       = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,100}$`)
	carrierCodeRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
	trackingNumberRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// WarehouseUpdate is the body of a warehouse's signed update.
type WarehouseUpdate struct {
	Type           string       `json:"type" maxlen:"20" doc:"picked, packed, shipped, stock_received or stock_adjusted."`
	OrderID        string       `json:"order_id,omitempty" maxlen:"64" doc:"picked, packed, shipped: the order."`
	Carrier        string       `json:"carrier,omitempty" maxlen:"40" doc:"shipped: the carrier's code (lower-case)."`
	TrackingNumber string       `json:"tracking_number,omitempty" maxlen:"64" doc:"shipped: the parcel's tracking number."`
	Lines          []UpdateLine `json:"lines,omitempty" doc:"shipped: what the parcel holds (absent: every unshipped unit); stock_received: sku and quantity; stock_adjusted: sku and on_hand."`
}

// UpdateLine is a line of a warehouse update.
type UpdateLine struct {
	SKU      string `json:"sku" maxlen:"64"`
	Quantity int64  `json:"quantity,omitempty" doc:"shipped, stock_received: 1 or more."`
	OnHand   *int64 `json:"on_hand,omitempty" doc:"stock_adjusted: the units counted at the location."`
}

// WarehouseUpdateResult is the answer to an applied update (and to its
// redeliveries).
type WarehouseUpdateResult struct {
	UpdateID  string            `json:"update_id"`
	Warehouse string            `json:"warehouse"`
	Type      string            `json:"type"`
	OrderID   string            `json:"order_id,omitempty"`
	Shipment  *Shipment         `json:"shipment,omitempty" doc:"shipped: the shipment made."`
	Stock     []inventory.Level `json:"stock,omitempty" doc:"stock_received, stock_adjusted: each line's SKU after the change."`
}

// warehouseKey returns the HMAC key of a warehouse secret.
func warehouseKey(secret string) ([]byte, error) { return serversecret.StandardKey(secret) }

// SignWarehouseUpdate returns the webhook-signature header of an update
// body with id and unix timestamp ts under secret (a whsec_ secret): what a
// warehouse sends, and what tests use.
func SignWarehouseUpdate(secret, id string, ts int64, body []byte) (string, error) {
	return serversecret.StandardSign([]string{secret}, id, ts, body)
}

// verifyUpdate checks a Standard Webhooks signature of body under any of
// keys, and that its timestamp is within the tolerance of now. It returns
// the update id.
func verifyUpdate(h http.Header, body []byte, keys [][]byte, now time.Time) (string, error) {
	const op = "logistics.WarehouseUpdate"
	id := h.Get(HeaderWebhookID)
	if err := serversecret.VerifyStandard(id, h.Get(HeaderWebhookTimestamp), h.Get(HeaderWebhookSignature),
		body, keys, now, signatureTolerance); err != nil {
		return "", errs.E(op, errs.Malformed, CodeInvalidSignature, err.Error())
	}
	if !updateIDRE.MatchString(id) {
		return "", errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: HeaderWebhookID, Message: fmt.Sprintf("must be 1 to %d of A-Z a-z 0-9 . _ : -", maxUpdateID)}})
	}
	return id, nil
}

// handleWarehouseUpdate verifies the update before anything runs, then
// applies it through the idempotency primitive keyed by its id (scoped to
// the warehouse), backed by logistics_warehouse_updates for redeliveries
// after the idempotency record has been pruned.
func (s *Service) handleWarehouseUpdate(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	body, err := web.Body(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	wh, keys, err := s.warehouseKeys(r.Context(), code)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	id, err := verifyUpdate(r.Header, body, keys, s.db.Now())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	var in WarehouseUpdate
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	if err := checkUpdate(in); err != nil {
		web.Error(w, r, err)
		return
	}
	r.Header.Set(web.HeaderIdempotencyKey, "warehouse-update:"+id)
	shipmentID := newID()
	s.idem.Run(w, r, s.write, web.Mutation{Scope: "warehouse:" + code, Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		res, err := s.ApplyWarehouseUpdateTx(ctx, tx, wh, id, shipmentID, in)
		return http.StatusOK, res, err
	}})
}

// checkUpdate validates what an update holds, by type, before its unit.
func checkUpdate(in WarehouseUpdate) error {
	const op = "logistics.WarehouseUpdate"
	var v errs.Validation
	order := in.Type == UpdatePicked || in.Type == UpdatePacked || in.Type == UpdateShipped
	stock := in.Type == UpdateStockReceived || in.Type == UpdateStockAdjusted
	v.Check(order || stock, "type", "must be picked, packed, shipped, stock_received or stock_adjusted")
	if order {
		v.Check(in.OrderID != "", "order_id", "is required")
	} else {
		v.Check(in.OrderID == "", "order_id", "is only for picked, packed and shipped")
	}
	if in.Type == UpdateShipped {
		v.Check(carrierCodeRE.MatchString(in.Carrier), "carrier", "must be 1 to 40 lower-case letters, digits, '_' and '-'")
		v.Check(trackingNumberRE.MatchString(in.TrackingNumber), "tracking_number", "must be 1 to 64 letters, digits, '.', '_' and '-'")
	} else {
		v.Check(in.Carrier == "" && in.TrackingNumber == "", "carrier", "carrier and tracking_number are only for shipped")
	}
	if in.Type == UpdatePicked || in.Type == UpdatePacked {
		v.Check(len(in.Lines) == 0, "lines", "are not for picked or packed")
	}
	if stock {
		v.Check(len(in.Lines) > 0, "lines", "are required")
	}
	v.Check(len(in.Lines) <= maxShipmentLines, "lines", fmt.Sprintf("must hold at most %d lines", maxShipmentLines))
	seen := map[string]bool{}
	for i, l := range in.Lines {
		f := fmt.Sprintf("lines[%d]", i)
		v.Check(l.SKU != "", f+".sku", "is required")
		v.Check(!seen[l.SKU], f+".sku", "is given twice")
		seen[l.SKU] = true
		if in.Type == UpdateStockAdjusted {
			v.Check(l.OnHand != nil && *l.OnHand >= 0, f+".on_hand", "is required, 0 or more")
			v.Check(l.Quantity == 0, f+".quantity", "is not for stock_adjusted (give on_hand)")
		} else {
			v.Check(l.Quantity >= 1 && l.Quantity <= 1_000_000, f+".quantity", "must be from 1 to 1000000")
			v.Check(l.OnHand == nil, f+".on_hand", "is only for stock_adjusted")
		}
	}
	return v.Err(op)
}

// ApplyWarehouseUpdateTx applies update id of warehouse wh in tx, once: the
// update's row in logistics_warehouse_updates is taken first (a concurrent
// unit with the same id waits for it on PostgreSQL; SQLite has one writer),
// and an update applied before is answered as it was then, changing
// nothing. Otherwise, by type:
//   - picked, packed: order in.OrderID's fulfilment records the stage and
//     the warehouse (fulfilment.updated, once per stage);
//   - shipped: a shipment of the order with the carrier and tracking number
//     the warehouse gives, taken by the same conditional writes as staff's
//     (CreateShipmentTx: 409 already_shipped, 422 for a SKU not in the
//     order; 409 tracking_number_taken for a number the carrier used);
//   - stock_received, stock_adjusted: inventory's ReceiveTx and SetStockTx
//     at the warehouse's location, the warehouse ("warehouse:<code>") as
//     the actor.
//
// An unknown order is 422 naming order_id; an order that is not paid (or
// is shipped in full) is 409 invalid_transition.
func (s *Service) ApplyWarehouseUpdateTx(ctx context.Context, tx *sqldb.Tx, wh Warehouse, id, shipmentID string, in WarehouseUpdate) (WarehouseUpdateResult, error) {
	const op = "logistics.WarehouseUpdate"
	res, err := tx.ExecContext(ctx, `INSERT INTO logistics_warehouse_updates (warehouse, update_id, type, order_id, answer, received_at)
		VALUES ($1, $2, $3, $4, '', $5) ON CONFLICT (warehouse, update_id) DO NOTHING`, wh.Code, id, in.Type, in.OrderID, sqldb.Micros(tx.Now))
	if err != nil {
		return WarehouseUpdateResult{}, errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return WarehouseUpdateResult{}, errs.E(op, errs.Internal, err)
	} else if n == 0 {
		return appliedBefore(ctx, tx, wh.Code, id)
	}
	out := WarehouseUpdateResult{UpdateID: id, Warehouse: wh.Code, Type: in.Type, OrderID: in.OrderID}
	actor := "warehouse:" + wh.Code
	switch in.Type {
	case UpdatePicked, UpdatePacked:
		err = s.stageTx(ctx, tx, wh, in)
	case UpdateShipped:
		var sh Shipment
		if sh, err = s.warehouseShipTx(ctx, tx, shipmentID, in); err == nil {
			out.Shipment = &sh
		}
	case UpdateStockReceived:
		if s.stock == nil {
			return out, errs.E(op, errs.Unavailable, "this shop keeps no inventory")
		}
		lines := make([]inventory.Line, len(in.Lines))
		for i, l := range in.Lines {
			lines[i] = inventory.Line{SKU: l.SKU, Quantity: l.Quantity}
		}
		out.Stock, err = s.stock.ReceiveTx(ctx, tx, wh.Location, lines, actor)
	case UpdateStockAdjusted:
		if s.stock == nil {
			return out, errs.E(op, errs.Unavailable, "this shop keeps no inventory")
		}
		for _, l := range in.Lines {
			var lv inventory.Level
			if lv, err = s.stock.SetStockTx(ctx, tx, l.SKU, wh.Location, *l.OnHand, actor); err != nil {
				break
			}
			out.Stock = append(out.Stock, lv)
		}
	}
	if err != nil {
		return WarehouseUpdateResult{}, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return WarehouseUpdateResult{}, errs.E(op, errs.Internal, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE logistics_warehouse_updates SET answer = $3 WHERE warehouse = $1 AND update_id = $2`,
		wh.Code, id, string(b)); err != nil {
		return WarehouseUpdateResult{}, errs.E(op, errs.Internal, err)
	}
	return out, nil
}

// appliedBefore answers an update that was applied already with the answer
// it got then.
func appliedBefore(ctx context.Context, tx *sqldb.Tx, code, id string) (WarehouseUpdateResult, error) {
	const op = "logistics.WarehouseUpdate"
	var answer string
	if err := tx.QueryRowContext(ctx, `SELECT answer FROM logistics_warehouse_updates WHERE warehouse = $1 AND update_id = $2`,
		code, id).Scan(&answer); err != nil {
		return WarehouseUpdateResult{}, errs.E(op, errs.Internal, err)
	}
	var out WarehouseUpdateResult
	if err := json.Unmarshal([]byte(answer), &out); err != nil {
		return WarehouseUpdateResult{}, errs.E(op, errs.Internal, err)
	}
	return out, nil
}

// shippableOrderTx reads the order an update names: 422 when there is no
// such order, 409 invalid_transition when it cannot be shipped.
func (s *Service) shippableOrderTx(ctx context.Context, tx *sqldb.Tx, id string) (orders.Order, error) {
	const op = "logistics.WarehouseUpdate"
	o, err := s.orders.OrderTx(ctx, tx, id)
	if errs.Is(err, errs.NotFound) {
		return orders.Order{}, errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "order_id", Message: "is not an order of this shop"}})
	}
	if err != nil {
		return orders.Order{}, err
	}
	if !shippable(o.Status) {
		return orders.Order{}, errs.E(op, errs.Conflict, errs.CodeInvalidTransition, fmt.Sprintf("an order that is %s is not being fulfilled", o.Status))
	}
	return o, nil
}

// stageTx records a picked or packed stage on the order's fulfilment,
// with fulfilment.updated the first time.
func (s *Service) stageTx(ctx context.Context, tx *sqldb.Tx, wh Warehouse, in WarehouseUpdate) error {
	const op = "logistics.WarehouseUpdate"
	o, err := s.shippableOrderTx(ctx, tx, in.OrderID)
	if err != nil {
		return err
	}
	if _, err := s.seedTx(ctx, tx, o); err != nil {
		return err
	}
	col := "picked_at"
	if in.Type == UpdatePacked {
		col = "packed_at"
	}
	res, err := tx.ExecContext(ctx, `UPDATE logistics_fulfilments SET `+col+` = $1, warehouse = $2, updated_at = $1
		WHERE order_id = $3 AND `+col+` IS NULL`, sqldb.Micros(tx.Now), wh.Code, o.ID)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return errs.E(op, errs.Internal, err)
	} else if n == 0 {
		return nil // reported before (by another update): nothing new
	}
	ev, err := FulfilmentUpdated.New(o.ID, tx.Now, FulfilmentUpdatedData{OrderID: o.ID, Stage: in.Type, Warehouse: wh.Code})
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	return outbox.Append(ctx, tx, &ev)
}

// warehouseShipTx makes the shipment a warehouse reports.
func (s *Service) warehouseShipTx(ctx context.Context, tx *sqldb.Tx, shipmentID string, in WarehouseUpdate) (Shipment, error) {
	const op = "logistics.WarehouseUpdate"
	if _, err := s.shippableOrderTx(ctx, tx, in.OrderID); err != nil {
		return Shipment{}, err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM logistics_shipments WHERE carrier = $1 AND tracking_number = $2`,
		in.Carrier, in.TrackingNumber).Scan(&n); err != nil {
		return Shipment{}, errs.E(op, errs.Internal, err)
	}
	if n > 0 {
		return Shipment{}, errs.E(op, errs.Conflict, CodeTrackingNumberTaken, "the carrier's tracking number belongs to another shipment")
	}
	req := ShipmentRequest{Carrier: in.Carrier}
	for _, l := range in.Lines {
		req.Lines = append(req.Lines, Line{SKU: l.SKU, Quantity: l.Quantity})
	}
	return s.CreateShipmentTx(ctx, tx, shipmentID, in.OrderID, req, carrier.Label{TrackingNumber: in.TrackingNumber})
}

// CodeTrackingNumberTaken is the 409 of a shipped update whose tracking
// number the carrier gave another shipment.
const CodeTrackingNumberTaken errs.Code = "tracking_number_taken"
