package pricing

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"mercato/internal/money"
)

// Kind is what a promotion gives.
type Kind string

// The promotion kinds.
const (
	// Percentage takes PercentBP basis points off the lines it applies to.
	Percentage Kind = "percentage"
	// Fixed takes Amount off the lines it applies to, at most their value.
	Fixed Kind = "fixed"
	// FreeShipping waives the shipping price (up to the remaining budget).
	FreeShipping Kind = "free_shipping"
	// BuyXGetY: for every Buy units of Buy.Set bought, Get units of Get.Set
	// are PercentBP off (10000 = free), the cheapest units first.
	BuyXGetY Kind = "bxgy"
)

// Target selects lines: a line matches when its SKU, its product or one of
// its categories is listed. An empty Target matches every line.
type Target struct {
	SKUs        []string `json:"skus,omitempty"`
	ProductIDs  []string `json:"product_ids,omitempty"`
	CategoryIDs []string `json:"category_ids,omitempty"`
}

// IsEmpty reports whether t lists nothing (and so matches every line).
func (t Target) IsEmpty() bool {
	return len(t.SKUs) == 0 && len(t.ProductIDs) == 0 && len(t.CategoryIDs) == 0
}

// Matches reports whether l is one of the lines t selects.
func (t Target) Matches(l Line) bool {
	if t.IsEmpty() {
		return true
	}
	if slices.Contains(t.SKUs, l.SKU) || slices.Contains(t.ProductIDs, l.ProductID) {
		return true
	}
	for _, c := range l.CategoryIDs {
		if slices.Contains(t.CategoryIDs, c) {
			return true
		}
	}
	return false
}

// BXGY is the rule of a buy-X-get-Y promotion.
type BXGY struct {
	Buy     int64  `json:"buy"`     // units to buy, ≥ 1
	BuySet  Target `json:"buy_set"` // the units that count as bought
	Get     int64  `json:"get"`     // units discounted per Buy bought, ≥ 1
	GetSet  Target `json:"get_set"` // the units that may be discounted
	MaxUses int64  `json:"max_uses,omitempty"`
	// MaxUses caps the number of times the rule repeats in one cart; 0 is
	// no cap.
}

// Promotion is one version of a promotion as the storage layer hands it to
// the engine, with its remaining limits already worked out.
type Promotion struct {
	ID       string `json:"id"`
	Version  int64  `json:"version"`        // ≥ 1; recorded with each discount
	Code     string `json:"code,omitempty"` // a coupon code; "" for an automatic promotion
	Kind     Kind   `json:"kind"`
	Priority int    `json:"priority"` // higher applies first
	// Exclusive: when it applies, no other promotion does (see the package
	// documentation for how several exclusive promotions are decided).
	Exclusive bool `json:"exclusive"`

	PercentBP int64        `json:"percent_bp,omitempty"` // Percentage, BuyXGetY: 0 < p ≤ 10000
	Amount    *money.Money `json:"amount,omitempty"`     // Fixed: > 0
	BXGY      *BXGY        `json:"bxgy,omitempty"`       // BuyXGetY

	// Conditions. An empty list does not restrict.
	AppliesTo      Target       `json:"applies_to"` // Percentage, Fixed: the lines discounted
	MinSubtotal    *money.Money `json:"min_subtotal,omitempty"`
	CustomerGroups []string     `json:"customer_groups,omitempty"`
	FirstOrderOnly bool         `json:"first_order_only,omitempty"`
	Channels       []string     `json:"channels,omitempty"`
	StartsAt       time.Time    `json:"starts_at,omitzero"` // inclusive; zero = no start
	EndsAt         time.Time    `json:"ends_at,omitzero"`   // exclusive; zero = no end

	// Remaining limits, worked out by the storage layer; nil is no limit.
	UsesLeft   *int64       `json:"uses_left,omitempty"`   // min(total uses left, this customer's uses left)
	BudgetLeft *money.Money `json:"budget_left,omitempty"` // discount that may still be given
}

// ValidatePromotions checks a promotion rule set: each promotion's fields,
// and that IDs and coupon codes (case-insensitively) are unique. The error
// is Invalid with one field error per problem, named from "promotions".
func ValidatePromotions(ps []Promotion) error {
	var v problems
	// Every quote validates its few promotions: below smallSet a scan
	// finds the duplicates without allocating maps.
	const smallSet = 16
	var ids, codes map[string]int
	if len(ps) > smallSet {
		ids, codes = make(map[string]int, len(ps)), map[string]int{}
	}
	last := func(m map[string]int, i int, key func(*Promotion) string) (int, bool) {
		if m != nil {
			j, ok := m[key(&ps[i])]
			return j, ok
		}
		for j := i - 1; j >= 0; j-- {
			if key(&ps[j]) == key(&ps[i]) {
				return j, true
			}
		}
		return 0, false
	}
	id := func(p *Promotion) string { return p.ID }
	code := func(p *Promotion) string { return normCode(p.Code) }
	list := root("")
	for i := range ps {
		p, f := &ps[i], list.at("promotions", i)
		p.validate(&v, &f)
		if j, dup := last(ids, i, id); dup {
			v.Add(f.String()+".id", fmt.Sprintf("duplicates promotions[%d]", j))
		}
		if ids != nil {
			ids[p.ID] = i
		}
		if c := code(p); c != "" {
			if j, dup := last(codes, i, code); dup {
				v.Add(f.String()+".code", fmt.Sprintf("duplicates the code of promotions[%d]", j))
			}
			if codes != nil {
				codes[c] = i
			}
		}
	}
	return v.Err("pricing.ValidatePromotions")
}

