package money

import (
	"errors"
	"math"
	"strings"
	"testing"

	"mercato/internal/platform/errs"
)

func TestCurrencyTable(t *testing.T) {
	if n := len(exponents); n < 150 {
		t.Fatalf("table holds %d currencies, want the whole ISO 4217 list (> 150)", n)
	}
	tests := []struct {
		code string
		exp  int
		ok   bool
	}{
		{"EUR", 2, true}, {"USD", 2, true}, {"JPY", 0, true}, {"KRW", 0, true},
		{"KWD", 3, true}, {"BHD", 3, true}, {"TND", 3, true}, {"CLF", 4, true},
		{"ISK", 0, true}, {"XCG", 2, true}, {"XOF", 0, true},
		{"eur", 0, false}, {"Eur", 0, false}, {"EU", 0, false}, {"EURO", 0, false},
		{"XAU", 0, false}, {"XXX", 0, false}, {"HRK", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			exp, ok := Exponent(tt.code)
			if exp != tt.exp || ok != tt.ok {
				t.Fatalf("Exponent(%q) = %d, %v; want %d, %v", tt.code, exp, ok, tt.exp, tt.ok)
			}
		})
	}
	bad := []string{"EUR", "EUR x", "eur 2", "EUR 5", "EUR -1", "EUR 2\nEUR 2"}
	for _, line := range bad {
		t.Run("reject "+line, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("parseTable(%q) did not panic", line)
				}
			}()
			parseTable(line)
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		amount   int64
		currency string
		cause    error // nil: valid
	}{
		{"euros", 1234, "EUR", nil},
		{"negative", -5, "USD", nil},
		{"max", math.MaxInt64, "JPY", nil},
		{"min+1", math.MinInt64 + 1, "KWD", nil},
		{"min int64", math.MinInt64, "EUR", ErrOverflow},
		{"lower case", 1, "eur", ErrCurrency},
		{"two letters", 1, "EU", ErrCurrency},
		{"empty", 1, "", ErrCurrency},
		{"gold has no minor unit", 1, "XAU", ErrCurrency},
		{"withdrawn", 1, "ANG", ErrCurrency},
		{"unicode", 1, "EŪR", ErrCurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.amount, tt.currency)
			if tt.cause == nil {
				if err != nil {
					t.Fatal(err)
				}
				if m.Amount() != tt.amount || m.Currency() != tt.currency {
					t.Fatalf("got %d %s", m.Amount(), m.Currency())
				}
				return
			}
			if !errors.Is(err, tt.cause) || !errs.Is(err, errs.Invalid) {
				t.Fatalf("err = %v, want Invalid wrapping %v", err, tt.cause)
			}
			if m != (Money{}) {
				t.Fatalf("failed New returned %v", m)
			}
		})
	}
	t.Run("MustNew panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		MustNew(1, "eur")
	})
	t.Run("Zero", func(t *testing.T) {
		z := Zero("JPY")
		if !z.IsZero() || z.Currency() != "JPY" || z.IsNegative() {
			t.Fatalf("Zero = %v", z)
		}
	})
}

func TestAddSub(t *testing.T) {
	eur := func(v int64) Money { return MustNew(v, "EUR") }
	tests := []struct {
		name      string
		a, b      Money
		sum, diff int64
		sumErr    error
		diffErr   error
	}{
		{"small", eur(150), eur(250), 400, -100, nil, nil},
		{"negative", eur(-150), eur(-250), -400, 100, nil, nil},
		{"max + 0", eur(math.MaxInt64), eur(0), math.MaxInt64, math.MaxInt64, nil, nil},
		{"max + 1", eur(math.MaxInt64), eur(1), 0, math.MaxInt64 - 1, ErrOverflow, nil},
		{"max - -1", eur(math.MaxInt64), eur(-1), math.MaxInt64 - 1, 0, nil, ErrOverflow},
		{"-max + -1 reaches MinInt64", eur(-math.MaxInt64), eur(-1), 0, -math.MaxInt64 + 1, ErrOverflow, nil},
		{"-max - 1 reaches MinInt64", eur(-math.MaxInt64), eur(1), -math.MaxInt64 + 1, 0, nil, ErrOverflow},
		{"-max + -max", eur(-math.MaxInt64), eur(-math.MaxInt64), 0, 0, ErrOverflow, nil},
		{"max - -max", eur(math.MaxInt64), eur(-math.MaxInt64), 0, 0, nil, ErrOverflow},
		{"currency mismatch", eur(1), MustNew(1, "USD"), 0, 0, ErrMismatch, ErrMismatch},
		{"zero value", eur(1), Money{}, 0, 0, ErrCurrency, ErrCurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.a.Add(tt.b)
			check(t, "Add", s, err, tt.sum, tt.sumErr)
			d, err := tt.a.Sub(tt.b)
			check(t, "Sub", d, err, tt.diff, tt.diffErr)
		})
	}
}

