package orders

import (
	"context"
	"net/http"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
)

// The fulfilment and return events of an order, emitted by the use cases
// below, which the logistics module calls inside its own units (shipments,
// carrier tracking, returns).
var (
	OrderPartiallyShipped = event.Define[ShippedData]("order.partially_shipped", 1, "Some of an order's lines got a shipment; others wait.")
	OrderShipped          = event.Define[ShippedData]("order.shipped", 1, "The last unshipped line of an order got its shipment.")
	OrderDelivered        = event.Define[FulfilledData]("order.delivered", 1, "Every shipment of a fully shipped order was delivered.")
	OrderCompleted        = event.Define[FulfilledData]("order.completed", 1, "A delivered order was completed (its completion period passed, or staff completed it).")
	OrderReturnRequested  = event.Define[ReturnData]("order.return_requested", 1, "The customer asked to return some of a delivered order's lines.")
	OrderReturnDeclined   = event.Define[ReturnData]("order.return_declined", 1, "Staff rejected the order's return request; the order is delivered again.")
	OrderReturned         = event.Define[ReturnData]("order.returned", 1, "The order's returned goods were received.")
)

// ShippedData is the payload of order.partially_shipped and order.shipped.
type ShippedData struct {
	OrderID    string `json:"order_id"`
	ShipmentID string `json:"shipment_id" doc:"The shipment that made the move."`
}

// FulfilledData is the payload of order.delivered and order.completed.
type FulfilledData struct {
	OrderID string `json:"order_id"`
}

// ReturnData is the payload of the order's return events.
type ReturnData struct {
	OrderID  string `json:"order_id"`
	ReturnID string `json:"return_id"`
}

// ActionRejectReturn moves an order whose return request staff rejected
// back to delivered.
const ActionRejectReturn Action = "reject_return"

// OrderTx reads order id with its lines in tx, for another module's use
// case (no ownership check); missing is 404.
func (s *Service) OrderTx(ctx context.Context, tx *sqldb.Tx, id string) (Order, error) {
	return readOrder(ctx, tx, id)
}

// ReadableBy returns order id when request r's caller may read it (its
// customer, its guest with the cart token, staff with orders.read): the
// rule of GET /api/v1/orders/{id}, for routes of other modules about an
// order. Anyone else gets 404.
func (s *Service) ReadableBy(r *http.Request, id string) (Order, error) {
	return s.Get(r.Context(), callerOf(r), id, s.staff(r, PermRead))
}

// OwnedBy reports whether r's caller is order o's customer or guest.
func (s *Service) OwnedBy(r *http.Request, o Order) bool { return o.ownedBy(callerOf(r)) }

// ShipTx records in tx that shipment shipmentID left for order id: all
// says whether no line is left unshipped after it. The order moves to
// shipped (order.shipped) or partially_shipped (order.partially_shipped);
// an order that is not paid or partially shipped is 409
// invalid_transition.
func (s *Service) ShipTx(ctx context.Context, tx *sqldb.Tx, id, shipmentID string, all bool) (Order, error) {
	action, kind := ActionShipPart, OrderPartiallyShipped
	if all {
		action, kind = ActionShip, OrderShipped
	}
	return transitionTx(ctx, tx, id, anyone, step{action: action, emit: func(o Order) (event.Envelope, error) {
		return kind.New(o.ID, tx.Now, ShippedData{OrderID: o.ID, ShipmentID: shipmentID})
	}})
}

// DeliverTx moves shipped order id to delivered in tx (order.delivered).
func (s *Service) DeliverTx(ctx context.Context, tx *sqldb.Tx, id string) (Order, error) {
	return transitionTx(ctx, tx, id, anyone, step{action: ActionDeliver, emit: func(o Order) (event.Envelope, error) {
		return OrderDelivered.New(o.ID, tx.Now, FulfilledData{OrderID: o.ID})
	}})
}

// CompleteTx moves delivered order id to completed in tx (order.completed).
func (s *Service) CompleteTx(ctx context.Context, tx *sqldb.Tx, id string) (Order, error) {
	return transitionTx(ctx, tx, id, anyone, step{action: ActionComplete, emit: func(o Order) (event.Envelope, error) {
		return OrderCompleted.New(o.ID, tx.Now, FulfilledData{OrderID: o.ID})
	}})
}

// RequestReturnTx moves delivered or completed order id to
// return_requested in tx for its return returnID (order.return_requested).
// The caller (logistics) has checked that the requester owns the order.
func (s *Service) RequestReturnTx(ctx context.Context, tx *sqldb.Tx, id, returnID string) (Order, error) {
	return s.returnStep(ctx, tx, id, ActionRequestReturn, OrderReturnRequested, returnID)
}

// RejectReturnTx moves return_requested order id back to delivered in tx
// (order.return_declined).
func (s *Service) RejectReturnTx(ctx context.Context, tx *sqldb.Tx, id, returnID string) (Order, error) {
	return s.returnStep(ctx, tx, id, ActionRejectReturn, OrderReturnDeclined, returnID)
}

// ReturnTx moves return_requested order id to returned in tx
// (order.returned); the refund is asked for by the return's own event.
func (s *Service) ReturnTx(ctx context.Context, tx *sqldb.Tx, id, returnID string) (Order, error) {
	return s.returnStep(ctx, tx, id, ActionReturn, OrderReturned, returnID)
}

func (s *Service) returnStep(ctx context.Context, tx *sqldb.Tx, id string, a Action, kind event.Kind[ReturnData], returnID string) (Order, error) {
	if returnID == "" {
		return Order{}, errs.E("orders.Return", errs.Internal, "no return id")
	}
	return transitionTx(ctx, tx, id, anyone, step{action: a, emit: func(o Order) (event.Envelope, error) {
		return kind.New(o.ID, tx.Now, ReturnData{OrderID: o.ID, ReturnID: returnID})
	}})
}

// anyone is the visibility of a transition another module's use case asks
// for: it has decided who may act.
func anyone(Order) bool { return true }

// fulfilmentEvents are the event kinds above, for Module.
func fulfilmentEvents() []event.TypeInfo {
	return []event.TypeInfo{OrderPartiallyShipped.Info(), OrderShipped.Info(), OrderDelivered.Info(), OrderCompleted.Info(),
		OrderReturnRequested.Info(), OrderReturnDeclined.Info(), OrderReturned.Info()}
}
