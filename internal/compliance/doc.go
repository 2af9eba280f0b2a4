// Package compliance is the region rules module (issue #16): staff save
// the rules as one versioned document (every save a new version, audited,
// compliance.updated), and the orders module checks a cart against the
// current version at quote and inside the checkout unit:
//
//   - restrictions: products or categories not sellable in a country, or a
//     region of it — 422 region_restricted naming the rule and the lines;
//   - limits per customer per region in one currency: an order's amount
//     (per_order) and a calendar year's (per_year, UTC), e.g. cross-border
//     retail to CN: one order ≤ 5,000 CNY, ≤ 26,000 CNY a year — 422
//     limit_exceeded naming the rule, the limit and the figures;
//   - identity: the identity document types a region requires (a real-name
//     ID number for cross-border orders) — 422 identity_required.
//
// A rule with no region applies to the whole country; a limit in another
// currency than the order's does not apply to it.
//
// The per-year limit holds under any concurrency: CountTx, in the checkout's
// unit, adds the order's amount to the customer's counter row
// (compliance_spent) with one conditional write (INSERT … ON CONFLICT DO
// UPDATE … WHERE spent + amount <= limit) and records the order's share
// (compliance_counts). The consumer compliance_orders gives the share back
// on order.cancelled and order.expired, keyed by the event's aggregate id.
//
// # Routes (staff)
//
//	PUT /api/v1/admin/compliance/rules  compliance.write  the whole rule set
//	GET /api/v1/admin/compliance/rules  compliance.read
//
// A rule naming a product the catalog does not know is 422.
package compliance
