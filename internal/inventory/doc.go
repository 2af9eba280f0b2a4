// Package inventory is the inventory module: stock per SKU per location
// (on_hand and reserved; available = on_hand - reserved), the ledger of
// every change with its reason and reference, stock locations, reservations
// of units for order references, flash-sale guards and low-stock alerts.
//
// # Invariants
//
// Always, on both engines (CHECK constraints and conditional writes):
// reserved >= 0, on_hand >= 0, on_hand - reserved >= 0; a reservation is
// all its lines or none, and the units of live reservations never exceed
// the stock that was put in.
//
// # Use cases for other modules
//
// The orders module composes these into its own units: ReserveTx (at
// checkout: all lines or none, refused with out_of_stock naming the short
// SKUs, sale_not_started / sale_ended, limit_exceeded), CommitTx (paid:
// the units leave on_hand and reserved), ReleaseTx (cancelled, expired),
// ExpiredTx (the refs its expiry job expires). CommitTx and ReleaseTx are
// idempotent; of the two racing for one reservation exactly one wins.
// Precheck refuses SKUs known to be sold out without a transaction;
// Reservation reads one; ReturnTx puts returned units back on hand;
// ReceiveTx adds received units at a location (the logistics module's
// warehouse receipts), a change that merges with racing reservations.
//
// # Hot SKUs
//
// Every stock change goes through the transaction's view of the SKU
// (state): the first unit of a transaction to touch a SKU reads its rows
// without a lock, each unit decides on its own from memory, and one
// BeforeCommit hook per transaction locks the touched SKUs' rows in
// (sku, location) order and writes each changed row once, conditionally —
// so concurrent batches never deadlock over stock (docs/writepath.md,
// "Lock order"). A flash sale of one SKU at one location thus costs
// one UPDATE per group-commit batch. Once a commit leaves a SKU with
// nothing available it is refused at the door (an in-memory sold-out set)
// until a commit leaves units available again (a receipt, a release).
//
// # Events
//
// Emits inventory.reserved, inventory.committed and inventory.released
// (aggregate id: the order reference, so one order's stock events are
// ordered) and inventory.low_stock (aggregate id: the SKU) when available
// units fall below the SKU's threshold, once per crossing. Consumes
// order.paid (commit), order.cancelled and order.expired (release), reading
// only their aggregate id, the order id, which is the reservation's
// reference.
//
// # Routes
//
// GET/PUT /api/v1/admin/inventory/{sku}, GET …/{sku}/ledger, GET/PUT
// …/{sku}/guard, GET/POST /api/v1/admin/inventory/locations; permissions
// inventory.read and inventory.write (role operator).
//
// # Errors
//
// Stable codes beside validation_failed (422, naming each field): 409
// out_of_stock (the message and ShortSKUs name every short SKU),
// sale_not_started (the message names the opening time, RFC 3339) and
// sale_ended, below_reserved (a PUT of on_hand under the units reserved
// at that location), reservation_exists (a ref reserved before),
// location_exists, invalid_transition (commit of a released reservation
// or release of a committed one); 422 limit_exceeded (a customer over a
// SKU's per-customer limit); 404 not_found (a SKU without stock, an
// unknown reservation).
//
// # Tables
//
// inventory_locations (code; "default" made by the migration),
// inventory_stock (sku, location: on_hand, reserved), inventory_ledger
// (one row per change of a row: reason, reference, deltas),
// inventory_reservations (ref: customer, status, expires_at) and
// inventory_reservation_lines (ref, sku, location: quantity, whether it
// counts against a limit), inventory_guards (sku: per-customer limit,
// sale window, low-stock threshold), inventory_customer_units (customer,
// sku: units held against the limit).
//
// # Privacy
//
// The per-customer purchase counters of the guards and the customer id of
// reservations are personal data: exported in the "inventory" section,
// erased (counters deleted, reservations anonymised) with the customer.
package inventory
