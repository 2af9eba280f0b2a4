package logistics

import "mercato/internal/platform/event"

// The logistics events. A shipment's are about the shipment, a return's
// about the return; the order's own moves (order.shipped, order.delivered,
// …) are the orders module's events, appended in the same unit.
var (
	ShipmentCreated = event.Define[ShipmentData]("shipment.created", 1, "A shipment of some of an order's lines was handed to a carrier.")
	ShipmentUpdated = event.Define[ShipmentUpdatedData]("shipment.updated", 1, "A shipment's tracking status changed.")
	ReturnRequested = event.Define[ReturnData]("return.requested", 1, "A customer asked to return delivered lines of an order.")
	ReturnApproved  = event.Define[ReturnData]("return.approved", 1, "Staff approved a return: the goods may be sent back.")
	ReturnRejected  = event.Define[ReturnData]("return.rejected", 1, "Staff rejected a return request.")
	ReturnReceived  = event.Define[ReturnReceivedData]("return.received", 1, "A return's goods arrived: each line restocked or written off; asks for the refund of amount.")
	// FulfilmentUpdated is about the fulfilment, whose id is its order's.
	FulfilmentUpdated = event.Define[FulfilmentUpdatedData]("fulfilment.updated", 1, "A warehouse reported an order picked or packed.")
)

// FulfilmentUpdatedData is fulfilment.updated's payload.
type FulfilmentUpdatedData struct {
	OrderID   string `json:"order_id"`
	Stage     string `json:"stage" doc:"picked or packed."`
	Warehouse string `json:"warehouse" doc:"The code of the warehouse that reported it."`
}

// EventLine is a SKU and quantity as events carry them.
type EventLine struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// ShipmentData is shipment.created's payload.
type ShipmentData struct {
	ShipmentID     string      `json:"shipment_id"`
	OrderID        string      `json:"order_id"`
	Carrier        string      `json:"carrier"`
	TrackingNumber string      `json:"tracking_number"`
	Lines          []EventLine `json:"lines"`
}

// ShipmentUpdatedData is shipment.updated's payload.
type ShipmentUpdatedData struct {
	ShipmentID string `json:"shipment_id"`
	OrderID    string `json:"order_id"`
	Status     string `json:"status" doc:"The normalised tracking status: label_created, picked_up, in_transit, out_for_delivery, delivery_attempted, delayed or delivered."`
	OccurredAt string `json:"occurred_at" doc:"RFC 3339: when the carrier saw it."`
}

// ReturnData is the payload of return.requested, return.approved and
// return.rejected.
type ReturnData struct {
	ReturnID string      `json:"return_id"`
	OrderID  string      `json:"order_id"`
	Reason   string      `json:"reason,omitempty" doc:"The customer's reason (requested) or staff's note (rejected)."`
	Lines    []EventLine `json:"lines"`
}

// ReturnReceivedLine is a received line and what became of it.
type ReturnReceivedLine struct {
	SKU         string `json:"sku"`
	Quantity    int64  `json:"quantity"`
	Disposition string `json:"disposition" doc:"restock or write_off."`
	Location    string `json:"location,omitempty" doc:"Where it was restocked."`
}

// ReturnReceivedData is return.received's payload: the payments module
// refunds Amount.
type ReturnReceivedData struct {
	ReturnID string               `json:"return_id"`
	OrderID  string               `json:"order_id"`
	Amount   int64                `json:"amount" doc:"Minor units to refund: the received lines at the prices paid."`
	Currency string               `json:"currency"`
	Lines    []ReturnReceivedLine `json:"lines"`
}
