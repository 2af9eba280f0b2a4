// Package totp implements one-time passwords for two-factor sign-in:
// RFC 4226 HOTP and RFC 6238 TOTP with the parameters every authenticator app
// supports (HMAC-SHA-1, 6 digits, 30-second steps), plus recovery codes.
//
// Secrets travel as upper-case base32 without padding, the form authenticator
// apps expect in an otpauth:// URL. The package keeps no state: refusing a
// code that was already used (replay) is the caller's job — Check reports the
// time step a code matched so that the caller can store it and refuse any
// step not later than the last one accepted.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The parameters of the codes this package issues and accepts.
const (
	Digits = 6                // digits per code
	Period = 30 * time.Second // length of one time step
	Skew   = 1                // steps accepted either side of the current one

	// SecretBytes is the size of a secret made by NewSecret: 160 bits, the
	// length RFC 4226 recommends for HMAC-SHA-1.
	SecretBytes = 20
	// MinSecretBytes is the shortest secret accepted (RFC 4226 R6: 128 bits).
	MinSecretBytes = 16
)

// ErrSecret is returned for a secret that is not base32 or is too short.
var ErrSecret = errors.New("totp: malformed secret")

// ErrTime is returned for a time before the Unix epoch.
var ErrTime = errors.New("totp: time before 1970")

// b32 is base32 (RFC 4648 alphabet) without padding.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a new random 160-bit secret, base32-encoded without
// padding (32 characters).
func NewSecret() (string, error) {
	b := make([]byte, SecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("totp: random: %w", err)
	}
	return b32.EncodeToString(b), nil
}

// URL returns the otpauth:// key URI that authenticator apps read from a QR
// code: otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30.
// Issuer and account are percent-encoded (a colon in either is encoded too,
// so the label stays unambiguous; a space is %20, not +).
func URL(issuer, account, secret string) string {
	var b strings.Builder
	b.WriteString("otpauth://totp/")
	b.WriteString(escape(issuer))
	b.WriteString(":")
	b.WriteString(escape(account))
	b.WriteString("?secret=")
	b.WriteString(escape(secret))
	b.WriteString("&issuer=")
	b.WriteString(escape(issuer))
	b.WriteString("&algorithm=SHA1&digits=")
	b.WriteString(strconv.Itoa(Digits))
	b.WriteString("&period=")
	b.WriteString(strconv.Itoa(int(Period / time.Second)))
	return b.String()
}

// escape percent-encodes everything but RFC 3986 unreserved characters.
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// decodeSecret reads a base32 secret. It tolerates what people and apps do
// to secrets — lower case, spaces, '=' padding — and rejects anything else
// and secrets shorter than MinSecretBytes.
func decodeSecret(secret string) ([]byte, error) {
	s := strings.ToUpper(strings.ReplaceAll(secret, " ", ""))
	s = strings.TrimRight(s, "=")
	key, err := b32.DecodeString(s)
	if err != nil || len(key) < MinSecretBytes {
		return nil, ErrSecret
	}
	return key, nil
}

// HOTP returns the RFC 4226 code of secret (base32) for counter, with Digits
// digits.
func HOTP(secret string, counter uint64) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	return hotp(key, counter, Digits), nil
}

// hotp is RFC 4226 section 5.3 for 1 to 9 digits.
func hotp(key []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	s := strconv.FormatUint(uint64(bin%mod), 10)
	return strings.Repeat("0", digits-len(s)) + s
}

// step is the RFC 6238 time step T of at.
func step(at time.Time) (uint64, error) {
	u := at.Unix()
	if u < 0 {
		return 0, ErrTime
	}
	return uint64(u) / uint64(Period/time.Second), nil
}

// Code returns the TOTP code of secret (base32) at time at.
func Code(secret string, at time.Time) (string, error) {
	return code(secret, at, Digits)
}

func code(secret string, at time.Time, digits int) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	t, err := step(at)
	if err != nil {
		return "", err
	}
	return hotp(key, t, digits), nil
}

