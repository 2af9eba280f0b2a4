// Package pricing is mercato's pricing engine: promotions, shipping rates
// and tax as pure computation. It reads no clock, database or
// configuration: Quote(Input) prices a cart from the lines (server-side
// unit prices), the customer's facts, the channel, the address, the chosen
// shipping method, the coupons entered, the time "now" and the rule sets
// (promotions with their versions and remaining limits, the shipping table,
// the tax table), so one Input always gives one Quotation. Storage of the
// rule sets, their limits and the staff API are other packages' business.
//
// # The pipeline
//
// Quote runs four stages, each exported so that the orders quote pipeline
// can call them one by one: Discounts (subtotals, promotions), Shipping
// (the chosen method's price for the discounted cart, less free shipping),
// Tax (on the discounted lines and the charged shipping) and Totals. Each
// stage validates what it reads; every error is an *errs.Error, Invalid
// (422) for bad input or rule sets, with field errors naming the field
// ("promotions[2].percent_bp", "shipping.zones[1].areas[0]").
//
// # Promotions
//
// Kinds: Percentage (0 < percent_bp ≤ 10000), Fixed (an amount > 0, at
// most the value of the lines it applies to), FreeShipping (waives the
// shipping price), BuyXGetY (for every Buy units of a set, Get units of a
// set at percent_bp off, the cheapest units first; units in both sets count
// either way and the rule repeats as often as the cart allows, up to
// MaxUses). A promotion with a Code applies only when the code is entered
// (trimmed, case-insensitive); one without is automatic.
//
// A promotion is a candidate when now is in [StartsAt, EndsAt), it has uses
// and budget left (UsesLeft, BudgetLeft: worked out by storage) and its
// conditions hold: channel, customer group, first order, and a minimum
// subtotal, compared with the cart's subtotal before any discount.
//
// Stacking is decided by priority, not by comparing outcomes: when an
// exclusive candidate gives a discount (or is free shipping), the exclusive
// one with the highest priority applies alone — on a tie of priority the
// larger discount, then the smaller ID — and every other promotion is
// refused. Otherwise the combinable candidates apply one after another,
// highest priority first (then by ID), each on what the earlier ones left
// of the lines; at most one free-shipping promotion applies. Priority was
// chosen over "best for the customer" because the merchant controls it, it
// does not depend on the shipping price (which itself depends on the
// discounted subtotal), and one extra promotion never changes the order of
// the others.
//
// A promotion's discount is computed on the total of the lines it applies
// to (percentages rounded half-even), clamped to its remaining budget, then
// allocated to those lines with money.Allocate, weighted by what is left of
// each line, so no cent is lost and no line is discounted below zero;
// BuyXGetY discounts the chosen units' lines directly. Each line records
// its discounts with the promotion's ID and version.
//
// Coupons: each entered code ends applied, coupon_unknown (no such code),
// coupon_expired (after EndsAt), coupon_exhausted (no uses or budget left)
// or coupon_not_applicable (not yet started, conditions unmet, no discount,
// or beaten by an exclusive promotion). When any cannot apply, Quote
// returns an Invalid error whose code is the first failing coupon's, with
// the cart priced without the failing coupons.
//
// # Shipping
//
// The ShippingTable has zones (sets of countries, or regions of them; no
// two zones cover one place) with a rate per method (standard, express,
// pickup): flat, by weight brackets in grams or by subtotal brackets
// (discounted subtotal, minor units), brackets [From, To) that do not
// overlap, and an optional free-shipping threshold. Methods lists what an
// address can have; an address in no zone has no method, and choosing a
// method it cannot have is Invalid (shipping_unavailable). A free-shipping
// promotion waives the price, at most its remaining budget.
//
// # Tax
//
// The TaxTable has rules per country, or per region of it (the region's
// replace the country's): a rate per product tax class; whether prices,
// shipping prices too, include tax (extracted as amount × rate / (1 +
// rate)) or exclude it (added as amount × rate); whether shipping is taxed
// (at ShippingClass); and the rounding, always half-even: per line, or per
// order, rounding once per rate over the order and allocating that tax to
// the lines (and the shipping) by amount. Lines are taxed on their
// discounted amounts. An address in no region is not taxed.
//
// # Totals
//
// Σ line discounts = Discount, Σ line taxes + ShippingTax = Tax; prices
// excluding tax: Total = Subtotal − Discount + Shipping + Tax; including it:
// Total = Subtotal − Discount + Shipping, Tax being the part of it that is
// tax. The quotation records the promotions applied (ID, version, amounts)
// and the versions of the shipping and tax tables used.
package pricing
