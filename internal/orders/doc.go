// Package orders is mercato's orders module: carts (a signed-in customer's
// or a guest's), the quote, checkout, the order lifecycle, paying and
// expiry (issue #15).
//
// Carts hold SKUs and quantities only; every answer prices them from the
// Catalog (prices never come from a client). A guest cart is guarded by a
// token given once in the 201 that created it, sent back as X-Cart-Token
// and stored hashed; POST /api/v1/carts/{id}/claim makes it the signed-in
// caller's. Anyone else is answered 404.
//
// The quote is a Pipeline of Stages: subtotal, then the pricing engine's
// Discounts → Shipping → Tax → Totals (internal/pricing) over the cart's
// lines, the customer, the channel, the address, the method, the coupon
// codes, the promotions (Promotions.ActiveTx) and the rate tables (Rates);
// without a shipping table the one flat "standard" method (free over a
// threshold), without a tax table no tax. The coupon codes are those
// entered on the cart (POST/DELETE …/coupons: a code is stored only when it
// applies) and, at checkout and its quote, those of the body's coupon_codes
// (typed at checkout: trimmed and upper-cased as the cart's, 1 to
// MaxCouponLen each, each applied once with the cart's, at most MaxCoupons
// in all, else 422 limit_exceeded; one that cannot apply is the cart
// endpoint's 422 code naming it, and nothing is written). Each line's
// breakdown (discounts per promotion and version, tax) is kept with the
// order, and the order records what it was priced and checked with
// (priced_with: promotions, coupon codes, table and region-rule versions).
// Region rules (Compliance) are checked at POST …/quote and inside the
// checkout unit, which also redeems the promotions applied
// (Promotions.RedeemTx: a limit hit fails the checkout whole). A region may
// require an identity, stored masked with a keyed hash; orders.retention
// anonymises closed orders' addresses and identities after
// Config.RetainFor.
//
// Checkout is one unit of the write path: validate, quote (with the cart's
// and the body's coupon codes), count the region rules, redeem the
// promotions, Stock.ReserveTx every line (all or nothing), mark the cart
// checked out (a conditional UPDATE: one order per cart), write the order,
// its lines and the order.placed event (outbox and the order's own
// timeline). It is idempotent through web.Idempotency (the body, codes and
// all, is part of the key's fingerprint).
//
// The lifecycle is the Transitions table (status.go). Every transition is
// a conditional write on the order's version (UPDATE … WHERE id AND
// version), re-read and decided again when it lost, so that of racing
// transitions (pay against the orders.expire job) exactly one wins, and
// each appends its event: order.paid, order.cancelled, order.expired. The
// inventory module commits or releases the reservation on those events;
// orders never calls it for that.
//
// Paying goes through a PaymentMethod (the Sandbox: tok_success,
// tok_decline). A declined payment changes nothing: the order stays
// pending_payment, and only the idempotency record keeps the 402 (a retry
// with the same key replays it; a new key tries again).
//
// It consumes Catalog and Stock (interfaces here, implemented by the
// catalog and inventory modules through adapters in cmd/mercato) and
// Permissions (accounts) to let staff read orders on the customers' routes.
//
// Privacy: the export holds the customer's orders; erasure anonymises their
// shipping addresses (country and region stay with the amounts).
package orders
