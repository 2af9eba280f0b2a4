// Package rates is the rates module: the shipping table (zones of
// countries or regions, a rate per method: flat, by weight or by subtotal
// brackets, with a free-shipping threshold) and the tax table (rules per
// country or region, a rate per product tax class), as the pricing engine
// (internal/pricing) reads them. Staff save either table whole as a
// versioned document (every save a new version row, validated by the
// engine's Validate: overlapping zones or brackets are 422 naming the
// overlap), audited, with rates.updated.
//
// The orders module's checkout unit calls CurrentTx for both tables: the
// engine's form of each is cached in memory by version (filled only with
// committed versions, emptied when a save commits), and every call asks
// the database for the current versions, so a save by another replica is
// seen at once.
//
// # Routes
//
//	PUT /api/v1/admin/shipping-rates  rates.write  the whole shipping table {currency, zones}
//	GET /api/v1/admin/shipping-rates  rates.read
//	PUT /api/v1/admin/tax-rates       rates.write  the whole tax table {regions}
//	GET /api/v1/admin/tax-rates       rates.read
//	GET /api/v1/shipping-methods      public       ?country=&region=&postal_code=&subtotal=&weight_grams=
package rates
