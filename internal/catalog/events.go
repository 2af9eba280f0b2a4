package catalog

import "mercato/internal/platform/event"

// The events the catalog emits, each appended in the unit of its change.
var (
	// ProductCreated carries the whole new product.
	ProductCreated = event.Define[ProductEventData]("product.created", 1,
		"A product was created (in any status); data is the product document with its variants.")
	// ProductUpdated carries the product after the change and the fields
	// that changed.
	ProductUpdated = event.Define[ProductEventData]("product.updated", 1,
		"A product changed (including its status: active lists it, archived delists it); data is the product "+
			"document after the change, changed names the fields that changed.")
	// CategoryCreated, CategoryUpdated and CategoryDeleted carry the category.
	CategoryCreated = event.Define[CategoryEventData]("category.created", 1, "A category was created.")
	CategoryUpdated = event.Define[CategoryEventData]("category.updated", 1,
		"A category was renamed or moved; changed names the fields that changed (name, parent_id).")
	CategoryDeleted = event.Define[CategoryEventData]("category.deleted", 1, "An empty category was deleted.")
)

// ProductEventData is the payload of the product events.
type ProductEventData struct {
	Product
	Changed []string `json:"changed,omitempty" doc:"product.updated: the API names of the fields that changed."`
}

// CategoryEventData is the payload of the category events.
type CategoryEventData struct {
	Category
	Changed []string `json:"changed,omitempty" doc:"category.updated: the fields that changed."`
}

// Events describes the event types the catalog emits.
func Events() []event.TypeInfo {
	return []event.TypeInfo{ProductCreated.Info(), ProductUpdated.Info(), CategoryCreated.Info(),
		CategoryUpdated.Info(), CategoryDeleted.Info()}
}
