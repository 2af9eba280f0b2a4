package totp

import (
	"strings"
	"testing"
	"time"
)

// FuzzCheck: any code and secret, however malformed, are answered without
// a panic; a code is accepted only as exactly Digits ASCII digits, and then
// it is one of the codes of the window around the time.
func FuzzCheck(f *testing.F) {
	secret := "JBSWY3DPEHPK3PXP"
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	good, _ := Code(secret, at)
	f.Add(secret, good)
	f.Add(secret, "12345")
	f.Add(secret, "１２３４５６") // full-width digits
	f.Add("not base32!", good)
	f.Add("", "")
	f.Fuzz(func(t *testing.T, secret, code string) {
		step, ok := Check(secret, code, at)
		if !ok {
			return
		}
		if !wellFormed(code, Digits) {
			t.Fatalf("accepted the malformed code %q", code)
		}
		key, err := decodeSecret(secret)
		if err != nil {
			t.Fatalf("accepted a code for the malformed secret %q", secret)
		}
		if hotp(key, step, Digits) != code {
			t.Fatalf("code %q reported to match step %d, which gives %q", code, step, hotp(key, step, Digits))
		}
	})
}

// FuzzNormalizeRecoveryCode: the canonical form is idempotent, has the
// shape xxxx-xxxx-xxxx over the code alphabet, and accepts nothing else.
func FuzzNormalizeRecoveryCode(f *testing.F) {
	codes, _ := RecoveryCodes(2)
	for _, c := range codes {
		f.Add(c)
		f.Add(strings.ToUpper(strings.ReplaceAll(c, "-", " ")))
	}
	f.Add("OOOO-IIII-LLLL")
	f.Add("abcd-efgh-jkm")
	f.Add("abcd-efgh-jkmnp")
	f.Add("ａｂｃｄ-efgh-jkmn")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := NormalizeRecoveryCode(s)
		if !ok {
			return
		}
		groups := strings.Split(c, "-")
		if len(groups) != RecoveryGroups {
			t.Fatalf("%q → %q: not %d groups", s, c, RecoveryGroups)
		}
		for _, g := range groups {
			if len(g) != RecoveryGroupLen || strings.Trim(g, recoveryAlphabet) != "" {
				t.Fatalf("%q → %q: group %q is not %d characters of the alphabet", s, c, g, RecoveryGroupLen)
			}
		}
		if again, ok := NormalizeRecoveryCode(c); !ok || again != c {
			t.Fatalf("not idempotent: %q → %q → %q, %v", s, c, again, ok)
		}
	})
}
