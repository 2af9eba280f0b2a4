package promotions

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/pricing"
)

// The statuses of a promotion.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
)

// Bounds of what staff may enter.
const (
	MaxCodes    = 20  // coupon codes per promotion
	MaxListLen  = 100 // entries of each list in a target or a condition
	MaxCodeLen  = 64  // characters of a coupon code
	MaxNameLen  = 200 // characters of a name
	maxEntryLen = 64  // characters of a SKU, id, group or channel
)

// Target selects cart lines (pricing.Target with bounded strings).
type Target struct {
	SKUs        []string `json:"skus,omitempty" maxlen:"64" doc:"SKUs selected."`
	ProductIDs  []string `json:"product_ids,omitempty" maxlen:"64" doc:"Products selected."`
	CategoryIDs []string `json:"category_ids,omitempty" maxlen:"64" doc:"Categories selected."`
}

// BXGY is the rule of a buy-X-get-Y promotion (see pricing.BXGY).
type BXGY struct {
	Buy     int64  `json:"buy" doc:"Units to buy, at least 1."`
	BuySet  Target `json:"buy_set" doc:"The units that count as bought (empty: all)."`
	Get     int64  `json:"get" doc:"Units discounted per buy units bought, at least 1."`
	GetSet  Target `json:"get_set" doc:"The units that may be discounted (empty: all)."`
	MaxUses int64  `json:"max_uses,omitempty" doc:"How often the rule repeats in one cart at most; 0: no cap."`
}

// Conditions say when a promotion applies. An empty list does not restrict.
type Conditions struct {
	AppliesTo      Target       `json:"applies_to" doc:"The lines a percentage or fixed discount applies to (empty: all)."`
	MinSubtotal    *money.Money `json:"min_subtotal,omitempty" doc:"The cart's subtotal before discounts must be at least this."`
	CustomerGroups []string     `json:"customer_groups,omitempty" maxlen:"64" doc:"The customer must be in one of these groups."`
	FirstOrderOnly bool         `json:"first_order_only,omitempty" doc:"Only for a customer's first order."`
	Channels       []string     `json:"channels,omitempty" maxlen:"64" doc:"Only on these sales channels."`
}

// Window is a promotion's validity: [starts_at, ends_at); a zero end is none.
type Window struct {
	StartsAt time.Time `json:"starts_at,omitzero" doc:"Inclusive; absent: from now on."`
	EndsAt   time.Time `json:"ends_at,omitzero" doc:"Exclusive; absent: no end."`
}

// Limits bound a promotion's use; an absent member is no limit.
type Limits struct {
	TotalUses   *int64       `json:"total_uses,omitempty" doc:"Redemptions over all orders, at least 1."`
	PerCustomer *int64       `json:"per_customer,omitempty" doc:"Redemptions per customer, at least 1 (guests then cannot use it)."`
	Budget      *money.Money `json:"budget,omitempty" doc:"The total discount (lines and shipping) it may give, above 0."`
}

// any reports whether l sets a limit (a promotion without one is not
// counted in its counter row: counter.go).
func (l Limits) any() bool { return l.TotalUses != nil || l.PerCustomer != nil || l.Budget != nil }

// Rule is a promotion as staff write it: the body of POST
// /api/v1/admin/promotions. No codes makes it automatic.
type Rule struct {
	Name       string       `json:"name" maxlen:"200" doc:"For staff: what the promotion is."`
	Kind       pricing.Kind `json:"kind" maxlen:"32" doc:"percentage, fixed, free_shipping or bxgy."`
	PercentBP  int64        `json:"percent_bp,omitempty" doc:"percentage, bxgy: basis points off, 1 to 10000."`
	Amount     *money.Money `json:"amount,omitempty" doc:"fixed: the amount off, above 0."`
	BXGY       *BXGY        `json:"bxgy,omitempty" doc:"bxgy: the rule."`
	Conditions Conditions   `json:"conditions"`
	Window     Window       `json:"window"`
	Exclusive  bool         `json:"exclusive" doc:"When it applies, no other promotion does."`
	Priority   int          `json:"priority" doc:"Higher applies first."`
	Limits     Limits       `json:"limits"`
	Codes      []string     `json:"codes,omitempty" maxlen:"64" doc:"Coupon codes (case-insensitive, unique over all promotions); none: automatic."`
}

