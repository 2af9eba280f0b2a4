package web_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/web"
)

// amount has its own strict UnmarshalJSON that names the member it refuses,
// as money.Money does.
type amount struct{ Minor int64 }

func (a *amount) UnmarshalJSON(b []byte) error {
	var in struct {
		Minor *int64 `json:"minor"`
	}
	if err := json.Unmarshal(b, &in); err != nil || in.Minor == nil {
		return &json.UnmarshalTypeError{Value: "nothing", Type: reflect.TypeFor[int64](), Field: "minor"}
	}
	a.Minor = *in.Minor
	return nil
}

type address struct {
	Line1 string   `json:"line1" maxlen:"10"`
	Notes []string `json:"notes,omitempty"`
}

type signup struct {
	Email    string            `json:"email" maxlen:"254"`
	Password string            `json:"password" maxlen:"128"`
	Name     string            `json:"name"` // DefaultMaxLen
	Tags     []string          `json:"tags,omitempty" maxlen:"8"`
	Attrs    map[string]string `json:"attrs,omitempty" maxlen:"16"`
	Address  *address          `json:"address,omitempty"`
	Qty      int8              `json:"qty,omitempty"`
	Ratio    float32           `json:"ratio,omitempty"`
	Count    int64             `json:"count,omitempty,string"`
	Price    *amount           `json:"price,omitempty"`
	Extra    any               `json:"extra,omitempty"`
	Raw      json.RawMessage   `json:"raw,omitempty"`
	When     time.Time         `json:"when,omitzero"`
	Blob     []byte            `json:"blob,omitempty"`
}

func decode(body string) (signup, error) {
	var in signup
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	err := web.Decode(r, &in)
	return in, err
}

