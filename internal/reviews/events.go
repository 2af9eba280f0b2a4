package reviews

import "mercato/internal/platform/event"

// The events reviews emits; the aggregate is the review (its id is the
// aggregate id). Each carries the product and the product's rating after
// the change, so that the catalog's search index and caches need not ask.
// No payload names the author: events outlive an erasure.
var (
	// Created is emitted in the unit that creates a review.
	Created = event.Define[ReviewEvent]("review.created", 1,
		"A customer reviewed a product; the review is visible and counts in the product's rating.")
	// Hidden is emitted in the unit in which staff hide a review.
	Hidden = event.Define[ReviewEvent]("review.hidden", 1,
		"Staff hid a review: it left the product's public list and rating.")
	// Restored is emitted in the unit in which staff restore a hidden review.
	Restored = event.Define[ReviewEvent]("review.restored", 1,
		"Staff restored a hidden review: it is visible again and counts in the product's rating.")
	// Erased is emitted for each review deleted by a customer's erasure.
	Erased = event.Define[ReviewEvent]("review.erased", 1,
		"A review was deleted with its author's personal data; the product's rating no longer counts it.")
)

// ReviewEvent is the payload of every review event.
type ReviewEvent struct {
	ReviewID  string `json:"review_id" doc:"The review (also the aggregate id)."`
	ProductID string `json:"product_id" doc:"The reviewed product."`
	Rating    Rating `json:"rating" doc:"The product's rating after the change: {average, count} over its visible reviews."`
}
