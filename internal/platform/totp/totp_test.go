package totp

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// rfcSecret is the SHA-1 seed of RFC 4226 appendix D and RFC 6238 appendix B,
// "12345678901234567890" in ASCII, as base32.
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

func TestRFC6238Vectors(t *testing.T) {
	tests := []struct {
		unix int64
		want string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	}
	for _, tt := range tests {
		t.Run(time.Unix(tt.unix, 0).UTC().Format(time.RFC3339), func(t *testing.T) {
			got, err := code(rfcSecret, time.Unix(tt.unix, 0), 8)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("8-digit code = %s, want %s", got, tt.want)
			}
			// The 6-digit code is the low six digits of the same value.
			six, err := Code(rfcSecret, time.Unix(tt.unix, 0))
			if err != nil {
				t.Fatal(err)
			}
			if six != tt.want[2:] {
				t.Fatalf("Code = %s, want %s", six, tt.want[2:])
			}
			if !Verify(rfcSecret, six, time.Unix(tt.unix, 0)) {
				t.Fatalf("Verify rejects its own code %s", six)
			}
		})
	}
}

func TestHOTPVectors(t *testing.T) {
	want := []string{"755224", "287082", "359152", "969429", "338314",
		"254676", "287922", "162583", "399871", "520489"}
	for c, w := range want {
		t.Run(w, func(t *testing.T) {
			got, err := HOTP(rfcSecret, uint64(c))
			if err != nil {
				t.Fatal(err)
			}
			if got != w {
				t.Fatalf("HOTP(counter %d) = %s, want %s", c, got, w)
			}
		})
	}
}

func TestVerifySkew(t *testing.T) {
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_015, 0) // middle of a step
	tests := []struct {
		name   string
		offset time.Duration // when the code was made, relative to now
		ok     bool
	}{
		{"two steps early", -2 * Period, false},
		{"one step early", -Period, true},
		{"current step", 0, true},
		{"same step, 14s earlier", -14 * time.Second, true},
		{"one step late", Period, true},
		{"two steps late", 2 * Period, false},
		{"ten steps early", -10 * Period, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Code(secret, now.Add(tt.offset))
			if err != nil {
				t.Fatal(err)
			}
			if got := Verify(secret, c, now); got != tt.ok {
				t.Fatalf("Verify(code at %v) = %v, want %v", tt.offset, got, tt.ok)
			}
			wantStep := uint64(now.Add(tt.offset).Unix()) / 30
			if step, ok := Check(secret, c, now); ok != tt.ok || (ok && step != wantStep) {
				t.Fatalf("Check = (%d, %v), want (%d, %v)", step, ok, wantStep, tt.ok)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	at := time.Unix(59, 0)
	good := "287082" // the RFC secret's code at 59 s
	if !Verify(rfcSecret, good, at) {
		t.Fatal("baseline code rejected")
	}
	tests := []struct {
		name, secret, code string
		at                 time.Time
	}{
		{"empty code", rfcSecret, "", at},
		{"five digits", rfcSecret, good[:5], at},
		{"seven digits", rfcSecret, good + "0", at},
		{"eight-digit RFC code", rfcSecret, "94287082", at},
		{"letter", rfcSecret, "28708a", at},
		{"leading space", rfcSecret, " " + good[1:], at},
		{"sign", rfcSecret, "+87082", at},
		{"full-width digits", rfcSecret, "２８７０８２", at},
		{"empty secret", "", good, at},
		{"secret not base32", "GEZDGNBVGY3TQOJQ!EZDGNBVGY3TQOJQ", good, at},
		{"secret with digit 1", "1EZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", good, at},
		{"secret of 80 bits", rfcSecret[:16], good, at},
		{"before 1970", rfcSecret, good, time.Unix(-1, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if Verify(tt.secret, tt.code, tt.at) {
				t.Fatalf("Verify(%q, %q) = true, want false", tt.secret, tt.code)
			}
		})
	}
	t.Run("Code rejects a malformed secret", func(t *testing.T) {
		if _, err := Code("not base32!", at); err != ErrSecret {
			t.Fatalf("err = %v, want ErrSecret", err)
		}
		if _, err := Code(rfcSecret, time.Unix(-31, 0)); err != ErrTime {
			t.Fatalf("err = %v, want ErrTime", err)
		}
	})
	t.Run("secret as people type it", func(t *testing.T) {
		typed := strings.ToLower(rfcSecret[:8]) + " " + rfcSecret[8:] + "===="
		if !Verify(typed, good, at) {
			t.Fatal("lower case, spaces and padding should be tolerated")
		}
	})
	t.Run("first step has no earlier neighbour", func(t *testing.T) {
		c, _ := Code(rfcSecret, time.Unix(0, 0))
		if step, ok := Check(rfcSecret, c, time.Unix(1, 0)); !ok || step != 0 {
			t.Fatalf("Check at epoch = (%d, %v), want (0, true)", step, ok)
		}
	})
}

func TestNewSecret(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if a == b {
		t.Fatal("two secrets are equal")
	}
	if len(a) != 32 || strings.ContainsAny(a, "=") {
		t.Fatalf("secret %q: want 32 base32 characters without padding", a)
	}
	key, err := decodeSecret(a)
	if err != nil || len(key) != 20 {
		t.Fatalf("secret decodes to %d bytes (err %v), want 20", len(key), err)
	}
	c, err := Code(a, time.Now())
	if err != nil || !Verify(a, c, time.Now()) {
		t.Fatalf("a new secret's code %q does not verify (err %v)", c, err)
	}
}

func TestURL(t *testing.T) {
	tests := []struct {
		name, issuer, account string
		wantPrefix            string
	}{
		{"plain", "mercato", "alice@example.com", "otpauth://totp/mercato:alice%40example.com?"},
		{"space and colon", "ACME Co:EU", "bob smith", "otpauth://totp/ACME%20Co%3AEU:bob%20smith?"},
		{"query characters", "a&b=c", "x?y#z", "otpauth://totp/a%26b%3Dc:x%3Fy%23z?"},
		{"unicode", "Mercato Ünd", "ü", "otpauth://totp/Mercato%20%C3%9Cnd:%C3%BC?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := URL(tt.issuer, tt.account, rfcSecret)
			if !strings.HasPrefix(raw, tt.wantPrefix) {
				t.Fatalf("URL = %s, want prefix %s", raw, tt.wantPrefix)
			}
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if u.Scheme != "otpauth" || u.Host != "totp" {
				t.Fatalf("scheme/host = %s/%s", u.Scheme, u.Host)
			}
			if want := "/" + tt.issuer + ":" + tt.account; u.Path != want {
				t.Fatalf("label = %q, want %q", u.Path, want)
			}
			q := u.Query()
			want := map[string]string{"secret": rfcSecret, "issuer": tt.issuer,
				"algorithm": "SHA1", "digits": "6", "period": "30"}
			for k, v := range want {
				if q.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, q.Get(k), v)
				}
			}
			if len(q) != len(want) {
				t.Errorf("query %v has extra parameters", q)
			}
		})
	}
}