// Patch is the body of PATCH /api/v1/admin/promotions/{id}: each member
// given replaces the promotion's whole member of that name; absent (or
// null) leaves it as it is.
type Patch struct {
	Name       *string       `json:"name,omitempty" maxlen:"200"`
	Kind       *pricing.Kind `json:"kind,omitempty" maxlen:"32"`
	PercentBP  *int64        `json:"percent_bp,omitempty"`
	Amount     *money.Money  `json:"amount,omitempty"`
	BXGY       *BXGY         `json:"bxgy,omitempty"`
	Conditions *Conditions   `json:"conditions,omitempty"`
	Window     *Window       `json:"window,omitempty"`
	Exclusive  *bool         `json:"exclusive,omitempty"`
	Priority   *int          `json:"priority,omitempty"`
	Limits     *Limits       `json:"limits,omitempty"`
	Codes      *[]string     `json:"codes,omitempty" maxlen:"64"`
}

// apply returns r with p's members replaced.
func (p Patch) apply(r Rule) Rule {
	if p.Name != nil {
		r.Name = *p.Name
	}
	if p.Kind != nil {
		r.Kind = *p.Kind
	}
	if p.PercentBP != nil {
		r.PercentBP = *p.PercentBP
	}
	if p.Amount != nil {
		r.Amount = p.Amount
	}
	if p.BXGY != nil {
		r.BXGY = p.BXGY
	}
	if p.Conditions != nil {
		r.Conditions = *p.Conditions
	}
	if p.Window != nil {
		r.Window = *p.Window
	}
	if p.Exclusive != nil {
		r.Exclusive = *p.Exclusive
	}
	if p.Priority != nil {
		r.Priority = *p.Priority
	}
	if p.Limits != nil {
		r.Limits = *p.Limits
	}
	if p.Codes != nil {
		r.Codes = *p.Codes
	}
	return r
}

// Usage is how much of a promotion's limits was used.
type Usage struct {
	Uses  int64        `json:"uses" doc:"Redemptions not released."`
	Spent *money.Money `json:"spent,omitempty" doc:"Discount given by them (present when a budget is set)."`
}

