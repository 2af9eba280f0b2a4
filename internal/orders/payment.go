package orders

import (
	"context"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
)

// PaymentMethod charges an order's total. The payments issue replaces the
// Sandbox with real providers behind this interface.
type PaymentMethod interface {
	// Charge takes amount for orderID with the client's token and returns
	// the provider's reference, or a PaymentDeclined error (402
	// payment_declined), or an Invalid one for a token it does not know.
	Charge(ctx context.Context, method, token, orderID string, amount money.Money) (ref string, err error)
}

// The sandbox's tokens.
const (
	TokenSuccess = "tok_success"
	TokenDecline = "tok_decline"
)

// Sandbox is the test PaymentMethod "sandbox": tok_success succeeds,
// tok_decline is declined, any other token is 422.
type Sandbox struct{}

// Charge implements PaymentMethod.
func (Sandbox) Charge(_ context.Context, method, token, orderID string, _ money.Money) (string, error) {
	const op = "orders.Sandbox"
	if method != "sandbox" {
		return "", errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "method", Message: "must be sandbox"}})
	}
	switch token {
	case TokenSuccess:
		return "sandbox_" + orderID, nil
	case TokenDecline:
		return "", errs.E(op, errs.PaymentDeclined, errs.CodePaymentDeclined, "the payment was declined")
	}
	return "", errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
		[]errs.FieldError{{Field: "token", Message: "must be tok_success or tok_decline"}})
}
