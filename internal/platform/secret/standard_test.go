package secret

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks specification's own example: its secret, message
// id, timestamp and payload give this signature.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specPayload   = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestStandardSignMatchesTheSpec(t *testing.T) {
	got, err := StandardSign([]string{specSecret}, specID, specTimestamp, []byte(specPayload))
	if err != nil || got != specSignature {
		t.Fatalf("StandardSign = %q, %v; want %q", got, err, specSignature)
	}
	other := NewStandardSecret()
	two, err := StandardSign([]string{specSecret, other}, specID, specTimestamp, []byte(specPayload))
	if err != nil || !strings.HasPrefix(two, specSignature+" v1,") || strings.Count(two, "v1,") != 2 {
		t.Fatalf("two secrets: %q, %v", two, err)
	}
}

func TestStandardKey(t *testing.T) {
	for _, s := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64", "whsec_c2hvcnQ=", "whsec_" + strings.Repeat("QUFB", 22)} {
		if k, err := StandardKey(s); err == nil {
			t.Errorf("StandardKey(%q) = %x, want an error", s, k)
		} else if strings.Contains(err.Error(), s) && s != "" {
			t.Errorf("the error %q holds the secret", err)
		}
	}
	fresh := NewStandardSecret()
	if k, err := StandardKey(fresh); err != nil || len(k) != standardKeyBytes {
		t.Fatalf("a new secret's key: %d bytes, %v", len(k), err)
	}
	if fresh == NewStandardSecret() {
		t.Fatal("two new secrets are equal")
	}
}

func TestVerifyStandard(t *testing.T) {
	key, _ := StandardKey(specSecret)
	old, _ := StandardKey(NewStandardSecret())
	stranger, _ := StandardKey(NewStandardSecret())
	at := time.Unix(specTimestamp, 0)
	ts := strconv.Itoa(specTimestamp)
	tol := 5 * time.Minute
	cases := []struct {
		name              string
		id, ts, sigs, msg string
		keys              [][]byte
		now               time.Time
		want              error
	}{
		{"the spec's example", specID, ts, specSignature, specPayload, [][]byte{key}, at, nil},
		{"one of the keys (rotation)", specID, ts, specSignature, specPayload, [][]byte{old, key}, at, nil},
		{"one of the signatures", specID, ts, "v2,abc v1,!!! " + specSignature, specPayload, [][]byte{key}, at, nil},
		{"at the edge of the tolerance", specID, ts, specSignature, specPayload, [][]byte{key}, at.Add(tol), nil},
		{"another key", specID, ts, specSignature, specPayload, [][]byte{stranger}, at, ErrStandardSignature},
		{"no key", specID, ts, specSignature, specPayload, nil, at, ErrStandardSignature},
		{"another body", specID, ts, specSignature, specPayload + " ", [][]byte{key}, at, ErrStandardSignature},
		{"another id", specID + "x", ts, specSignature, specPayload, [][]byte{key}, at, ErrStandardSignature},
		{"another timestamp", specID, strconv.Itoa(specTimestamp + 1), specSignature, specPayload, [][]byte{key}, at, ErrStandardSignature},
		{"not v1", specID, ts, "v1a," + strings.TrimPrefix(specSignature, "v1,"), specPayload, [][]byte{key}, at, ErrStandardSignature},
		{"too old", specID, ts, specSignature, specPayload, [][]byte{key}, at.Add(tol + time.Second), ErrStandardStale},
		{"from the future", specID, ts, specSignature, specPayload, [][]byte{key}, at.Add(-tol - time.Second), ErrStandardStale},
		{"timestamp not seconds", specID, "2021-02-25", specSignature, specPayload, [][]byte{key}, at, ErrStandardTimestamp},
		{"no id", "", ts, specSignature, specPayload, [][]byte{key}, at, ErrStandardHeaders},
		{"no timestamp", specID, "", specSignature, specPayload, [][]byte{key}, at, ErrStandardHeaders},
		{"no signature", specID, ts, "", specPayload, [][]byte{key}, at, ErrStandardHeaders},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifyStandard(c.id, c.ts, c.sigs, []byte(c.msg), c.keys, c.now, tol)
			if !errors.Is(err, c.want) {
				t.Fatalf("VerifyStandard = %v, want %v", err, c.want)
			}
		})
	}
}
