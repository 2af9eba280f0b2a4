// Package payments is mercato's payments module (issue #17): a payment
// intent per order (amount, captured, refunded; status requires_action,
// authorized, captured, failed, partially_refunded, refunded), its
// attempts, captures and refunds, over Providers (package provider: the
// built-in sandbox, package sandboxpay, and Stripe, package stripepay; one
// conformance suite, package paytest, runs on every provider).
//
// It is the orders module's PaymentMethod, as an orders.PaymentPreparer:
// POST /api/v1/orders/{id}/pay calls PrepareCharge outside any transaction
// (web.Mutation.Prepare), which records the attempt — pending, under the
// provider idempotency key derived from the order and the caller's
// Idempotency-Key — in its own unit, then calls the provider; a capture
// then commits with order.paid in the unit of the pay request
// (payment.captured and order.paid in one outbox.Append; docs/writepath.md
// says why the attempt is written ahead, and what that costs). A retry
// with the same Idempotency-Key (after a lost answer, 503
// payment_outcome_unknown) sends the same provider key: the provider
// answers the first capture and never captures twice.
//
// 3-D Secure: the pay answer is 402 payment_requires_action naming the
// challenge's URL; POST /api/v1/orders/{id}/pay/confirm completes it (or
// the provider's webhook does).
//
// Webhooks (POST /api/v1/payments/webhooks/{provider}) are verified by the
// provider (signature within a tolerance window; bad: 400, nothing
// changes) and applied once through the idempotency store, keyed by the
// provider's event id.
//
// Refunds (POST /api/v1/admin/orders/{id}/refunds, permission
// payments.refund, audited) reserve their amount with a conditional UPDATE
// (refunded + amount <= captured), call the provider, and commit
// payment.refunded with orders.RefundedTx, which moves the order's
// payment_status (a full refund of a paid, unshipped order cancels it).
//
// Reconciliation (the payments.reconcile job) settles attempts left
// pending by a crash: the provider is asked what it did under the key; a
// capture of an order still pending_payment is recorded and the order
// marked paid, one of an order no longer payable is refunded. Orders
// marked paid with no capture are reported to the sync monitor
// (GET /api/v1/admin/sync/issues).
//
// Card entry is the provider's hosted page: mercato never receives a card
// number; a card-number-shaped token or refund reason is 422.
//
// Events: payment.captured, payment.failed, payment.refunded (aggregate:
// the intent). Privacy: the export holds the customer's payments; erasure
// removes the customer id and keeps the amounts.
package payments