var recoveryShape = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)

func TestRecoveryCodes(t *testing.T) {
	codes, err := RecoveryCodes(200)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 200 {
		t.Fatalf("got %d codes, want 200", len(codes))
	}
	seen := map[string]bool{}
	used := map[rune]bool{}
	for _, c := range codes {
		if !recoveryShape.MatchString(c) {
			t.Fatalf("code %q is not xxxx-xxxx-xxxx over the readable alphabet", c)
		}
		if seen[c] {
			t.Fatalf("code %q issued twice", c)
		}
		seen[c] = true
		for _, r := range strings.ReplaceAll(c, "-", "") {
			used[r] = true
		}
		if n, ok := NormalizeRecoveryCode(c); !ok || n != c {
			t.Fatalf("NormalizeRecoveryCode(%q) = %q, %v", c, n, ok)
		}
	}
	// 2,400 draws from 32 symbols: every symbol shows up (a biased or
	// truncated alphabet would not).
	if len(used) != len(recoveryAlphabet) {
		t.Fatalf("%d of %d alphabet symbols used", len(used), len(recoveryAlphabet))
	}
	if bits := RecoveryGroups * RecoveryGroupLen * 5; bits < 60 {
		t.Fatalf("recovery codes carry %d bits, want >= 60", bits)
	}
	t.Run("zero", func(t *testing.T) {
		c, err := RecoveryCodes(0)
		if err != nil || c == nil || len(c) != 0 {
			t.Fatalf("RecoveryCodes(0) = %v, %v; want empty, nil", c, err)
		}
	})
	t.Run("negative", func(t *testing.T) {
		if _, err := RecoveryCodes(-1); err == nil {
			t.Fatal("RecoveryCodes(-1) succeeded")
		}
	})
}

func TestNormalizeRecoveryCode(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"abcd-efgh-jkmn", "abcd-efgh-jkmn", true},
		{"ABCD EFGH JKMN", "abcd-efgh-jkmn", true},
		{"abcdefghjkmn", "abcd-efgh-jkmn", true},
		{"oIl0-0000-0000", "0110-0000-0000", true},
		{" abcd--efgh-jkmn ", "abcd-efgh-jkmn", true},
		{"abcd-efgh-jkm", "", false},
		{"abcd-efgh-jkmnp", "", false},
		{"abcd-efgh-jkmu", "", false},
		{"abcd-efgh-jkm!", "", false},
		{"abcd-efgh-jkmé", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := NormalizeRecoveryCode(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("NormalizeRecoveryCode(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
