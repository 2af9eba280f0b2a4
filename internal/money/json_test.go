package money

import (
	"encoding/json"
	"errors"
	"math"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/web"
)

func TestJSONRoundTrip(t *testing.T) {
	tests := []struct {
		m    Money
		want string
	}{
		{MustNew(1234, "EUR"), `{"amount":1234,"currency":"EUR"}`},
		{MustNew(-5, "USD"), `{"amount":-5,"currency":"USD"}`},
		{MustNew(0, "JPY"), `{"amount":0,"currency":"JPY"}`},
		{MustNew(math.MaxInt64, "KWD"), `{"amount":9223372036854775807,"currency":"KWD"}`},
		{MustNew(-math.MaxInt64, "CLF"), `{"amount":-9223372036854775807,"currency":"CLF"}`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			b, err := json.Marshal(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Fatalf("Marshal = %s, want %s", b, tt.want)
			}
			var back Money
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back != tt.m {
				t.Fatalf("round trip gave %v, want %v", back, tt.m)
			}
		})
	}
	t.Run("inside a document, members in any order, with spaces", func(t *testing.T) {
		var doc struct {
			Price Money  `json:"price"`
			Extra *Money `json:"extra"`
		}
		in := `{"price": { "currency" : "GBP", "amount" : 499 }, "extra": null}`
		if err := json.Unmarshal([]byte(in), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Price != MustNew(499, "GBP") || doc.Extra != nil {
			t.Fatalf("got %v, %v", doc.Price, doc.Extra)
		}
	})
	t.Run("zero value does not marshal", func(t *testing.T) {
		_, err := json.Marshal(struct{ P Money }{})
		if !errors.Is(err, ErrCurrency) {
			t.Fatalf("err = %v, want ErrCurrency", err)
		}
	})
}

func TestJSONRejects(t *testing.T) {
	tests := []struct {
		name, in string
		field    string // the field a *json.UnmarshalTypeError names; "" for other errors
	}{
		{"fractional amount", `{"amount":12.5,"currency":"EUR"}`, "amount"},
		{"integral float", `{"amount":12.0,"currency":"EUR"}`, "amount"},
		{"exponent", `{"amount":1e3,"currency":"EUR"}`, "amount"},
		{"string amount", `{"amount":"12","currency":"EUR"}`, "amount"},
		{"null amount", `{"amount":null,"currency":"EUR"}`, "amount"},
		{"object amount", `{"amount":{},"currency":"EUR"}`, "amount"},
		{"amount beyond int64", `{"amount":9223372036854775808,"currency":"EUR"}`, "amount"},
		{"amount MinInt64", `{"amount":-9223372036854775808,"currency":"EUR"}`, "amount"},
		{"missing amount", `{"currency":"EUR"}`, "amount"},
		{"duplicate amount", `{"amount":1,"amount":2,"currency":"EUR"}`, "amount"},
		{"missing currency", `{"amount":12}`, "currency"},
		{"lower-case currency", `{"amount":12,"currency":"eur"}`, "currency"},
		{"unknown currency", `{"amount":12,"currency":"ABC"}`, "currency"},
		{"numeric currency", `{"amount":12,"currency":978}`, "currency"},
		{"null currency", `{"amount":12,"currency":null}`, "currency"},
		{"duplicate currency", `{"amount":12,"currency":"EUR","currency":"USD"}`, "currency"},
		{"null", `null`, ""},
		{"array", `[12,"EUR"]`, ""},
		{"bare number", `12`, ""},
		{"string", `"12.00 EUR"`, ""},
		{"unknown member", `{"amount":12,"currency":"EUR","scale":2}`, ""},
		{"capitalised member", `{"Amount":12,"currency":"EUR"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := MustNew(7, "USD")
			err := json.Unmarshal([]byte(tt.in), &m)
			if err == nil {
				t.Fatalf("Unmarshal(%s) succeeded: %v", tt.in, m)
			}
			if m != MustNew(7, "USD") {
				t.Fatalf("a failed Unmarshal changed the value to %v", m)
			}
			var te *json.UnmarshalTypeError
			if tt.field != "" && (!errors.As(err, &te) || te.Field != tt.field) {
				t.Fatalf("err = %v, want an UnmarshalTypeError for %q", err, tt.field)
			}
		})
	}
}

// TestJSONThroughWebDecode checks what a client sees: a bad amount or
// currency is 422 naming the field's path, an unknown member 400.
func TestJSONThroughWebDecode(t *testing.T) {
	tests := []struct {
		name, body string
		kind       errs.Kind
		field      string
	}{
		{"float amount", `{"variant":{"price":{"amount":12.5,"currency":"EUR"}}}`, errs.Invalid, "variant.price.amount"},
		{"string amount", `{"variant":{"price":{"amount":"12","currency":"EUR"}}}`, errs.Invalid, "variant.price.amount"},
		{"lower-case currency", `{"variant":{"price":{"amount":12,"currency":"eur"}}}`, errs.Invalid, "variant.price.currency"},
		{"missing currency", `{"variant":{"price":{"amount":12}}}`, errs.Invalid, "variant.price.currency"},
		{"unknown member", `{"variant":{"price":{"amount":12,"currency":"EUR","x":1}}}`, errs.Malformed, "variant.price.x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body struct {
				Variant struct {
					Price Money `json:"price"`
				} `json:"variant"`
			}
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			err := web.Decode(r, &body)
			var e *errs.Error
			if !errors.As(err, &e) || e.Kind != tt.kind {
				t.Fatalf("err = %v, want kind %v", err, tt.kind)
			}
			if len(e.Fields) != 1 || e.Fields[0].Field != tt.field {
				t.Fatalf("fields = %+v, want %q", e.Fields, tt.field)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		var body struct {
			Price Money `json:"price"`
		}
		r := httptest.NewRequest("POST", "/", strings.NewReader(`{"price":{"amount":1250,"currency":"JPY"}}`))
		if err := web.Decode(r, &body); err != nil || body.Price != MustNew(1250, "JPY") {
			t.Fatalf("Decode = %v, %v", body.Price, err)
		}
	})
}

// TestJSONSchemaDescribesMarshal checks that the schema the OpenAPI document
// shows matches what MarshalJSON writes, using the project's validator.
func TestJSONSchemaDescribesMarshal(t *testing.T) {
	schema := MustNew(1, "EUR").JSONSchema()
	c := jsonschema.NewCompiler()
	if err := c.AddResource("money.json", schema); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("money.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		doc string
		ok  bool
	}{
		{string(must(json.Marshal(MustNew(-1999, "KWD")))), true},
		{`{"amount":12.5,"currency":"EUR"}`, false},
		{`{"amount":12,"currency":"eur"}`, false},
		{`{"amount":12}`, false},
		{`{"amount":12,"currency":"EUR","x":1}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.doc, func(t *testing.T) {
			v, err := jsonschema.UnmarshalJSON(strings.NewReader(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(v); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
