package money

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
)

// FuzzUnmarshalJSON: on any input the strict decoder never panics and
// either leaves the value as it was or yields exactly the amount and
// currency the input spells — an object of those two members, an integer
// literal in range, an active code — which survives a round trip.
// Seeds: testdata/fuzz/FuzzUnmarshalJSON.
func FuzzUnmarshalJSON(f *testing.F) {
	for _, s := range []string{
		`{"amount":1234,"currency":"EUR"}`, `{"currency":"JPY","amount":-5}`, `{ "amount" : 0 , "currency" : "KWD" }`,
		`{"amount":9223372036854775807,"currency":"USD"}`, `{"amount":-9223372036854775808,"currency":"USD"}`,
		`{"amount":1.0,"currency":"EUR"}`, `{"amount":1,"currency":"eur"}`, `{"amount":1,"amount":2,"currency":"EUR"}`,
		`{"Amount":1,"currency":"EUR"}`, `null`, `[1,"EUR"]`, `{"amount":1,"currency":"EUR"} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		before := MustNew(7, "USD")
		direct := before
		_ = direct.UnmarshalJSON(data) // called directly with any bytes: no panic
		m := before
		if err := json.Unmarshal(data, &m); err != nil {
			if m != before {
				t.Fatalf("a refused %q changed the value to %v", data, m)
			}
			return
		}
		var ref map[string]any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&ref); err != nil || len(ref) != 2 {
			t.Fatalf("accepted %q, which is not a two-member object: %v", data, err)
		}
		n, ok := ref["amount"].(json.Number)
		if !ok || strings.ContainsAny(string(n), ".eE") {
			t.Fatalf("accepted %q: amount %v is not an integer literal", data, ref["amount"])
		}
		if a, err := strconv.ParseInt(string(n), 10, 64); err != nil || a != m.Amount() || a == math.MinInt64 {
			t.Fatalf("accepted %q as amount %d", data, m.Amount())
		}
		if c, _ := ref["currency"].(string); c != m.Currency() {
			t.Fatalf("accepted %q as currency %q", data, m.Currency())
		}
		if _, err := New(m.Amount(), m.Currency()); err != nil {
			t.Fatalf("accepted %q, which New refuses: %v", data, err)
		}
		roundTrip(t, m)
	})
}

// FuzzNew: New accepts exactly the active codes and every amount but
// math.MinInt64, and what it makes marshals, unmarshals and prints.
// Seeds: testdata/fuzz/FuzzNew.
func FuzzNew(f *testing.F) {
	f.Add(int64(1234), "EUR")
	f.Add(int64(math.MinInt64), "USD")
	f.Add(int64(-1), "eur")
	f.Add(int64(0), "")
	f.Fuzz(func(t *testing.T, amount int64, currency string) {
		m, err := New(amount, currency)
		_, known := exponents[currency]
		if want := known && amount != math.MinInt64; (err == nil) != want {
			t.Fatalf("New(%d, %q) = %v, %v; want ok %v", amount, currency, m, err, want)
		}
		if err != nil {
			return
		}
		if s := m.String(); !strings.HasSuffix(s, " "+currency) {
			t.Fatalf("String() = %q", s)
		}
		if m.Neg().Neg() != m {
			t.Fatalf("Neg is not its own inverse for %v", m)
		}
		roundTrip(t, m)
	})
}

func roundTrip(t *testing.T, m Money) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("Marshal(%v): %v", m, err)
	}
	var back Money
	if err := json.Unmarshal(b, &back); err != nil || back != m {
		t.Fatalf("round trip of %v through %s = %v, %v", m, b, back, err)
	}
}
