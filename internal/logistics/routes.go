package logistics

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"slices"
	"time"

	"mercato/internal/logistics/carrier"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// CodeInvalidSignature is the 400 of a carrier webhook whose signature
// does not verify.
const CodeInvalidSignature errs.Code = "invalid_signature"

// WebhookResult is a carrier webhook's answer.
type WebhookResult struct {
	Applied int `json:"applied" doc:"How many events were new to the timelines."`
}

// Fulfilment is an order's fulfilment: what to pick where, and its
// shipments.
type Fulfilment struct {
	OrderID   string     `json:"order_id"`
	Status    string     `json:"status" doc:"open, shipped, delivered or completed."`
	Warehouse string     `json:"warehouse,omitempty" doc:"The warehouse that reported progress, if one did."`
	PickedAt  *time.Time `json:"picked_at,omitempty" doc:"When a warehouse reported the order picked."`
	PackedAt  *time.Time `json:"packed_at,omitempty" doc:"When a warehouse reported the order packed."`
	PickLists []PickList `json:"pick_lists"`
}

// PickList is what to pick at one location.
type PickList struct {
	Location string `json:"location"`
	Lines    []Line `json:"lines"`
}

// ReturnList is an order's returns.
type ReturnList struct {
	Items []Return `json:"items"`
}

func (s *Service) routes() []web.Route {
	const tag = "logistics"
	ship, manage := web.Permission(PermShipmentsWrite), web.Permission(PermReturnsManage)
	return append(slices.Concat(s.noteRoutes(), s.warehouseRoutes()), []web.Route{
		{Method: "POST", Path: "/api/v1/admin/orders/{id}/shipments", Summary: "Ship some or all of a paid order", Tag: tag, Access: ship,
			Description: "Without `lines`, every unshipped unit. 409 `invalid_transition` for an order that is not paid or partially shipped " +
				"(unpaid, cancelled, shipped in full); 409 `already_shipped` for more units than are left to ship; 422 for an unknown carrier or a SKU not in the order.",
			Request: ShipmentRequest{}, Response: Shipment{}, Status: http.StatusCreated, Handler: s.handleShip},
		{Method: "POST", Path: "/api/v1/admin/orders/{id}/complete", Summary: "Complete a delivered order now", Tag: tag, Access: ship,
			Description: "What the logistics.complete job does after the completion period (order.completed). Not delivered: 409 `invalid_transition`.",
			Response:    Fulfilment{}, Handler: s.handleComplete},
		{Method: "GET", Path: "/api/v1/admin/orders/{id}/fulfilment", Summary: "An order's fulfilment and pick lists", Tag: tag, Access: ship,
			Response: Fulfilment{}, Handler: s.handleFulfilment},
		{Method: "GET", Path: "/api/v1/orders/{id}/tracking", Summary: "An order's shipments and their tracking timelines", Tag: tag, Access: web.Public,
			Description: "Who may read the order may read its tracking (its customer, its guest, staff with orders.read); anyone else 404.",
			Response:    Tracking{}, Handler: s.handleTracking},
		{Method: "POST", Path: "/api/v1/logistics/webhooks/{carrier}", Summary: "A carrier's tracking webhook", Tag: tag, Access: web.Public,
			Description: "Signed by the carrier (sandbox: `X-Carrier-Signature: sha256=<hex HMAC-SHA256 of the body>` with its secret); a signature that " +
				"does not verify is 400 `invalid_signature` and changes nothing. A redelivery (the same event id) is answered as the first time.",
			Response: WebhookResult{}, Handler: s.handleWebhook},
		{Method: "POST", Path: "/api/v1/orders/{id}/returns", Summary: "Ask to return delivered units", Tag: tag, Access: web.Authenticated,
			Description: "The order's customer, within the return window after delivery (else 422 `return_window_closed`); 409 `invalid_transition` " +
				"for an order that is not delivered or completed, or has a return under way.",
			Request: ReturnRequest{}, Response: Return{}, Status: http.StatusCreated, Handler: s.handleRequestReturn},
		{Method: "GET", Path: "/api/v1/orders/{id}/returns", Summary: "An order's returns", Tag: tag, Access: web.Public,
			Description: "As the order.", Response: ReturnList{}, Handler: s.handleOrderReturns},
		{Method: "GET", Path: "/api/v1/admin/returns", Summary: "Returns, newest first", Tag: tag, Access: manage,
			Query: []string{"status", "limit", "cursor"}, Response: web.Page[Return]{}, Handler: s.handleReturns},
		{Method: "GET", Path: "/api/v1/admin/returns/{id}", Summary: "A return", Tag: tag, Access: manage,
			Response: Return{}, Handler: s.handleReturn},
		{Method: "POST", Path: "/api/v1/admin/returns/{id}/approve", Summary: "Approve a requested return", Tag: tag, Access: manage,
			Description: "409 `invalid_transition` unless requested.", Response: Return{}, Handler: s.handleApprove},
		{Method: "POST", Path: "/api/v1/admin/returns/{id}/reject", Summary: "Reject a requested return", Tag: tag, Access: manage,
			Description: "The order is delivered again. 409 `invalid_transition` unless requested.",
			Request:     RejectRequest{}, Response: Return{}, Handler: s.handleReject},
		{Method: "POST", Path: "/api/v1/admin/returns/{id}/receive", Summary: "Receive an approved return's goods", Tag: tag, Access: manage,
			Description: "Each line restocked (where it was picked, unless named) or written off; the order is returned; `return.received` asks " +
				"for the refund. 409 `invalid_transition` unless approved.",
			Request: ReceiveRequest{}, Response: Return{}, Handler: s.handleReceive},
	}...)
}

