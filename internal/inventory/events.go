package inventory

import (
	"time"

	"mercato/internal/platform/event"
)

// The events inventory emits. The aggregate of reserved, committed and
// released is the reservation, whose id is the order reference: a consumer
// sees one order's reservation, commit or release in that order. The
// aggregate of low_stock is the SKU.
var (
	Reserved = event.Define[ReservedData]("inventory.reserved", 1,
		"Units were reserved for an unpaid order (aggregate id: the order reference). Emitted with the reservation, all lines or none.")
	Committed = event.Define[SettledData]("inventory.committed", 1,
		"An order's reserved units were committed (it was paid): they left on_hand and reserved (aggregate id: the order reference).")
	Released = event.Define[SettledData]("inventory.released", 1,
		"An order's reserved units were released (cancelled or expired): they are available again (aggregate id: the order reference).")
	LowStock = event.Define[LowStockData]("inventory.low_stock", 1,
		"A SKU's available units fell below its low-stock threshold (aggregate id: the SKU). Emitted once per crossing: "+
			"again only after the stock rose to the threshold or above.")
)

// ReservedData is the payload of inventory.reserved.
type ReservedData struct {
	Ref       string         `json:"ref" doc:"The order reference (also the aggregate id)."`
	Lines     []ReservedLine `json:"lines" doc:"What was reserved where: {sku, location, quantity}; a request line may be split over locations."`
	ExpiresAt time.Time      `json:"expires_at" doc:"When the reservation expires unless committed."`
}

// SettledData is the payload of inventory.committed and inventory.released.
type SettledData struct {
	Ref   string         `json:"ref" doc:"The order reference (also the aggregate id)."`
	Lines []ReservedLine `json:"lines" doc:"The reservation's lines: {sku, location, quantity}."`
}

// LowStockData is the payload of inventory.low_stock.
type LowStockData struct {
	SKU       string `json:"sku" doc:"The SKU (also the aggregate id)."`
	Available int64  `json:"available" doc:"Its available units after the change."`
	Threshold int64  `json:"threshold" doc:"Its low-stock threshold."`
}

// Events describes the event types inventory emits.
func Events() []event.TypeInfo {
	return []event.TypeInfo{Reserved.Info(), Committed.Info(), Released.Info(), LowStock.Info()}
}
