package web_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/web"
)

// FuzzDecode checks the strict decoder against encoding/json on any body:
// it never panics and never fails with an internal error; what it accepts
// is valid UTF-8 JSON that encoding/json decodes to the same value, holds
// no NUL and no string over its maximum, and survives a round trip; what
// encoding/json refuses, it refuses too. Seeds: testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"email":"a@b.c","password":"pw","name":"n"}`,
		`{"tags":["a"],"attrs":{"k":"v"},"address":{"line1":"x","notes":["n"]},"qty":-1,"count":"5"}`,
		`{"price":{"minor":1},"extra":[1,"x",{"y":null}],"raw":{"a":[true]},"when":"2026-01-02T03:04:05Z","blob":"AQI="}`,
		`{"name":"\ud83d\ude00 \ufffd"}`, `{"name":"a","name":"b"}`, `{"NAME":"a"}`, `null`, `[]`,
		"{\"name\":\"\xff\"}", `{"name":"\u0000"}`, `{"qty":1e2}`, `{"ratio":-0.5e-3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got signup
		err := web.Decode(httptest.NewRequest("POST", "/", bytes.NewReader(body)), &got)
		var std signup
		stdDec := json.NewDecoder(bytes.NewReader(body))
		stdDec.DisallowUnknownFields()
		stdErr := stdDec.Decode(&std)
		if stdErr == nil && stdDec.More() {
			stdErr = errors.New("trailing data")
		}
		if err != nil {
			if k := errs.KindOf(err); k != errs.Malformed && k != errs.Invalid {
				t.Fatalf("Decode(%q) failed with kind %v: %v", body, k, err)
			}
			if !reflect.DeepEqual(got, signup{}) {
				t.Fatalf("a refused body changed the target: %+v", got)
			}
			return
		}
		if stdErr != nil {
			t.Fatalf("Decode(%q) accepted what encoding/json refuses: %v", body, stdErr)
		}
		if !utf8.Valid(body) || !json.Valid(body) {
			t.Fatalf("Decode accepted a body that is not UTF-8 JSON: %q", body)
		}
		if !reflect.DeepEqual(got, std) {
			t.Fatalf("Decode(%q) = %+v, encoding/json %+v", body, got, std)
		}
		checkBounds(t, got)
		again, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var round signup
		if err := web.Decode(httptest.NewRequest("POST", "/", bytes.NewReader(again)), &round); err != nil {
			t.Fatalf("the re-encoded value %s is refused: %v", again, err)
		}
	})
}

// checkBounds fails when a decoded signup holds NUL or a string over its
// maximum.
func checkBounds(t *testing.T, s signup) {
	t.Helper()
	check := func(field, v string, max int) {
		if strings.IndexByte(v, 0) >= 0 || utf8.RuneCountInString(v) > max {
			t.Fatalf("%s = %q passed (max %d, no NUL)", field, v, max)
		}
	}
	check("email", s.Email, 254)
	check("password", s.Password, 128)
	check("name", s.Name, web.DefaultMaxLen)
	for _, v := range s.Tags {
		check("tags", v, 8)
	}
	for k, v := range s.Attrs {
		check("attrs key", k, web.DefaultMaxLen)
		check("attrs", v, 16)
	}
	if s.Address != nil {
		check("address.line1", s.Address.Line1, 10)
	}
}

// FuzzCursor: DecodeCursor never panics on any text, accepts only what
// EncodeCursor could have made, and every key EncodeCursor takes comes back
// from DecodeCursor unchanged. Seeds: testdata/fuzz/FuzzCursor.
func FuzzCursor(f *testing.F) {
	f.Add(web.EncodeCursor(keyset{At: 1, ID: "a"}), int64(1767312000000000), "0192f0c1-7b7e-7000-8000-000000000001")
	f.Add("", int64(-1), "")
	f.Add("e30", int64(0), "é")
	f.Fuzz(func(t *testing.T, text string, at int64, id string) {
		var k keyset
		if err := web.DecodeCursor(text, &k); err == nil {
			if len(text) > web.MaxCursorLen || text == "" {
				t.Fatalf("DecodeCursor accepted %q", text)
			}
			var back keyset
			if err := web.DecodeCursor(web.EncodeCursor(k), &back); err != nil || back != k {
				t.Fatalf("%+v does not survive a second round: %+v, %v", k, back, err)
			}
		} else if errs.KindOf(err) != errs.Invalid {
			t.Fatalf("DecodeCursor(%q): kind %v", text, errs.KindOf(err))
		}
		// A key from a store: valid UTF-8 without NUL, short enough.
		if !utf8.ValidString(id) || strings.IndexByte(id, 0) >= 0 || len(id) > 200 {
			return
		}
		in := keyset{At: at, ID: id}
		var out keyset
		if err := web.DecodeCursor(web.EncodeCursor(in), &out); err != nil || out != in {
			t.Fatalf("round trip of %+v = %+v, %v", in, out, err)
		}
	})
}
