package accounts

import "mercato/internal/platform/event"

// The events accounts emits. Each carries only the customer's id: contact
// data stays in this module, so that erasure can remove it (consumers ask
// Service.User for what they need while the account exists).
var (
	// CustomerRegistered is emitted in the transaction that creates a
	// customer account (not a staff account).
	CustomerRegistered = event.Define[CustomerRef]("customer.registered", 1,
		"A customer account was created (by sign-up or by staff). Staff accounts emit nothing.")
	// CustomerErased is emitted in the transaction that erases a customer's
	// personal data; consumers holding copies of it must drop them.
	CustomerErased = event.Define[CustomerRef]("customer.erased", 1,
		"A customer's personal data was erased (by the customer or by staff). Consumers that copied "+
			"any of it must delete their copies.")
)

// CustomerRef is the payload of the customer events.
type CustomerRef struct {
	CustomerID string `json:"customer_id" doc:"The customer's id (also the aggregate id)."`
}

// Events describes the event types accounts emits, for the events catalogue.
func Events() []event.TypeInfo {
	return []event.TypeInfo{CustomerRegistered.Info(), CustomerErased.Info()}
}
