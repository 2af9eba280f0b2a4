// Package channels is the sales-channel module (issue #18): the registry
// of channels an order can come from (web, app, pos, marketplace; "web"
// always exists), their API tokens, the import of orders a channel took
// and charged, and optional per-channel stock quotas.
//
// # Import
//
// POST /api/v1/channels/{code}/orders, with a token of the channel role
// bound to code (another channel's token is 403), writes one order at the
// channel's own prices through orders.ImportTx (stock reserved from the
// shared pool, order.placed with the channel, then order.paid since the
// channel charged the buyer). An order is imported once per (channel,
// external_id): the idempotency store is keyed by it (a repeat replays
// the first answer as 200) and channels_imports' primary key settles what
// the store does not see (another replica on SQLite, an expired record):
// the unit that finds the key taken answers 200 with the first order.
//
// # Quotas
//
// A channel may have a cap per SKU (PUT …/quotas/{sku}): the units
// reserved through the channel count up with a conditional UPDATE (reserved
// + n <= units) in the import's unit, so racing imports never exceed it; an
// import beyond it is 409 quota_exceeded and reserves nothing. A cancelled
// imported order gives its units back (the channels_quotas consumer of
// order.cancelled).
//
// # Events
//
// Emits channel.created and channel.quota_set. Consumes order.cancelled
// (QuotaConsumer).
//
// # Routes
//
//	POST /api/v1/admin/channels                    channels.manage
//	GET  /api/v1/admin/channels                    channels.manage
//	POST /api/v1/admin/channels/{code}/tokens      channels.manage
//	PUT  /api/v1/admin/channels/{code}/quotas/{sku} channels.manage
//	POST /api/v1/admin/channels/{code}/orders/import channels.manage (text/csv)
//	POST /api/v1/channels/{code}/orders            the channel's token
package channels
