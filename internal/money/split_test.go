package money

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

func TestPercent(t *testing.T) {
	tests := []struct {
		name     string
		amount   int64
		bp       int64
		rounding Rounding
		want     int64
		cause    error
	}{
		{"10 % exact", 250, 1000, HalfEven, 25, nil},
		{"tie to even, down", 125, 1000, HalfEven, 12, nil},
		{"tie to even, up", 135, 1000, HalfEven, 14, nil},
		{"tie half up", 125, 1000, HalfUp, 13, nil},
		{"tie down", 125, 1000, Down, 12, nil},
		{"tie up", 125, 1000, Up, 13, nil},
		{"below half", 1204, 1000, HalfEven, 120, nil},
		{"above half", 1206, 1000, HalfEven, 121, nil},
		{"below half, up", 1201, 1000, Up, 121, nil},
		{"above half, down", 1209, 1000, Down, 120, nil},
		{"negative tie to even", -125, 1000, HalfEven, -12, nil},
		{"negative tie half up is away from zero", -125, 1000, HalfUp, -13, nil},
		{"negative down is toward zero", -129, 1000, Down, -12, nil},
		{"negative rate", 125, -1000, HalfUp, -13, nil},
		{"both negative", -125, -1000, HalfUp, 13, nil},
		{"19 % VAT", 1999, 1900, HalfEven, 380, nil},
		{"12.5 % discount", 3333, 1250, HalfEven, 417, nil},
		{"1 bp", 5000, 1, HalfEven, 0, nil},
		{"1 bp tie", 5000, 1, HalfUp, 1, nil},
		{"100 %", 4321, 10000, HalfEven, 4321, nil},
		{"0 %", 4321, 0, Up, 0, nil},
		{"100 % of max", math.MaxInt64, 10000, HalfEven, math.MaxInt64, nil},
		{"50 % of max: tie to even", math.MaxInt64, 5000, HalfEven, math.MaxInt64/2 + 1, nil},
		{"200 % of max", math.MaxInt64, 20000, HalfEven, 0, ErrOverflow},
		{"huge rate", 1 << 40, math.MaxInt64, HalfEven, 0, ErrOverflow},
		{"MinInt64 rate", 1, math.MinInt64, HalfEven, 0, ErrOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MustNew(tt.amount, "EUR").Percent(tt.bp, tt.rounding)
			want := tt.want
			if tt.cause == nil {
				want = refPercent(tt.amount, tt.bp, tt.rounding)
				if tt.want != want {
					t.Fatalf("table says %d, reference says %d", tt.want, want)
				}
			}
			check(t, "Percent", got, err, want, tt.cause)
		})
	}
	if _, err := (Money{}).Percent(100, HalfEven); !errors.Is(err, ErrCurrency) {
		t.Fatalf("zero value: err = %v", err)
	}
	if _, err := MustNew(1, "EUR").Percent(100, Rounding(9)); err == nil {
		t.Fatal("unknown rounding accepted")
	}
}

// refPercent is Percent computed with exact rationals.
func refPercent(amount, bp int64, r Rounding) int64 {
	x := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(amount), big.NewInt(bp)), big.NewInt(10000))
	neg := x.Sign() < 0
	x.Abs(x)
	q, rem := new(big.Int).QuoRem(x.Num(), x.Denom(), new(big.Int))
	twice := new(big.Int).Mul(rem, big.NewInt(2))
	c := twice.Cmp(x.Denom())
	up := false
	switch r {
	case Up:
		up = rem.Sign() > 0
	case HalfUp:
		up = c >= 0 && rem.Sign() > 0
	case HalfEven:
		up = c > 0 || (c == 0 && q.Bit(0) == 1)
	}
	if up {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	return q.Int64()
}

