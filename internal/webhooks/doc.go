// Package webhooks is the outbound webhooks module (issue #18): staff
// register HTTPS (or, with AllowPrivate, any HTTP) endpoints with event
// filters ("order.*", "*", "order.paid"), and every event the shop emits is
// delivered to the endpoints whose filters select it, signed by the
// Standard Webhooks specification.
//
// It owns webhooks_endpoints, webhooks_events, webhooks_deliveries and
// webhooks_attempts. It consumes every event (the inbox consumer "webhooks"
// on "*"): in the consumer's batch transaction it records the event's
// envelope once (webhooks_events, whatever the number of endpoints) and one
// delivery row per selecting endpoint, and nothing else — no network inside
// a transaction; the rows of the whole batch are written before its commit
// with one statement per up to 512 deliveries (two on SQLite). While the
// Dispatcher runs in the process, the INSERT itself claims a new delivery to
// a non-fifo endpoint with room (status delivering under a lease) and the
// dispatcher takes it at the commit; otherwise (Config.PollOnly, retries,
// fifo endpoints, expired leases) the dispatcher claims due rows with a
// conditional UPDATE (so replicas never deliver one row twice at once).
// It delivers outside transactions: POSTs the event envelope, frees the
// endpoint's slot, and settles outcomes in batches (one UPDATE a batch; a
// failed try also gets an attempt row, a successful one stays in the
// delivery row):
// delivered; retried on the schedule (about 5s, 5m, 30m, 2h, 5h, 10h, 10h,
// with jitter, on the injected clock); dead after the last try (replayable
// by staff). 410 Gone disables the endpoint; 429 with Retry-After delays the
// next try at least as long as the receiver asked. Delivered rows and their
// attempts are pruned after Config.Retention, then the envelopes no
// delivery needs any more. A customer's erasure (the module's Privacy part)
// anonymises the kept envelopes whose data names them (customer_id "").
//
// Each endpoint has a concurrency limit and a circuit breaker, so that a
// slow or dead receiver costs the others nothing; an endpoint with fifo set
// gets one event per aggregate in flight, in sequence order.
//
// URLs resolving to loopback, private, link-local or otherwise non-public
// addresses are refused at registration (422) and again at dial time (the
// dialer resolves, checks every address, and dials the checked address
// only; redirects are not followed) unless Config.AllowPrivate is set
// (`serve --webhook-allow-private`).
//
// Routes (permission webhooks.manage, held by operators; every change is
// audited): POST/GET /api/v1/admin/webhooks, GET/PATCH/DELETE
// /api/v1/admin/webhooks/{id}, POST …/{id}/rotate-secret, POST …/{id}/test,
// GET …/{id}/deliveries, POST …/{id}/deliveries/{delivery_id}/replay,
// POST …/{id}/replay, and GET /api/v1/admin/sync/webhooks (per-endpoint
// pending, failed and dead counts). It emits no events.
package webhooks