// check asserts a result: want amount in EUR when cause is nil, else an
// Invalid error wrapping cause.
func check(t *testing.T, what string, got Money, err error, want int64, cause error) {
	t.Helper()
	if cause != nil {
		if !errors.Is(err, cause) || !errs.Is(err, errs.Invalid) {
			t.Fatalf("%s: err = %v, want Invalid wrapping %v", what, err, cause)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got.Amount() != want || got.Currency() != "EUR" {
		t.Fatalf("%s = %v, want %d EUR", what, got, want)
	}
}

func TestMul(t *testing.T) {
	tests := []struct {
		name   string
		amount int64
		qty    int64
		want   int64
		cause  error
	}{
		{"line total", 1999, 3, 5997, nil},
		{"zero qty", 1999, 0, 0, nil},
		{"zero amount, huge qty", 0, math.MaxInt64, 0, nil},
		{"negative qty", 1999, -2, -3998, nil},
		{"max × 1", math.MaxInt64, 1, math.MaxInt64, nil},
		{"max × -1", math.MaxInt64, -1, -math.MaxInt64, nil},
		{"max × 2", math.MaxInt64, 2, 0, ErrOverflow},
		{"half max × 2", math.MaxInt64/2 + 1, 2, 0, ErrOverflow},
		{"-1 × MinInt64", -1, math.MinInt64, 0, ErrOverflow},
		{"1 × MinInt64", 1, math.MinInt64, 0, ErrOverflow},
		{"large × large", 1 << 40, 1 << 30, 0, ErrOverflow},
		{"reaches MinInt64", -(1 << 62), 2, 0, ErrOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MustNew(tt.amount, "EUR").Mul(tt.qty)
			check(t, "Mul", got, err, tt.want, tt.cause)
		})
	}
	if _, err := (Money{}).Mul(2); !errors.Is(err, ErrCurrency) {
		t.Fatalf("zero value Mul: err = %v, want ErrCurrency", err)
	}
}

func TestNegCmpPredicates(t *testing.T) {
	tests := []struct {
		name        string
		a, b        int64
		cmp         int
		zero, isNeg bool
	}{
		{"less", 1, 2, -1, false, false},
		{"equal", 7, 7, 0, false, false},
		{"greater", 3, -3, 1, false, false},
		{"zero", 0, 0, 0, true, false},
		{"negative", -1, 0, -1, false, true},
		{"extremes", -math.MaxInt64, math.MaxInt64, -1, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := MustNew(tt.a, "GBP"), MustNew(tt.b, "GBP")
			c, err := a.Cmp(b)
			if err != nil || c != tt.cmp {
				t.Fatalf("Cmp = %d, %v; want %d", c, err, tt.cmp)
			}
			if a.IsZero() != tt.zero || a.IsNegative() != tt.isNeg {
				t.Fatalf("IsZero/IsNegative = %v/%v", a.IsZero(), a.IsNegative())
			}
			if n := a.Neg(); n.Amount() != -tt.a || n.Currency() != "GBP" || n.Neg() != a {
				t.Fatalf("Neg = %v", n)
			}
		})
	}
	if _, err := MustNew(1, "GBP").Cmp(MustNew(1, "EUR")); !errors.Is(err, ErrMismatch) {
		t.Fatalf("Cmp across currencies: err = %v", err)
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		amount   int64
		currency string
		want     string
	}{
		{1234, "EUR", "12.34 EUR"},
		{-1234, "EUR", "-12.34 EUR"},
		{5, "USD", "0.05 USD"},
		{-5, "USD", "-0.05 USD"},
		{0, "EUR", "0.00 EUR"},
		{100, "EUR", "1.00 EUR"},
		{1234, "JPY", "1234 JPY"},
		{-1234, "JPY", "-1234 JPY"},
		{1234, "KWD", "1.234 KWD"},
		{7, "KWD", "0.007 KWD"},
		{12345, "CLF", "1.2345 CLF"},
		{math.MaxInt64, "EUR", "92233720368547758.07 EUR"},
		{-math.MaxInt64, "EUR", "-92233720368547758.07 EUR"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := MustNew(tt.amount, tt.currency).String(); got != tt.want {
				t.Fatalf("String = %q, want %q", got, tt.want)
			}
		})
	}
	if got := (Money{}).String(); strings.Contains(got, "EUR") || got == "" {
		t.Fatalf("zero value String = %q", got)
	}
}
