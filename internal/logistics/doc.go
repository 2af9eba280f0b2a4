// Package logistics is the logistics module: the fulfilment of paid
// orders, their shipments with carrier tracking, and returns (RMA).
//
// It owns the logistics_* tables. The order's lifecycle stays the orders
// module's: logistics moves an order through the orders use cases
// (ShipTx, DeliverTx, CompleteTx, RequestReturnTx, RejectReturnTx,
// ReturnTx) inside its own units, so that the order's event
// (order.partially_shipped, order.shipped, order.delivered,
// order.completed, order.return_requested, order.return_declined,
// order.returned) commits with the logistics change that caused it.
//
// Fulfilment. The logistics_orders consumer opens a fulfilment on
// order.paid: the order's lines to ship and a pick list per location,
// read from inventory's allocation of the order's reservation
// (inventory.Service.Reservation; one pick list at default when there is
// none). The first shipment opens it too if it comes first.
//
// Shipments. POST /api/v1/admin/orders/{id}/shipments (shipments.write)
// asks the carrier for a label before its unit (Mutation.Prepare), then
// takes the units from what is left to ship by conditional writes
// (UPDATE … WHERE shipped + $1 <= quantity): of two shipments of the same
// last units one wins, the other is 409 already_shipped. Split shipments
// are allowed; the order goes partially_shipped until its last unit
// ships. Emits shipment.created.
//
// Tracking. Carriers sit behind carrier.Carrier, one conformance suite
// for all (package carriertest). The logistics.track job asks each
// carrier for news of the shipments not delivered (every TrackEvery) and
// carriers may push signed webhooks to POST
// /api/v1/logistics/webhooks/{carrier} (a bad signature is 400
// invalid_signature and changes nothing; a redelivery is answered by the
// idempotency primitive, keyed by the carrier's event id). Both land in
// one normalised timeline per shipment, each carrier event once; a status
// change emits shipment.updated, and the last delivery of a fully shipped
// order delivers it. The logistics.complete job completes orders
// delivered CompleteAfter ago (default: the return window). The built-in
// carrier is package sandboxcarrier, driven by the database clock.
//
// Warehouses. Staff with warehouses.manage register a warehouse (code,
// name, inventory location) and get its signing secret once; it is kept
// sealed (secret.Sealer under the server secret, bound to the code), and a
// rotation leaves the previous one valid for RotationWindow. The warehouse
// posts Standard Webhooks-signed updates to POST
// /api/v1/logistics/warehouses/{code}/updates: picked and packed stamp the
// order's fulfilment (fulfilment.updated), shipped makes a shipment with
// the carrier and tracking number it gives (CreateShipmentTx: the same
// conditional writes as staff's, so over-shipping is 409
// already_shipped), stock_received and stock_adjusted change stock at its
// location through inventory (ReceiveTx, SetStockTx). A signature that
// does not verify is 400 invalid_signature and changes nothing; an
// unknown order or a SKU not in it is 422. Each update applies once by its
// id (webhook-id): through the idempotency primitive, and for as long as
// the warehouse exists through logistics_warehouse_updates, which keeps
// the answer a redelivery gets.
//
// Returns. The order's customer asks (POST /api/v1/orders/{id}/returns)
// within ReturnWindow of delivery (default 14 days, else 422
// return_window_closed); staff with returns.manage approve, reject (the
// order is delivered again) or receive it: each line is restocked
// (inventory.Service.ReturnTx, where it was picked) or written off, and
// return.received carries the refund amount for the payments module.
// Events: return.requested, return.approved, return.rejected,
// return.received.
//
// Permissions: shipments.write (operator), returns.manage (operator,
// customer_service), warehouses.manage (operator). The tracking and
// return lists of an order are read by whoever may read the order
// (orders.Service.ReadableBy); anyone else gets 404.
package logistics