func staffID(r *http.Request) string {
	p, _ := web.PrincipalFrom(r.Context())
	return p.UserID
}

// commit answers r through the idempotent write path with status.
func (s *Service) commit(w http.ResponseWriter, r *http.Request, status int, prepare func(ctx context.Context) error, fn func(ctx context.Context, tx *sqldb.Tx) (any, error)) {
	s.idem.Run(w, r, s.write, web.Mutation{Prepare: prepare, Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		v, err := fn(ctx, tx)
		return status, v, err
	}})
}

func (s *Service) handleShip(w http.ResponseWriter, r *http.Request) {
	var in ShipmentRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	id, shipmentID := r.PathValue("id"), newID()
	var label carrier.Label
	s.commit(w, r, http.StatusCreated, func(ctx context.Context) (err error) {
		label, err = s.prepareShipment(ctx, shipmentID, id, in)
		return err
	}, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return s.CreateShipmentTx(ctx, tx, shipmentID, id, in, label)
	})
}

func (s *Service) handleComplete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.commit(w, r, http.StatusOK, nil, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		if err := s.CompleteTx(ctx, tx, id); err != nil {
			return nil, err
		}
		return Fulfilment{OrderID: id, Status: "completed", PickLists: []PickList{}}, nil
	})
}

func (s *Service) handleFulfilment(w http.ResponseWriter, r *http.Request) {
	f, err := s.Fulfilment(r.Context(), r.PathValue("id"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, f)
}

func (s *Service) handleTracking(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.orders.ReadableBy(r, id); err != nil {
		web.Error(w, r, err)
		return
	}
	t, err := s.TrackingOf(r.Context(), id)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, t)
}

// handleWebhook verifies the delivery before anything runs, then applies
// it through the idempotency primitive keyed by the carrier's event id.
func (s *Service) handleWebhook(w http.ResponseWriter, r *http.Request) {
	const op = "logistics.Webhook"
	name := r.PathValue("carrier")
	c, ok := s.carriers[name]
	if !ok {
		web.Error(w, r, errs.E(op, errs.NotFound, "no such carrier"))
		return
	}
	body, err := web.Body(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	eventID, ups, err := c.ParseWebhook(r.Header, body)
	if errors.Is(err, carrier.ErrSignature) {
		web.Error(w, r, errs.E(op, errs.Malformed, CodeInvalidSignature, "the webhook's signature does not verify"))
		return
	}
	if err != nil {
		web.Error(w, r, errs.E(op, errs.Malformed, "the webhook could not be read", err))
		return
	}
	r.Header.Set(web.HeaderIdempotencyKey, cut("carrier-event:"+eventID, web.MaxIdempotencyKey))
	s.idem.Run(w, r, s.write, web.Mutation{Scope: "carrier:" + name, Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		res := WebhookResult{}
		for _, u := range ups {
			var id string
			err := tx.QueryRowContext(ctx, `SELECT id FROM logistics_shipments WHERE carrier = $1 AND tracking_number = $2`, name, u.TrackingNumber).Scan(&id)
			if isNoRows(err) {
				return 0, nil, errs.E(op, errs.NotFound, "no shipment has this tracking number")
			}
			if err != nil {
				return 0, nil, errs.E(op, errs.Internal, err)
			}
			n, err := s.ApplyTx(ctx, tx, id, []carrier.Event{u.Event})
			if err != nil {
				return 0, nil, err
			}
			res.Applied += n
		}
		return http.StatusOK, res, nil
	}})
}

