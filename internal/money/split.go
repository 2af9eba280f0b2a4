package money

import (
	"fmt"
	"math"
	"math/bits"
	"sort"

	"mercato/internal/platform/errs"
)

// Rounding says how a result between two minor units is rounded. The modes
// are symmetric about zero: -x rounds to minus what x rounds to.
type Rounding uint8

// The rounding modes.
const (
	// HalfEven rounds to the nearest unit and a tie to the even one
	// (banker's rounding): the default for tax and discounts, because it
	// does not drift up over many lines.
	HalfEven Rounding = iota
	// HalfUp rounds to the nearest unit and a tie away from zero.
	HalfUp
	// Down rounds toward zero (truncates).
	Down
	// Up rounds away from zero.
	Up
)

func (r Rounding) String() string {
	switch r {
	case HalfEven:
		return "half_even"
	case HalfUp:
		return "half_up"
	case Down:
		return "down"
	case Up:
		return "up"
	}
	return fmt.Sprintf("rounding(%d)", uint8(r))
}

// BasisPointsPerUnit is 100%: Percent(10000, …) returns m.
const BasisPointsPerUnit = 10000

// Percent returns basisPoints/10000 of m (1 basis point = 0.01 %, so 19 %
// VAT is 1900 and a 12.5 % discount 1250), rounded to a minor unit with
// rounding. A negative rate gives a result of the opposite sign. The exact
// product is computed in 128 bits, so only a result out of range fails
// (ErrOverflow).
func (m Money) Percent(basisPoints int64, rounding Rounding) (Money, error) {
	const op = "money.Percent"
	if m.currency == "" {
		return Money{}, errs.E(op, errs.Invalid, "money without a currency", ErrCurrency)
	}
	if rounding > Up {
		return Money{}, errs.E(op, errs.Internal, fmt.Sprintf("unknown rounding %d", rounding))
	}
	if basisPoints == math.MinInt64 {
		return Money{}, overflow(op)
	}
	a, bp := abs(m.amount), abs(basisPoints)
	hi, lo := bits.Mul64(a, bp)
	if hi >= BasisPointsPerUnit {
		return Money{}, overflow(op) // quotient ≥ 2^64
	}
	q, rem := bits.Div64(hi, lo, BasisPointsPerUnit)
	if roundUp(q, rem, BasisPointsPerUnit, rounding) {
		q++
	}
	if q > math.MaxInt64 {
		return Money{}, overflow(op)
	}
	r := int64(q)
	if (m.amount < 0) != (basisPoints < 0) {
		r = -r
	}
	return Money{r, m.currency}, nil
}

// roundUp reports whether the magnitude q + rem/d rounds to q+1.
func roundUp(q, rem, d uint64, r Rounding) bool {
	if rem == 0 {
		return false
	}
	switch r {
	case Up:
		return true
	case HalfUp:
		return rem >= d-rem // rem/d ≥ ½ without overflow
	case HalfEven:
		if rem != d-rem {
			return rem > d-rem
		}
		return q%2 == 1
	}
	return false
}

func abs(v int64) uint64 {
	if v < 0 {
		return uint64(-v)
	}
	return uint64(v)
}

// Allocate splits m across len(weights) parts in proportion to the weights
// — an order discount across its lines, a payment across its shipments —
// so that the parts sum to exactly m: each part gets the floor of its
// share, and the units left over go one each to the parts with the largest
// remainders (the earlier part on a tie). A part with weight zero gets
// nothing; when every weight is zero the amount is split evenly. Parts have
// m's sign.
//
// It returns nil for no weights, and panics on a negative weight or when
// the weights sum beyond 2^64-1: both are programming errors, like a
// negative count to strings.Repeat.
func (m Money) Allocate(weights []int64) []Money {
	if len(weights) == 0 {
		return nil
	}
	var total uint64
	for _, w := range weights {
		if w < 0 {
			panic(fmt.Sprintf("money.Allocate: negative weight %d", w))
		}
		var carry uint64
		total, carry = bits.Add64(total, uint64(w), 0)
		if carry != 0 {
			panic("money.Allocate: weights sum beyond 2^64-1")
		}
	}
	w := func(i int) uint64 { return uint64(weights[i]) }
	if total == 0 {
		total = uint64(len(weights))
		w = func(int) uint64 { return 1 }
	}
	a := abs(m.amount)
	parts := make([]uint64, len(weights))
	rems := make([]uint64, len(weights))
	var given uint64
	for i := range weights {
		// a×w < 2^63×total, so the high word is below total and Div64
		// cannot overflow; the quotient is at most a.
		hi, lo := bits.Mul64(a, w(i))
		parts[i], rems[i] = bits.Div64(hi, lo, total)
		given += parts[i]
	}
	// The left-over units number fewer than the parts with a remainder.
	if left := a - given; left > 0 {
		order := make([]int, len(weights))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(x, y int) bool { return rems[order[x]] > rems[order[y]] })
		for _, i := range order[:left] {
			parts[i]++
		}
	}
	out := make([]Money, len(weights))
	for i, p := range parts {
		v := int64(p)
		if m.amount < 0 {
			v = -v
		}
		out[i] = Money{v, m.currency}
	}
	return out
}
