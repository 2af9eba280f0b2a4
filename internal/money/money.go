// Package money is mercato's amount of money: an int64 count of a
// currency's minor units (cents, yen, fils) and an ISO 4217 currency code.
// Money is never a float, inside or on the wire.
//
// A Money is an immutable value: methods return new values, and two Money
// values are equal (==) when amount and currency are. The zero value is not
// a valid Money (it has no currency); use Zero or New. Amounts stay within
// ±math.MaxInt64 (math.MinInt64 is excluded so that Neg cannot overflow):
// arithmetic that would leave that range returns ErrOverflow instead of
// wrapping, and arithmetic across currencies returns ErrMismatch.
//
// The errors are *errs.Error of kind Invalid wrapping ErrCurrency,
// ErrMismatch or ErrOverflow, so errors.Is works and the web layer answers
// 422. The package does no I/O.
package money

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"mercato/internal/platform/errs"
)

// The causes wrapped by this package's errors.
var (
	ErrCurrency = errors.New("money: not an active ISO 4217 currency code")
	ErrMismatch = errors.New("money: currencies differ")
	ErrOverflow = errors.New("money: amount out of range")
)

//go:embed iso4217.txt
var iso4217 string

// exponents maps each active ISO 4217 code to its number of minor-unit digits.
var exponents = parseTable(iso4217)

// parseTable reads "CODE DIGITS" lines; it panics on a malformed line, which
// a test catches, because the table is part of the binary.
func parseTable(s string) map[string]int {
	m := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		code, d, ok := strings.Cut(line, " ")
		n, err := strconv.Atoi(d)
		if !ok || err != nil || n < 0 || n > 4 || !isCode(code) {
			panic(fmt.Sprintf("money: bad currency table line %q", line))
		}
		if _, dup := m[code]; dup {
			panic(fmt.Sprintf("money: currency %s listed twice", code))
		}
		m[code] = n
	}
	return m
}

// isCode reports whether s has the shape of a code: three letters A–Z.
func isCode(s string) bool {
	return len(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z'
}

// Exponent returns the number of minor-unit digits of currency (2 for EUR,
// 0 for JPY, 3 for KWD) and whether currency is an active ISO 4217 code.
// Codes are upper case; "eur" is not a code.
func Exponent(currency string) (int, bool) {
	e, ok := exponents[currency]
	return e, ok
}

// Money is an amount in minor units of a currency.
type Money struct {
	amount   int64
	currency string
}

// New returns amount minor units of currency. The error (kind Invalid,
// field "currency" or "amount") wraps ErrCurrency when currency is not an
// active ISO 4217 code and ErrOverflow for math.MinInt64.
func New(amount int64, currency string) (Money, error) {
	const op = "money.New"
	if _, ok := exponents[currency]; !ok {
		return Money{}, errs.E(op, errs.Invalid, "unknown currency",
			[]errs.FieldError{{Field: "currency", Message: "must be an ISO 4217 currency code"}}, ErrCurrency)
	}
	if amount == math.MinInt64 {
		return Money{}, errs.E(op, errs.Invalid, "amount out of range",
			[]errs.FieldError{{Field: "amount", Message: "is out of range"}}, ErrOverflow)
	}
	return Money{amount, currency}, nil
}

// MustNew is New for constants and tests; it panics on an error.
func MustNew(amount int64, currency string) Money {
	m, err := New(amount, currency)
	if err != nil {
		panic(err)
	}
	return m
}

// Zero returns no money in currency, the start of a sum. It panics when
// currency is not an active code: pass a code already validated (the
// Currency of a Money), or use New for input.
func Zero(currency string) Money { return MustNew(0, currency) }

// Amount is m in minor units.
func (m Money) Amount() int64 { return m.amount }

// Currency is m's ISO 4217 code ("" for the zero value).
func (m Money) Currency() string { return m.currency }

// IsZero reports whether the amount is zero.
func (m Money) IsZero() bool { return m.amount == 0 }

// IsNegative reports whether the amount is below zero.
func (m Money) IsNegative() bool { return m.amount < 0 }

// Neg returns -m. It cannot overflow (amounts exclude math.MinInt64).
func (m Money) Neg() Money { return Money{-m.amount, m.currency} }

// same checks that m and o are valid and in one currency.
func (m Money) same(op string, o Money) error {
	if m.currency == "" || o.currency == "" {
		return errs.E(op, errs.Invalid, "money without a currency", ErrCurrency)
	}
	if m.currency != o.currency {
		return errs.E(op, errs.Invalid,
			fmt.Sprintf("amounts in different currencies (%s, %s)", m.currency, o.currency), ErrMismatch)
	}
	return nil
}

func overflow(op string) error {
	return errs.E(op, errs.Invalid, "amount out of range", ErrOverflow)
}

// inRange reports whether v is an amount a Money may hold.
func inRange(v int64) bool { return v != math.MinInt64 }

// Add returns m+o. The currencies must match; the sum must stay in range.
func (m Money) Add(o Money) (Money, error) {
	const op = "money.Add"
	if err := m.same(op, o); err != nil {
		return Money{}, err
	}
	s := m.amount + o.amount
	// Overflow iff both operands have the same sign and the sum's differs.
	if (m.amount^s)&(o.amount^s) < 0 || !inRange(s) {
		return Money{}, overflow(op)
	}
	return Money{s, m.currency}, nil
}

// Sub returns m-o. The currencies must match; the difference must stay in
// range.
func (m Money) Sub(o Money) (Money, error) {
	const op = "money.Sub"
	if err := m.same(op, o); err != nil {
		return Money{}, err
	}
	d := m.amount - o.amount
	// Overflow iff the operands have different signs and d's sign is o's.
	if (m.amount^o.amount)&(m.amount^d) < 0 || !inRange(d) {
		return Money{}, overflow(op)
	}
	return Money{d, m.currency}, nil
}

// Mul returns m×qty (a line total). The product must stay in range.
func (m Money) Mul(qty int64) (Money, error) {
	const op = "money.Mul"
	if m.currency == "" {
		return Money{}, errs.E(op, errs.Invalid, "money without a currency", ErrCurrency)
	}
	if m.amount == 0 || qty == 0 {
		return Money{0, m.currency}, nil
	}
	p := m.amount * qty
	if qty == math.MinInt64 || p/qty != m.amount || !inRange(p) {
		return Money{}, overflow(op)
	}
	return Money{p, m.currency}, nil
}

// Cmp compares m and o: -1 when m < o, 0 when equal, +1 when m > o. The
// currencies must match.
func (m Money) Cmp(o Money) (int, error) {
	if err := m.same("money.Cmp", o); err != nil {
		return 0, err
	}
	switch {
	case m.amount < o.amount:
		return -1, nil
	case m.amount > o.amount:
		return 1, nil
	}
	return 0, nil
}

// String formats m with its currency's exponent: "12.34 EUR", "-0.05 USD",
// "1234 JPY", "1.234 KWD". It is for logs and people, not for parsing.
func (m Money) String() string {
	if m.currency == "" {
		return strconv.FormatInt(m.amount, 10)
	}
	e := exponents[m.currency]
	neg := m.amount < 0
	a := m.amount
	if neg {
		a = -a
	}
	digits := strconv.FormatInt(a, 10)
	if e > 0 {
		if len(digits) <= e {
			digits = strings.Repeat("0", e-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-e] + "." + digits[len(digits)-e:]
	}
	if neg {
		digits = "-" + digits
	}
	return digits + " " + m.currency
}
