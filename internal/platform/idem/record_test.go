package idem

import (
	"bytes"
	"errors"
	"testing"
)

func testKeys(t testing.TB) keys {
	t.Helper()
	k, err := deriveKeys(bytes.Repeat([]byte{0x42}, MinSecret))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testName(t testing.TB, k keys, scope, key, material string) name {
	t.Helper()
	n, err := k.nameOf(Request{Scope: scope, Key: key, Material: []byte(material)})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSealOpen(t *testing.T) {
	k := testKeys(t)
	n := testName(t, k, "u:1", "key", "body")
	outcomes := []Outcome{
		{Status: 201, ContentType: "application/json", Body: []byte(`{"id":"o-1"}`)},
		{Status: 204, Body: []byte{}},
		{Status: 409, ContentType: "application/problem+json", Body: bytes.Repeat([]byte("x"), 1<<16)},
		{Status: 999, ContentType: string(bytes.Repeat([]byte("t"), maxContentType)), Body: []byte{0, 1, 2}},
	}
	for _, o := range outcomes {
		rec, err := seal(n, o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := open(n, rec)
		if err != nil || got.Status != o.Status || got.ContentType != o.ContentType || !bytes.Equal(got.Body, o.Body) {
			t.Errorf("open(seal(%d %q)) = %d %q, %v", o.Status, o.ContentType, got.Status, got.ContentType, err)
		}
	}
}

// TestOpenRefuses: a record opens only under the name it was sealed for
// and only unaltered.
func TestOpenRefuses(t *testing.T) {
	k := testKeys(t)
	n := testName(t, k, "u:1", "key", "body")
	rec, err := seal(n, Outcome{Status: 200, ContentType: "application/json", Body: []byte(`{"token":"t"}`)})
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(rec)
		b[i] ^= 1
		return b
	}
	cases := []struct {
		name string
		n    name
		rec  []byte
	}{
		{"another key", testName(t, k, "u:1", "key2", "body"), rec},
		{"another scope", testName(t, k, "u:2", "key", "body"), rec},
		{"another fingerprint", testName(t, k, "u:1", "key", "other"), rec},
		{"another server secret", func() name {
			k2, _ := deriveKeys(bytes.Repeat([]byte{0x43}, MinSecret))
			return testName(t, k2, "u:1", "key", "body")
		}(), rec},
		{"a flipped version", n, flip(0)},
		{"a flipped nonce", n, flip(1)},
		{"a flipped ciphertext", n, flip(1 + nonceSize)},
		{"a flipped tag", n, flip(len(rec) - 1)},
		{"truncated", n, rec[:len(rec)-1]},
		{"empty", n, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := open(c.n, c.rec); !errors.Is(err, ErrBadRecord) {
				t.Errorf("open = %v, want ErrBadRecord", err)
			}
		})
	}
}

// TestNames: what the store keeps differs with every input and depends on
// the server secret.
func TestNames(t *testing.T) {
	k := testKeys(t)
	base := testName(t, k, "u:1", "key", "body")
	cases := []struct {
		name                string
		n                   name
		sameKeyID, sameFP   bool
		sameScope, sameSeal bool
	}{
		{"same request", testName(t, k, "u:1", "key", "body"), true, true, true, true},
		{"other body", testName(t, k, "u:1", "key", "other"), true, false, true, true},
		{"other key", testName(t, k, "u:1", "kez", "body"), false, false, true, false},
		{"other scope", testName(t, k, "u:2", "key", "body"), false, false, false, false},
		{"shifted boundary", testName(t, k, "u:1k", "ey", "body"), false, false, false, false},
		{"anonymous", testName(t, k, "", "key", "body"), false, false, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := [4]bool{bytes.Equal(c.n.keyID, base.keyID), bytes.Equal(c.n.fp, base.fp),
				bytes.Equal(c.n.scopeID, base.scopeID), bytes.Equal(c.n.seal, base.seal)}
			if want := [4]bool{c.sameKeyID, c.sameFP, c.sameScope, c.sameSeal}; got != want {
				t.Errorf("same (key id, fingerprint, scope, seal) = %v, want %v", got, want)
			}
		})
	}
	if !bytes.Equal(k.scopeID("u:1"), base.scopeID) {
		t.Errorf("scopeID(scope) differs from the name's scope id: Forget would miss it")
	}
	anonA, anonB := testName(t, k, "", "key", "a"), testName(t, k, "", "key", "b")
	if bytes.Equal(anonA.keyID, anonB.keyID) {
		t.Errorf("two anonymous requests with other bodies share a key id: one could squat the other's key")
	}
}

// FuzzDecodeRecord: decoding stored bytes never panics, and what decodes
// encodes back to the same bytes (the format has one spelling); opening
// arbitrary bytes as a sealed record fails cleanly.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeOutcome(Outcome{Status: 201, ContentType: "application/json", Body: []byte(`{"id":"o-1"}`)}))
	f.Add(encodeOutcome(Outcome{Status: 204}))
	f.Add([]byte{0x00, 0xc8, 0x80, 0x00})
	f.Add([]byte{0x01})
	k := testKeys(f)
	n := testName(f, k, "u:1", "key", "body")
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := decodeOutcome(b)
		if err == nil {
			if validOutcome(o) != nil {
				t.Fatalf("decoded an invalid outcome %d %q", o.Status, o.ContentType)
			}
			if again := encodeOutcome(o); !bytes.Equal(again, b) {
				t.Fatalf("decode(%x) re-encodes as %x", b, again)
			}
		} else if !errors.Is(err, ErrBadRecord) {
			t.Fatalf("decode error %v is not ErrBadRecord", err)
		}
		if _, err := open(n, b); !errors.Is(err, ErrBadRecord) {
			t.Fatalf("open(%x) = %v, want ErrBadRecord", b, err)
		}
	})
}
