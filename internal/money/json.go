package money

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
)

// MarshalJSON writes m as {"amount": <integer minor units>, "currency":
// "<ISO 4217>"} (API.md). Marshalling the zero value is an error: a
// document must never carry money without a currency.
func (m Money) MarshalJSON() ([]byte, error) {
	if m.currency == "" {
		return nil, fmt.Errorf("money: marshal: %w", ErrCurrency)
	}
	b := make([]byte, 0, 48)
	b = append(b, `{"amount":`...)
	b = strconv.AppendInt(b, m.amount, 10)
	b = append(b, `,"currency":"`...)
	b = append(b, m.currency...)
	b = append(b, `"}`...)
	return b, nil
}

// JSONSchema is the JSON Schema (2020-12) of Money's JSON form, for the
// OpenAPI document (web.Schemer).
func (Money) JSONSchema() map[string]any {
	return map[string]any{
		"type": "object",
		"properties": map[string]any{
			"amount":   map[string]any{"type": "integer", "format": "int64", "description": "minor units of the currency"},
			"currency": map[string]any{"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code"},
		},
		"required":             []any{"amount", "currency"},
		"additionalProperties": false,
	}
}

var (
	amountType   = reflect.TypeFor[int64]()
	currencyType = reflect.TypeFor[string]()
)

// UnmarshalJSON reads {"amount": <int>, "currency": "XXX"} strictly: both
// members are required and appear once; amount is a JSON integer literal in
// range (not 12.5, 1e3, "12" or null); currency is an active ISO 4217 code
// in upper case. JSON null is rejected too (use *Money for an optional
// amount: encoding/json sets a pointer to nil without calling this).
//
// Errors about a member are *json.UnmarshalTypeError naming the field, so
// that encoding/json prefixes the path to it ("variants.price.amount") and
// web.Decode answers 422; an unknown member is reported like
// DisallowUnknownFields does ("json: unknown field"), which web.Decode
// answers with 400.
func (m *Money) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return &json.UnmarshalTypeError{Value: describe(tok), Type: reflect.TypeFor[Money]()}
	}
	var (
		amount                 int64
		currency               string
		hasAmount, hasCurrency bool
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		val, err := dec.Token()
		if err != nil {
			return err
		}
		switch key {
		case "amount":
			if hasAmount {
				return &json.UnmarshalTypeError{Value: "a second amount", Type: amountType, Field: "amount"}
			}
			n, ok := val.(json.Number)
			if !ok || !isIntLiteral(string(n)) {
				return &json.UnmarshalTypeError{Value: describe(val), Type: amountType, Field: "amount"}
			}
			amount, err = strconv.ParseInt(string(n), 10, 64)
			if err != nil || !inRange(amount) {
				return &json.UnmarshalTypeError{Value: "number " + string(n), Type: amountType, Field: "amount"}
			}
			hasAmount = true
		case "currency":
			if hasCurrency {
				return &json.UnmarshalTypeError{Value: "a second currency", Type: currencyType, Field: "currency"}
			}
			s, ok := val.(string)
			if !ok {
				return &json.UnmarshalTypeError{Value: describe(val), Type: currencyType, Field: "currency"}
			}
			if _, known := exponents[s]; !known {
				return &json.UnmarshalTypeError{Value: "string " + strconv.Quote(s) + " (not an ISO 4217 code)",
					Type: currencyType, Field: "currency"}
			}
			currency, hasCurrency = s, true
		default:
			return fmt.Errorf("json: unknown field %q", key)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("money: data after the JSON object")
	}
	switch {
	case !hasAmount:
		return &json.UnmarshalTypeError{Value: "nothing", Type: amountType, Field: "amount"}
	case !hasCurrency:
		return &json.UnmarshalTypeError{Value: "nothing", Type: currencyType, Field: "currency"}
	}
	*m = Money{amount, currency}
	return nil
}

// isIntLiteral reports whether a JSON number literal is an integer: no
// fraction and no exponent.
func isIntLiteral(n string) bool {
	for i := 0; i < len(n); i++ {
		if c := n[i]; c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	return n != ""
}

// describe names a JSON token for an error message.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Number:
		return "number " + string(v)
	case string:
		return "string"
	case bool:
		return "bool"
	case json.Delim:
		if v == '[' {
			return "array"
		}
		return "object"
	}
	return "value"
}