func TestDecodeStrict(t *testing.T) {
	long := func(n int, c string) string { return strings.Repeat(c, n) }
	nested := strings.Repeat(`[`, 100) + strings.Repeat(`]`, 100)
	tests := []struct {
		name, body string
		kind       errs.Kind // 0 (Internal) means success
		fields     []string  // the fields the error names, in order
		detail     string    // a fragment of the error's message
	}{
		{name: "exact names", body: `{"email":"a@b.c","password":"pw","name":"n"}`},
		{name: "case-folded name", body: `{"email":"a@b.c","PASSWORD":"x"}`, kind: errs.Malformed,
			fields: []string{"PASSWORD"}, detail: "unknown field"},
		{name: "duplicate key", body: `{"name":"a","name":"b"}`, kind: errs.Malformed, fields: []string{"name"}},
		{name: "duplicate nested key", body: `{"address":{"line1":"a","line1":"b"}}`, kind: errs.Malformed,
			fields: []string{"address.line1"}},
		{name: "duplicate key in a map", body: `{"attrs":{"a":"1","a":"2"}}`, kind: errs.Malformed,
			fields: []string{"attrs.a"}},
		{name: "duplicate key in an any", body: `{"extra":{"k":1,"k":2}}`, kind: errs.Malformed,
			fields: []string{"extra.k"}},
		{name: "duplicate key in a raw message", body: `{"raw":[{"k":1,"k":2}]}`, kind: errs.Malformed,
			fields: []string{"raw.0.k"}},
		{name: "invalid UTF-8", body: "{\"name\":\"a\xffb\"}", kind: errs.Malformed, fields: []string{"name"}},
		{name: "invalid UTF-8 in a key", body: "{\"attrs\":{\"k\xc3\":\"v\"}}", kind: errs.Malformed,
			fields: []string{"attrs.k\uFFFD"}},
		{name: "invalid UTF-8 in a skipped value", body: "{\"qty\":[\"\xff\"]}", kind: errs.Malformed,
			fields: []string{"qty"}},
		{name: "escaped lone surrogate", body: `{"name":"x\ud800y"}`, kind: errs.Malformed, fields: []string{"name"}},
		{name: "surrogate pair", body: `{"name":"\ud83d\ude00"}`},
		{name: "replacement character spelled", body: `{"name":"\ufffd \uFFFD` + "\uFFFD" + `"}`},
		{name: "escaped backslash before ufffd", body: `{"name":"\\ufffd"}`},
		{name: "NUL", body: `{"name":"a\u0000"}`, kind: errs.Invalid, fields: []string{"name"}, detail: "invalid fields"},
		{name: "NUL in a list", body: `{"tags":["ok","\u0000"]}`, kind: errs.Invalid, fields: []string{"tags.1"}},
		{name: "NUL in a map key", body: `{"attrs":{"a\u0000":"v"}}`, kind: errs.Invalid, fields: []string{"attrs.a\uFFFD"}},
		{name: "NUL in an any", body: `{"extra":{"x":["\u0000"]}}`, kind: errs.Invalid, fields: []string{"extra.x.0"}},
		{name: "NUL in a raw message", body: `{"raw":"\u0000"}`, kind: errs.Invalid, fields: []string{"raw"}},
		{name: "tagged maximum", body: `{"email":"` + long(254, "a") + `"}`},
		{name: "over the tagged maximum", body: `{"email":"` + long(255, "a") + `"}`, kind: errs.Invalid,
			fields: []string{"email"}},
		{name: "maximum counts characters", body: `{"email":"` + long(254, "é") + `"}`},
		{name: "default maximum", body: `{"name":"` + long(web.DefaultMaxLen, "a") + `"}`},
		{name: "over the default maximum", body: `{"name":"` + long(web.DefaultMaxLen+1, "a") + `"}`,
			kind: errs.Invalid, fields: []string{"name"}},
		{name: "tag bounds list elements", body: `{"tags":["12345678","123456789"]}`, kind: errs.Invalid,
			fields: []string{"tags.1"}},
		{name: "tag bounds map values", body: `{"attrs":{"k":"` + long(17, "v") + `"}}`, kind: errs.Invalid,
			fields: []string{"attrs.k"}},
		{name: "map keys have the default maximum", body: `{"attrs":{"` + long(web.DefaultMaxLen+1, "k") + `":"v"}}`,
			kind: errs.Invalid, fields: []string{"attrs." + long(64, "k") + "…"}},
		{name: "nested struct's own tag", body: `{"address":{"line1":"12345678901"}}`, kind: errs.Invalid,
			fields: []string{"address.line1"}},
		{name: "nested untagged list", body: `{"address":{"notes":["` + long(web.DefaultMaxLen+1, "n") + `"]}}`,
			kind: errs.Invalid, fields: []string{"address.notes.0"}},
		{name: "strings in an any", body: `{"extra":["` + long(web.DefaultMaxLen+1, "x") + `"]}`, kind: errs.Invalid,
			fields: []string{"extra.0"}},
		{name: "every invalid field at once", body: `{"email":"` + long(255, "a") + `","name":"\u0000","qty":"x"}`,
			kind: errs.Invalid, fields: []string{"email", "name", "qty"}},
		{name: "a 400 wins over a 422", body: `{"name":"\u0000","name":"b"}`, kind: errs.Malformed, fields: []string{"name"}},
		{name: "null body", body: `null`, kind: errs.Malformed, detail: "must be a JSON object"},
		{name: "array body", body: `[]`, kind: errs.Malformed, detail: "must be a JSON object"},
		{name: "string body", body: `"x"`, kind: errs.Malformed, detail: "must be a JSON object"},
		{name: "wrong type", body: `{"name":1}`, kind: errs.Invalid, fields: []string{"name"}, detail: "invalid fields"},
		{name: "object for a string", body: `{"name":{"a":[1]},"email":"e"}`, kind: errs.Invalid, fields: []string{"name"}},
		{name: "out of range", body: `{"qty":300}`, kind: errs.Invalid, fields: []string{"qty"}},
		{name: "fraction for an integer", body: `{"qty":1.5}`, kind: errs.Invalid, fields: []string{"qty"}},
		{name: "float out of range", body: `{"ratio":1e39}`, kind: errs.Invalid, fields: []string{"ratio"}},
		{name: "quoted number", body: `{"count":"12"}`},
		{name: "quoted number that is not", body: `{"count":"+12"}`, kind: errs.Invalid, fields: []string{"count"}},
		{name: "custom unmarshaler", body: `{"price":{"minor":5}}`},
		{name: "custom unmarshaler refuses", body: `{"price":{}}`, kind: errs.Invalid, fields: []string{"price.minor"}},
		{name: "null for a pointer", body: `{"price":null,"address":null}`},
		{name: "bad time", body: `{"when":"yesterday"}`, kind: errs.Invalid, fields: []string{"when"}},
		{name: "bad base64", body: `{"blob":"***"}`, kind: errs.Invalid, fields: []string{"blob"}},
		{name: "unknown nested field", body: `{"address":{"line2":"x"}}`, kind: errs.Malformed, fields: []string{"address.line2"}},
		{name: "too deep", body: `{"extra":` + nested + `}`, kind: errs.Malformed, detail: "nests deeper"},
		{name: "trailing data", body: `{} {}`, kind: errs.Malformed, detail: "after the JSON value"},
		{name: "syntax error", body: `{"name":}`, kind: errs.Malformed, detail: "malformed JSON"},
		{name: "ends early", body: `{"name":"a"`, kind: errs.Malformed, detail: "ends early"},
		{name: "empty", body: ` `, kind: errs.Malformed, detail: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(tt.body)
			if tt.kind == errs.Internal {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			var e *errs.Error
			if !errors.As(err, &e) || e.Kind != tt.kind {
				t.Fatalf("err = %v, want kind %v", err, tt.kind)
			}
			var got []string
			for _, f := range e.Fields {
				got = append(got, f.Field)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.fields) {
				t.Errorf("fields %q, want %q (%v)", got, tt.fields, err)
			}
			if !strings.Contains(e.Msg, tt.detail) {
				t.Errorf("message %q does not hold %q", e.Msg, tt.detail)
			}
		})
	}
}