// Verify reports whether code is the TOTP code of secret at time at or one
// step either side of it (clock drift and typing time). It is false for a
// malformed secret or a code that is not exactly Digits ASCII digits. The
// comparison takes the same time whichever step matches. Verify does not
// prevent replay; see Check.
func Verify(secret, code string, at time.Time) bool {
	_, ok := Check(secret, code, at)
	return ok
}

// Check is Verify that also returns the time step the code matched, so the
// caller can record it and refuse a later code whose step is not greater
// (RFC 6238 section 5.2: a code is accepted once).
func Check(secret, code string, at time.Time) (matched uint64, ok bool) {
	if !wellFormed(code, Digits) {
		return 0, false
	}
	key, err := decodeSecret(secret)
	if err != nil {
		return 0, false
	}
	t, err := step(at)
	if err != nil {
		return 0, false
	}
	// Every step in the window is computed and compared, in constant time,
	// whether or not an earlier one matched.
	for d := -Skew; d <= Skew; d++ {
		if d < 0 && t < uint64(-d) {
			continue
		}
		s := uint64(int64(t) + int64(d))
		if subtle.ConstantTimeCompare([]byte(hotp(key, s, Digits)), []byte(code)) == 1 && !ok {
			matched, ok = s, true
		}
	}
	return matched, ok
}

func wellFormed(code string, digits int) bool {
	if len(code) != digits {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// recoveryAlphabet is Crockford's base32 in lower case: no i, l, o or u, so
// a code read aloud or typed from paper is hard to get wrong.
const recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// RecoveryGroups and RecoveryGroupLen shape a recovery code: three groups of
// four characters, 5 bits each — 60 bits of randomness per code.
const (
	RecoveryGroups   = 3
	RecoveryGroupLen = 4
)

// RecoveryCodes returns n distinct single-use recovery codes of the form
// "xxxx-xxxx-xxxx" drawn uniformly from a 32-character readable alphabet
// (60 random bits each). n must not be negative; zero gives an empty slice.
// Callers store only a hash of each code and compare through
// NormalizeRecoveryCode.
func RecoveryCodes(n int) ([]string, error) {
	if n < 0 {
		return nil, fmt.Errorf("totp: negative number of recovery codes")
	}
	codes := make([]string, 0, n)
	seen := make(map[string]bool, n)
	var buf [8]byte
	for len(codes) < n {
		if _, err := rand.Read(buf[:]); err != nil {
			return nil, fmt.Errorf("totp: random: %w", err)
		}
		v := binary.BigEndian.Uint64(buf[:])
		var b strings.Builder
		for g := range RecoveryGroups {
			if g > 0 {
				b.WriteByte('-')
			}
			for range RecoveryGroupLen {
				b.WriteByte(recoveryAlphabet[v&31])
				v >>= 5
			}
		}
		if c := b.String(); !seen[c] {
			seen[c] = true
			codes = append(codes, c)
		}
	}
	return codes, nil
}

// NormalizeRecoveryCode returns the canonical form ("xxxx-xxxx-xxxx") of a
// recovery code as a person typed it: case, spaces and dashes do not matter,
// and the look-alikes i, l (for 1) and o (for 0) are read as Crockford
// does. ok is false when s cannot be a recovery code.
func NormalizeRecoveryCode(s string) (code string, ok bool) {
	const n = RecoveryGroups * RecoveryGroupLen
	var b strings.Builder
	count := 0
	for _, r := range strings.ToLower(s) {
		switch {
		case r == '-' || r == ' ':
			continue
		case r == 'i' || r == 'l':
			r = '1'
		case r == 'o':
			r = '0'
		}
		if r > 0x7f || strings.IndexByte(recoveryAlphabet, byte(r)) < 0 || count == n {
			return "", false
		}
		if count > 0 && count%RecoveryGroupLen == 0 {
			b.WriteByte('-')
		}
		b.WriteRune(r)
		count++
	}
	if count != n {
		return "", false
	}
	return b.String(), true
}