func TestPercentMatchesExactArithmetic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		a := rng.Int64N(2_000_000_000) - 1_000_000_000
		if i%4 == 0 {
			a = rng.Int64() >> rng.IntN(40)
		}
		bp := rng.Int64N(40000) - 10000
		r := Rounding(rng.IntN(4))
		got, err := MustNew(a, "EUR").Percent(bp, r)
		if err != nil {
			if errors.Is(err, ErrOverflow) && !new(big.Int).Mul(big.NewInt(a), big.NewInt(bp)).IsInt64() {
				continue // the reference cannot hold it either
			}
			t.Fatalf("Percent(%d, %d, %v): %v", a, bp, r, err)
		}
		if want := refPercent(a, bp, r); got.Amount() != want {
			t.Fatalf("Percent(%d, %d, %v) = %d, want %d", a, bp, r, got.Amount(), want)
		}
	}
}

func TestAllocate(t *testing.T) {
	tests := []struct {
		name    string
		amount  int64
		weights []int64
		want    []int64
	}{
		{"even thirds", 100, []int64{1, 1, 1}, []int64{34, 33, 33}},
		{"negative thirds", -100, []int64{1, 1, 1}, []int64{-34, -33, -33}},
		{"largest remainder wins", 5, []int64{1, 2}, []int64{2, 3}},
		{"proportional", 1000, []int64{500, 300, 200}, []int64{500, 300, 200}},
		{"discount over lines", 1000, []int64{1999, 2999, 499}, []int64{364, 545, 91}},
		{"zero weight gets nothing", 100, []int64{0, 3, 0}, []int64{0, 100, 0}},
		{"all zero splits evenly", 10, []int64{0, 0, 0}, []int64{4, 3, 3}},
		{"zero amount", 0, []int64{1, 2}, []int64{0, 0}},
		{"one part", 77, []int64{5}, []int64{77}},
		{"more parts than units", 2, []int64{1, 1, 1, 1, 1}, []int64{1, 1, 0, 0, 0}},
		{"huge weights", math.MaxInt64, []int64{math.MaxInt64, math.MaxInt64},
			[]int64{math.MaxInt64/2 + 1, math.MaxInt64 / 2}},
		{"empty", 100, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MustNew(tt.amount, "USD").Allocate(tt.weights)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d parts, want %d", len(got), len(tt.want))
			}
			for i, g := range got {
				if g.Amount() != tt.want[i] || g.Currency() != "USD" {
					t.Fatalf("part %d = %v, want %d USD (all: %v)", i, g, tt.want[i], got)
				}
			}
		})
	}
	for _, w := range [][]int64{{1, -1}, {math.MaxInt64, math.MaxInt64, math.MaxInt64}} {
		t.Run("panics", func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("Allocate(%v) did not panic", w)
				}
			}()
			MustNew(1, "USD").Allocate(w)
		})
	}
}

func TestAllocateLosesNoUnit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		amount := rng.Int64N(2_000_000) - 1_000_000
		if rng.IntN(10) == 0 {
			amount = rng.Int64() - rng.Int64()/2
			if amount == math.MinInt64 {
				amount++
			}
		}
		weights := make([]int64, 1+rng.IntN(12))
		var total int64
		for i := range weights {
			if rng.IntN(5) > 0 {
				weights[i] = rng.Int64N(100_000)
			}
			total += weights[i]
		}
		parts := MustNew(amount, "EUR").Allocate(weights)
		sum := new(big.Int)
		for i, p := range parts {
			sum.Add(sum, big.NewInt(p.Amount()))
			if total > 0 && weights[i] == 0 && !p.IsZero() {
				t.Fatalf("zero weight got %v (amount %d, weights %v)", p, amount, weights)
			}
			if p.Amount() != 0 && (p.Amount() < 0) != (amount < 0) {
				t.Fatalf("part %v has the wrong sign for %d", p, amount)
			}
			// Each part is within one unit of its exact share.
			w, tw := weights[i], total
			if total == 0 {
				w, tw = 1, int64(len(weights))
			}
			exact := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(amount), big.NewInt(w)), big.NewInt(tw))
			diff := new(big.Rat).Sub(new(big.Rat).SetInt64(p.Amount()), exact)
			if diff.Abs(diff).Cmp(big.NewRat(1, 1)) >= 0 {
				t.Fatalf("part %d = %d is not within one unit of %s", i, p.Amount(), exact.FloatString(3))
			}
		}
		if !sum.IsInt64() || sum.Int64() != amount {
			t.Fatalf("parts of %d over %v sum to %s", amount, weights, sum)
		}
	}
}