// TestDecodeValues: a body that passes is decoded as encoding/json would,
// and a body that fails leaves the target untouched.
func TestDecodeValues(t *testing.T) {
	in, err := decode(`{"email":"a@b.c","password":"p","name":"\ud83d\ude00","tags":["x"],"attrs":{"k":"v"},
		"address":{"line1":"l"},"qty":-3,"count":"12","price":{"minor":7},"extra":{"a":[1,"b"]},
		"raw":{"z":true},"when":"2026-01-02T03:04:05Z","blob":"AQI="}`)
	if err != nil {
		t.Fatal(err)
	}
	want := signup{Email: "a@b.c", Password: "p", Name: "😀", Tags: []string{"x"}, Attrs: map[string]string{"k": "v"},
		Address: &address{Line1: "l"}, Qty: -3, Count: 12, Price: &amount{7},
		Extra: map[string]any{"a": []any{1.0, "b"}}, Raw: json.RawMessage(`{"z":true}`),
		When: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Blob: []byte{1, 2}}
	if !reflect.DeepEqual(in, want) {
		t.Errorf("decoded %+v\nwant    %+v", in, want)
	}
	t.Run("a refused body leaves the target as it was", func(t *testing.T) {
		v := signup{Name: "kept"}
		r := httptest.NewRequest("POST", "/", strings.NewReader(`{"name":"new","qty":900}`))
		if err := web.Decode(r, &v); err == nil || v.Name != "kept" {
			t.Errorf("Decode = %v, name %q", err, v.Name)
		}
	})
	t.Run("a target that is not a pointer is the caller's bug", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(`{}`))
		if err := web.Decode(r, signup{}); errs.KindOf(err) != errs.Internal {
			t.Errorf("Decode(non-pointer) = %v, want an internal error", err)
		}
	})
}

// TestDecodeEmbedded: promoted fields follow encoding/json's rules, also for
// the strict name check.
func TestDecodeEmbedded(t *testing.T) {
	type inner struct {
		A string `json:"a" maxlen:"2"`
		B string `json:"b"`
	}
	type other struct {
		B string `json:"b"`
	}
	type outer struct {
		inner
		*other
		C string `json:"c"`
	}
	tests := []struct {
		body string
		kind errs.Kind
	}{
		{`{"a":"xy","c":"z"}`, errs.Internal},
		{`{"a":"xyz"}`, errs.Invalid},
		{`{"b":"ambiguous at one depth: hidden"}`, errs.Malformed},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			var v outer
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			err := web.Decode(r, &v)
			if (tt.kind == errs.Internal) != (err == nil) || err != nil && errs.KindOf(err) != tt.kind {
				t.Errorf("Decode(%s) = %v, want kind %v", tt.body, err, tt.kind)
			}
		})
	}
}

func TestHandlePanicsOnBadMaxLenTag(t *testing.T) {
	type bad struct {
		S string `json:"s" maxlen:"many"`
	}
	type wrapper struct {
		Inner []bad `json:"inner"`
	}
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "maxlen") {
			t.Errorf("Handle did not panic on the tag: %v", p)
		}
	}()
	rt := web.NewRouter(web.Config{})
	rt.Handle(web.Route{Method: "POST", Path: "/x", Request: wrapper{}, Handler: func(w http.ResponseWriter, r *http.Request) {}})
}
