// Package reviews is the reviews module: customers' reviews of products,
// their moderation by staff, and each product's rating {average, count}
// over its visible reviews, which the catalog shows on the product
// document (Service.Ratings).
//
// # What it owns
//
// The tables reviews_reviews (one row per review; the author is a customer
// id — no name or address is copied, so nothing goes stale or survives an
// erasure) and reviews_ratings (product_id, count, sum). A unique index
// allows one review per customer per product: it decides between racing
// duplicates (409 already_reviewed). The rating row is changed in the unit
// of every create, hide, restore and erasure by one conditional statement
// (an upsert that adds, or an UPDATE … WHERE count >= 1 that subtracts), so
// concurrent reviews of one product never lose a count; hidden reviews do
// not count.
//
// # What it needs
//
// Products (the catalog): whether a product exists and is active; an
// unreviewable product is 404 on both product routes. Purchases (orders):
// whether the customer has a paid order with the product, which sets
// verified_purchase. Both are small interfaces (Deps); a nil Products makes
// every product unreviewable, a nil Purchases no purchase verified.
//
// # Routes (docs/api.md "Reviews")
//
//	POST /api/v1/products/{id}/reviews          customers: {rating 1..5, title ≤ 120, body ≤ 5000} → 201
//	GET  /api/v1/products/{id}/reviews          public: visible reviews, newest first, cursor pages
//	GET  /api/v1/admin/reviews?status=&product_id=   reviews.read
//	POST /api/v1/admin/reviews/{id}/hide {reason}    reviews.moderate (audited)
//	POST /api/v1/admin/reviews/{id}/restore          reviews.moderate (audited)
//
// Operators and customer service hold both permissions (admin holds all).
//
// # Events
//
// review.created, review.hidden, review.restored and review.erased, each
// appended in the unit of its change with the review id, the product id and
// the product's rating after the change. No payload names the author.
//
// # Privacy
//
// The export section "reviews" lists the customer's reviews of every
// status. The erasure deletes them in the erasure's unit, takes the visible
// ones out of their products' ratings and emits review.erased for each.
package reviews