func (s *Service) handleRequestReturn(w http.ResponseWriter, r *http.Request) {
	var in ReturnRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	id := r.PathValue("id")
	o, err := s.orders.ReadableBy(r, id)
	if err == nil && !s.orders.OwnedBy(r, o) {
		err = errs.E("logistics.RequestReturn", errs.NotFound, "no such order") // staff read it, but only its customer returns it
	}
	if err != nil {
		web.Error(w, r, err)
		return
	}
	returnID, customer := newID(), staffID(r)
	s.commit(w, r, http.StatusCreated, nil, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return s.RequestReturnTx(ctx, tx, returnID, id, customer, in)
	})
}

func (s *Service) handleOrderReturns(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.orders.ReadableBy(r, id); err != nil {
		web.Error(w, r, err)
		return
	}
	rs, err := s.ReturnsOf(r.Context(), id)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, ReturnList{Items: rs})
}

var returnStatuses = []string{"", ReturnStatusRequested, ReturnStatusApproved, ReturnStatusRejected, ReturnStatusReceived}

func (s *Service) handleReturns(w http.ResponseWriter, r *http.Request) {
	p, err := web.PageParams(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	st := r.URL.Query().Get("status")
	if !slices.Contains(returnStatuses, st) {
		web.Error(w, r, errs.E("logistics.Returns", errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "status", Message: "must be requested, approved, rejected or received"}}))
		return
	}
	page, err := s.Returns(r.Context(), st, p)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, page)
}

func (s *Service) handleReturn(w http.ResponseWriter, r *http.Request) {
	ret, err := getReturn(r.Context(), s.db.Reader(), r.PathValue("id"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, ret)
}

func (s *Service) handleApprove(w http.ResponseWriter, r *http.Request) {
	id, by := r.PathValue("id"), staffID(r)
	s.commit(w, r, http.StatusOK, nil, func(ctx context.Context, tx *sqldb.Tx) (any, error) { return s.ApproveReturnTx(ctx, tx, id, by) })
}

func (s *Service) handleReject(w http.ResponseWriter, r *http.Request) {
	var in RejectRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	id, by := r.PathValue("id"), staffID(r)
	s.commit(w, r, http.StatusOK, nil, func(ctx context.Context, tx *sqldb.Tx) (any, error) { return s.RejectReturnTx(ctx, tx, id, by, in) })
}

func (s *Service) handleReceive(w http.ResponseWriter, r *http.Request) {
	var in ReceiveRequest
	if r.ContentLength != 0 {
		if err := web.Decode(r, &in); err != nil {
			web.Error(w, r, err)
			return
		}
	}
	id, by := r.PathValue("id"), staffID(r)
	s.commit(w, r, http.StatusOK, nil, func(ctx context.Context, tx *sqldb.Tx) (any, error) { return s.ReceiveReturnTx(ctx, tx, id, by, in) })
}

// Fulfilment returns order id's fulfilment with its pick lists; 404 before
// the order is paid.
func (s *Service) Fulfilment(ctx context.Context, id string) (Fulfilment, error) {
	const op = "logistics.Fulfilment"
	f := Fulfilment{OrderID: id, PickLists: []PickList{}}
	var picked, packed sql.NullInt64
	err := s.db.Reader().QueryRowContext(ctx, `SELECT status, warehouse, picked_at, packed_at FROM logistics_fulfilments WHERE order_id = $1`,
		id).Scan(&f.Status, &f.Warehouse, &picked, &packed)
	f.PickedAt, f.PackedAt = microsPtr(picked), microsPtr(packed)
	if isNoRows(err) {
		return Fulfilment{}, errs.E(op, errs.NotFound, "no fulfilment for this order (is it paid?)")
	}
	if err != nil {
		return Fulfilment{}, errs.E(op, errs.Internal, err)
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT location, sku, quantity FROM logistics_pick_lines WHERE order_id = $1 ORDER BY location, sku`, id)
	if err != nil {
		return Fulfilment{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	for rows.Next() {
		var loc string
		var l Line
		if err := rows.Scan(&loc, &l.SKU, &l.Quantity); err != nil {
			return Fulfilment{}, errs.E(op, errs.Internal, err)
		}
		if n := len(f.PickLists); n == 0 || f.PickLists[n-1].Location != loc {
			f.PickLists = append(f.PickLists, PickList{Location: loc, Lines: []Line{}})
		}
		f.PickLists[len(f.PickLists)-1].Lines = append(f.PickLists[len(f.PickLists)-1].Lines, l)
	}
	return f, rows.Err()
}

// microsPtr is a nullable microseconds column as an optional time.
func microsPtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := sqldb.FromMicros(v.Int64)
	return &t
}