// Promotion is a promotion as staff read it: its current version.
type Promotion struct {
	ID      string `json:"id"`
	Version int64  `json:"version" doc:"Starts at 1; every change makes the next."`
	Status  string `json:"status" doc:"active or inactive."`
	Rule
	Usage     Usage     `json:"usage"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// normalize trims and upper-cases codes, trims the name, and drops the
// members the kind does not read, so that a stored rule says only what
// counts.
func (r *Rule) normalize() {
	r.Name = strings.TrimSpace(r.Name)
	for i, c := range r.Codes {
		r.Codes[i] = normCode(c)
	}
	if r.Kind != pricing.Percentage && r.Kind != pricing.BuyXGetY {
		r.PercentBP = 0
	}
	if r.Kind != pricing.Fixed {
		r.Amount = nil
	}
	if r.Kind != pricing.BuyXGetY {
		r.BXGY = nil
	}
}

// normCode is the form a coupon code is stored and looked up in (the
// pricing engine compares codes the same way).
func normCode(c string) string { return strings.ToUpper(strings.TrimSpace(c)) }

// validCode reports whether c (normalised) is made of A–Z, 0–9, '-' and '_'.
func validCode(c string) bool {
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !(b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return c != ""
}

// validate checks a normalised rule: its own bounds, then the pricing
// engine's rules (ValidatePromotions), with the engine's field names put in
// the request's terms. The error is Invalid naming every bad field.
func (r *Rule) validate(op string) error {
	var v errs.Validation
	v.Check(r.Name != "", "name", "is required")
	v.Check(len(r.Codes) <= MaxCodes, "codes", fmt.Sprintf("must hold at most %d codes", MaxCodes))
	for i, c := range r.Codes {
		f := fmt.Sprintf("codes.%d", i)
		v.Check(validCode(c), f, "must be letters, digits, '-' or '_'")
		if j := slices.Index(r.Codes, c); j < i {
			v.Add(f, fmt.Sprintf("duplicates codes.%d", j))
		}
	}
	lists := map[string][]string{
		"conditions.applies_to.skus": r.Conditions.AppliesTo.SKUs, "conditions.applies_to.product_ids": r.Conditions.AppliesTo.ProductIDs,
		"conditions.applies_to.category_ids": r.Conditions.AppliesTo.CategoryIDs,
		"conditions.customer_groups":         r.Conditions.CustomerGroups, "conditions.channels": r.Conditions.Channels,
	}
	if b := r.BXGY; b != nil {
		lists["bxgy.buy_set.skus"], lists["bxgy.buy_set.product_ids"], lists["bxgy.buy_set.category_ids"] = b.BuySet.SKUs, b.BuySet.ProductIDs, b.BuySet.CategoryIDs
		lists["bxgy.get_set.skus"], lists["bxgy.get_set.product_ids"], lists["bxgy.get_set.category_ids"] = b.GetSet.SKUs, b.GetSet.ProductIDs, b.GetSet.CategoryIDs
	}
	for _, f := range slices.Sorted(maps.Keys(lists)) {
		v.Check(len(lists[f]) <= MaxListLen, f, fmt.Sprintf("must hold at most %d entries", MaxListLen))
	}
	if n := r.Limits.TotalUses; n != nil {
		v.Check(*n >= 1, "limits.total_uses", "must be at least 1")
	}
	if n := r.Limits.PerCustomer; n != nil {
		v.Check(*n >= 1, "limits.per_customer", "must be at least 1")
	}
	if b := r.Limits.Budget; b != nil {
		v.Check(b.Amount() > 0, "limits.budget", "must be above 0")
	}
	if r.Kind == pricing.Fixed && r.Amount != nil && r.Limits.Budget != nil {
		v.Check(r.Amount.Currency() == r.Limits.Budget.Currency(), "limits.budget", "must be in the currency of amount")
	}
	p := r.pricing("validate", 1, "")
	if err := pricing.ValidatePromotions([]pricing.Promotion{p}); err != nil {
		var e *errs.Error
		if !errors.As(err, &e) {
			return errs.E(op, errs.Internal, err)
		}
		for _, fe := range e.Fields {
			v.Add(requestField(fe.Field), fe.Message)
		}
	}
	return v.Err(op)
}

// requestField renames a field of pricing.ValidatePromotions'
// ("promotions[0].ends_at") to the request's ("window.ends_at").
func requestField(f string) string {
	f = strings.TrimPrefix(f, "promotions[0].")
	switch {
	case f == "starts_at" || f == "ends_at":
		return "window." + f
	case f == "min_subtotal":
		return "conditions." + f
	}
	return f
}

// pricing is the rule as the engine reads it, for promotion id at version
// with the coupon code code ("" for an automatic one); the remaining
// limits are left to the caller.
func (r *Rule) pricing(id string, version int64, code string) pricing.Promotion {
	p := pricing.Promotion{
		ID: id, Version: version, Code: code, Kind: r.Kind, Priority: r.Priority, Exclusive: r.Exclusive,
		PercentBP: r.PercentBP, Amount: r.Amount,
		AppliesTo:      pricing.Target(r.Conditions.AppliesTo),
		MinSubtotal:    r.Conditions.MinSubtotal,
		CustomerGroups: r.Conditions.CustomerGroups,
		FirstOrderOnly: r.Conditions.FirstOrderOnly,
		Channels:       r.Conditions.Channels,
		StartsAt:       r.Window.StartsAt,
		EndsAt:         r.Window.EndsAt,
	}
	if b := r.BXGY; b != nil {
		p.BXGY = &pricing.BXGY{Buy: b.Buy, BuySet: pricing.Target(b.BuySet), Get: b.Get, GetSet: pricing.Target(b.GetSet), MaxUses: b.MaxUses}
	}
	return p
}
