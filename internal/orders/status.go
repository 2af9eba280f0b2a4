package orders

import (
	"fmt"

	"mercato/internal/platform/errs"
)

// Status is an order's lifecycle state.
type Status string

// The order statuses (API.md).
const (
	StatusPendingPayment   Status = "pending_payment"
	StatusPaid             Status = "paid"
	StatusPartiallyShipped Status = "partially_shipped"
	StatusShipped          Status = "shipped"
	StatusDelivered        Status = "delivered"
	StatusCompleted        Status = "completed"
	StatusCancelled        Status = "cancelled"
	StatusExpired          Status = "expired"
	StatusReturnRequested  Status = "return_requested"
	StatusReturned         Status = "returned"
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{StatusPendingPayment, StatusPaid, StatusPartiallyShipped, StatusShipped,
	StatusDelivered, StatusCompleted, StatusCancelled, StatusExpired, StatusReturnRequested, StatusReturned}

// PaymentStatus is where an order's money stands.
type PaymentStatus string

// The payment statuses.
const (
	PaymentUnpaid            PaymentStatus = "unpaid"
	PaymentPaid              PaymentStatus = "paid"
	PaymentPartiallyRefunded PaymentStatus = "partially_refunded"
	PaymentRefunded          PaymentStatus = "refunded"
)

// FulfillmentStatus is where an order's goods stand.
type FulfillmentStatus string

// The fulfillment statuses.
const (
	FulfillmentUnfulfilled      FulfillmentStatus = "unfulfilled"
	FulfillmentPartiallyShipped FulfillmentStatus = "partially_shipped"
	FulfillmentShipped          FulfillmentStatus = "shipped"
	FulfillmentDelivered        FulfillmentStatus = "delivered"
	FulfillmentReturned         FulfillmentStatus = "returned"
)

// Action is something that moves an order from one status to another.
type Action string

// The actions. Pay, Cancel and Expire are served by this module's routes;
// the fulfilment and return actions by the use cases of fulfilment.go,
// which the logistics module calls in its units; the lifecycle is stated
// in one place, here.
const (
	ActionPay           Action = "pay"
	ActionCancel        Action = "cancel"
	ActionExpire        Action = "expire"
	ActionShipPart      Action = "ship_part"
	ActionShip          Action = "ship"
	ActionDeliver       Action = "deliver"
	ActionComplete      Action = "complete"
	ActionRequestReturn Action = "request_return"
	ActionReturn        Action = "return"
)

// Transition is one row of the lifecycle table: action moves an order in
// status From to To, setting the payment and fulfillment statuses when
// they are not empty.
type Transition struct {
	Action      Action
	From        Status
	To          Status
	Payment     PaymentStatus
	Fulfillment FulfillmentStatus
}

// Transitions is the order lifecycle: every allowed move, and only those.
// Anything not listed is 409 invalid_transition. Cancelling a paid order
// leaves payment_status paid: the order.cancelled event asks for the full
// refund, and the payments module records it.
var Transitions = []Transition{
	{ActionPay, StatusPendingPayment, StatusPaid, PaymentPaid, ""},
	{ActionCancel, StatusPendingPayment, StatusCancelled, "", ""},
	{ActionCancel, StatusPaid, StatusCancelled, "", ""},
	{ActionExpire, StatusPendingPayment, StatusExpired, "", ""},
	{ActionShipPart, StatusPaid, StatusPartiallyShipped, "", FulfillmentPartiallyShipped},
	{ActionShipPart, StatusPartiallyShipped, StatusPartiallyShipped, "", FulfillmentPartiallyShipped},
	{ActionShip, StatusPaid, StatusShipped, "", FulfillmentShipped},
	{ActionShip, StatusPartiallyShipped, StatusShipped, "", FulfillmentShipped},
	{ActionDeliver, StatusShipped, StatusDelivered, "", FulfillmentDelivered},
	{ActionComplete, StatusDelivered, StatusCompleted, "", ""},
	{ActionRequestReturn, StatusDelivered, StatusReturnRequested, "", ""},
	{ActionRequestReturn, StatusCompleted, StatusReturnRequested, "", ""},
	{ActionReturn, StatusReturnRequested, StatusReturned, "", FulfillmentReturned},
	{ActionRejectReturn, StatusReturnRequested, StatusDelivered, "", ""},
}

// Next returns the transition that action takes from status, or a Conflict
// error with code invalid_transition naming both.
func Next(from Status, action Action) (Transition, error) {
	for _, t := range Transitions {
		if t.From == from && t.Action == action {
			return t, nil
		}
	}
	return Transition{}, errs.E("orders.Next", errs.Conflict, errs.CodeInvalidTransition,
		fmt.Sprintf("an order that is %s cannot be %s", from, pastTense(action)))
}

// apply returns o moved by t (status, payment and fulfillment).
func (t Transition) apply(o Order) Order {
	o.Status = t.To
	if t.Payment != "" {
		o.PaymentStatus = t.Payment
	}
	if t.Fulfillment != "" {
		o.FulfillmentStatus = t.Fulfillment
	}
	return o
}

func pastTense(a Action) string {
	switch a {
	case ActionPay:
		return "paid"
	case ActionCancel:
		return "cancelled"
	case ActionExpire:
		return "expired"
	case ActionShipPart:
		return "partially shipped"
	case ActionShip:
		return "shipped"
	case ActionDeliver:
		return "delivered"
	case ActionComplete:
		return "completed"
	case ActionRequestReturn:
		return "returned by request"
	case ActionReturn:
		return "returned"
	case ActionRejectReturn:
		return "refused a return"
	}
	return string(a)
}