func (p *Promotion) validate(v *problems, f *path) {
	v.check(p.ID != "", f, ".id", "is required")
	v.check(p.Version >= 1, f, ".version", "must be at least 1")
	validPercent := func() {
		v.check(p.PercentBP > 0, f, ".percent_bp", "must be above 0")
		v.check(p.PercentBP <= money.BasisPointsPerUnit, f, ".percent_bp", "must be at most 10000 (100%)")
	}
	switch p.Kind {
	case Percentage:
		validPercent()
	case Fixed:
		if p.Amount == nil {
			v.check(false, f, ".amount", "is required")
		} else {
			v.check(p.Amount.Currency() != "", f, ".amount", "needs a currency")
			v.check(p.Amount.Amount() > 0, f, ".amount", "must be above 0")
		}
	case FreeShipping:
	case BuyXGetY:
		validPercent()
		if p.BXGY == nil {
			v.check(false, f, ".bxgy", "is required")
		} else {
			v.check(p.BXGY.Buy >= 1, f, ".bxgy.buy", "must be at least 1")
			v.check(p.BXGY.Get >= 1, f, ".bxgy.get", "must be at least 1")
			v.check(p.BXGY.MaxUses >= 0, f, ".bxgy.max_uses", "must not be negative")
		}
	default:
		v.check(false, f, ".kind", "must be percentage, fixed, free_shipping or bxgy")
	}
	if m := p.MinSubtotal; m != nil {
		v.check(m.Currency() != "" && !m.IsNegative(), f, ".min_subtotal", "must be an amount of at least 0")
	}
	if p.UsesLeft != nil {
		v.check(*p.UsesLeft >= 0, f, ".uses_left", "must not be negative")
	}
	if b := p.BudgetLeft; b != nil {
		v.check(b.Currency() != "" && !b.IsNegative(), f, ".budget_left", "must be an amount of at least 0")
	}
	if !p.StartsAt.IsZero() && !p.EndsAt.IsZero() {
		v.check(p.EndsAt.After(p.StartsAt), f, ".ends_at", "must be after starts_at")
	}
}

// normCode is the form coupon codes are compared in: trimmed, upper case.
func normCode(c string) string { return strings.ToUpper(strings.TrimSpace(c)) }

// window says where now falls in the promotion's validity window.
func (p Promotion) window(now time.Time) string {
	switch {
	case !p.StartsAt.IsZero() && now.Before(p.StartsAt):
		return CouponNotApplicable // not yet
	case !p.EndsAt.IsZero() && !now.Before(p.EndsAt):
		return CouponExpired
	}
	return ""
}

// exhausted reports whether the remaining limits allow no further use:
// no use left, or a budget that is spent or in another currency.
func (p Promotion) exhausted(currency string) bool {
	if p.UsesLeft != nil && *p.UsesLeft <= 0 {
		return true
	}
	if b := p.BudgetLeft; b != nil && (b.Currency() != currency || b.Amount() <= 0) {
		return true
	}
	return false
}

// eligible checks the conditions about the customer, the channel and the
// cart (not the window, not the limits): "" when they hold, else
// CouponNotApplicable.
func (p Promotion) eligible(in *Input, subtotal money.Money) string {
	if len(p.Channels) > 0 && !slices.Contains(p.Channels, in.Channel) {
		return CouponNotApplicable
	}
	if p.FirstOrderOnly && !in.Customer.FirstOrder {
		return CouponNotApplicable
	}
	if len(p.CustomerGroups) > 0 && !slices.ContainsFunc(in.Customer.Groups, func(g string) bool {
		return slices.Contains(p.CustomerGroups, g)
	}) {
		return CouponNotApplicable
	}
	if m := p.MinSubtotal; m != nil && (m.Currency() != subtotal.Currency() || m.Amount() > subtotal.Amount()) {
		return CouponNotApplicable
	}
	if p.Kind == Fixed && p.Amount.Currency() != subtotal.Currency() {
		return CouponNotApplicable
	}
	return ""
}
