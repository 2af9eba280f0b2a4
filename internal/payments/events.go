package payments

import "mercato/internal/platform/event"

// The payment events; the aggregate is the payment intent (its id).
var (
	PaymentCaptured = event.Define[CapturedData]("payment.captured", 1, "A provider captured an order's payment.")
	PaymentFailed   = event.Define[FailedData]("payment.failed", 1, "A payment attempt was declined or failed.")
	PaymentRefunded = event.Define[RefundedData]("payment.refunded", 1, "Part or all of a captured payment was refunded.")
)

// CapturedData is payment.captured's payload.
type CapturedData struct {
	PaymentID   string `json:"payment_id"`
	OrderID     string `json:"order_id"`
	Provider    string `json:"provider"`
	ProviderRef string `json:"provider_ref"`
	Amount      int64  `json:"amount" doc:"Minor units."`
	Currency    string `json:"currency"`
}

// FailedData is payment.failed's payload.
type FailedData struct {
	PaymentID string `json:"payment_id"`
	OrderID   string `json:"order_id"`
	Provider  string `json:"provider"`
	Reason    string `json:"reason" doc:"The provider's decline reason."`
}

// RefundedData is payment.refunded's payload.
type RefundedData struct {
	PaymentID     string `json:"payment_id"`
	OrderID       string `json:"order_id"`
	RefundID      string `json:"refund_id"`
	Amount        int64  `json:"amount" doc:"Minor units refunded now."`
	TotalRefunded int64  `json:"total_refunded" doc:"Minor units refunded so far."`
	Currency      string `json:"currency"`
	Reason        string `json:"reason"`
}
