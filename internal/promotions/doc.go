// Package promotions is the promotions module: staff define promotions
// (automatic, or behind coupon codes) as versioned rules that the pricing
// engine (internal/pricing) applies, with limits — total uses, uses per
// customer, a budget of discount — that checkout redeems against.
//
// It owns promotions_promotions (the current version of each), the
// versions (promotions_versions, every change a new one: orders record the
// version they were priced with), the coupon codes (promotions_codes:
// upper case, unique over all promotions), the contended counter of each
// promotion (promotions_counters) and of each customer
// (promotions_customer_uses), and the redemptions (promotions_redemptions).
//
// # Use cases for the checkout
//
// The orders module's checkout unit calls, in its one transaction:
// ActiveTx for the promotions that may apply (automatic ones in their
// window and those of the entered codes, each with its remaining uses and
// budget for the customer), pricing.Quote, then RedeemTx with the quote's
// applied promotions. RedeemTx enforces the limits with conditional
// writes, so that no limit is ever exceeded under any concurrency; a limit
// hit is Conflict coupon_exhausted and the checkout fails whole. A
// promotion's counter is the hot row of a sale: the units of one
// group-commit transaction share it (read locked once, each unit deciding
// on its own in memory) and the transaction writes it with one
// conditional UPDATE of the net change (counter.go).
// ReleaseTx gives an order's redemptions back; the consumer
// promotions_orders calls it on order.cancelled and order.expired, keyed by
// the event's aggregate id (the order id, the orderRef of RedeemTx).
//
// # Routes (staff)
//
//	POST  /api/v1/admin/promotions                  promotions.write
//	GET   /api/v1/admin/promotions                  promotions.read
//	GET   /api/v1/admin/promotions/{id}             promotions.read
//	PATCH /api/v1/admin/promotions/{id}             promotions.write
//	POST  /api/v1/admin/promotions/{id}/deactivate  promotions.write
//
// Every change is audited (audit_log, target "promotion") and appends
// promotion.created or promotion.updated in its unit.
//
// # Personal data
//
// Redemptions name their customer: exported in the section "promotions";
// an erasure anonymises them (customer id ”) and deletes the customer's
// use counters.
package promotions
