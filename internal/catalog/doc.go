// Package catalog is the shop's catalogue: a category tree, products with
// variants (one SKU each, unique across the shop), their prices, media,
// tax class and sales channels; the public reads of active products (with
// ETags and a cache of encoded documents), the staff lists, CSV import and
// export, the pricing API the orders module reads inside its transaction
// (VariantsTx), and the search.Source and Indexer that keep the search
// index (package search) a projection of its tables.
//
// # Rules
//
//   - Status: draft (staff only), active (listed, sellable), archived
//     (delisted). Every transition is allowed except archived → draft
//     (409 invalid_transition): a delisted product is relisted as active.
//     A draft or archived product is 404 to the public.
//   - A SKU belongs to one variant of one product; the unique index on
//     catalog_variants(sku) decides between racing writers (409 sku_taken).
//   - Money: non-negative integer minor units, one currency per product
//     (422 otherwise); compare_at_price is optional.
//   - Categories form a tree: a move under the category itself or a
//     descendant is 422; a category with products or children is not
//     deleted (409). A product is in up to 20 categories; filters and
//     counts cover a category's subtree.
//   - Search: with Config.Index nil (until the Bleve and PostgreSQL
//     indexes are wired), ?q= lists active products whose title or a SKU
//     holds q (a LIKE), without facets. With an index, the hits are
//     hydrated from the database, so a hit no longer active is dropped; a
//     query the index refuses is 422.
//
// # Caching
//
// GET /api/v1/products/{id} serves an encoded document from a Cache (otter
// in-process, or Redis shared by replicas with --redis-url), each entry
// kept at most CacheTTL. A change drops the entry when its unit commits
// (in-process at once; on PostgreSQL the unit also notifies the other
// replicas, which drop theirs when the commit is delivered; with Redis the
// handler deletes the key before it answers). Review events, handled by
// the indexer's consumer, drop the product's entry too (its rating
// changed). A read that raced an invalidation does not fill the cache. On
// PostgreSQL the in-process cache is used only while this process listens
// for the other replicas' invalidations. Public reads carry a strong ETag
// (the version and a digest of the document) and Cache-Control: public,
// max-age=60; staff reads an ETag of the version and private, no-store;
// If-None-Match answers 304.
//
// # Events
//
// product.created and product.updated (the product document, changed
// field names), category.created, category.updated and category.deleted,
// each appended in the unit of its change. The indexer consumes product.*
// and review.* (a review's payload names product_id) as catalog_search.
//
// # Routes
//
//	POST   /api/v1/admin/products           catalog.write   create
//	GET    /api/v1/admin/products           catalog.read    list (status, category, q, channel)
//	GET    /api/v1/admin/products/{id}      catalog.read    one, any status
//	PATCH  /api/v1/admin/products/{id}      catalog.write   partial update
//	POST   /api/v1/admin/products/import    catalog.write   CSV import (text/csv)
//	GET    /api/v1/admin/products/export    catalog.read    CSV export
//	GET    /api/v1/admin/categories         catalog.read    tree with counts (any status)
//	POST   /api/v1/admin/categories         catalog.write   create
//	PATCH  /api/v1/admin/categories/{id}    catalog.write   rename, move
//	DELETE /api/v1/admin/categories/{id}    catalog.write   delete when empty
//	GET    /api/v1/products                 public          list or search
//	GET    /api/v1/products/{id}            public          one active product with its rating
//	GET    /api/v1/categories               public          tree with active product counts
package catalog
