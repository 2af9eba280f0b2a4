package accounts

import (
	"net/mail"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"

	"mercato/internal/platform/errs"
)

// Field caps, in bytes of the value as sent unless noted. Every field is
// checked against its cap before any other work (no normalisation, no
// hashing, no database) so that a huge value costs nothing.
const (
	maxEmailLen    = 254 // RFC 5321 path limit
	maxPasswordLen = 256 // bounds the work one hash does with attacker-chosen input
	maxNameLen     = 200 // characters
	maxOTPLen      = 64  // a TOTP code or a recovery code, however typed
	maxTokenLen    = 128 // reset and unlock tokens ("mct_" + 43)
)

// emailProfile maps and checks a domain for lookup (UTS #46 with the
// IDNA2008 rules, the Bidi rule and DNS lengths) and gives its ASCII form.
var emailProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true),
	idna.StrictDomainName(true), idna.Transitional(false))

// NormalizeEmail returns the canonical form of an e-mail address, in which
// addresses are stored and compared, and whether s is an acceptable
// address. The canonical form is: trimmed; NFKC-normalised (full-width and
// other compatibility forms folded) and lower-cased; the local part plain
// ASCII; the domain in its IDNA ASCII form (xn--…). Refused: more than 254
// bytes as sent, invalid UTF-8, control or invisible characters anywhere
// (zero-width, bidi controls, …), a non-ASCII local part, a domain label
// that mixes scripts (a Cyrillic "а" among Latin letters), and anything
// that is not a plain addr-spec with a dotted domain. NormalizeEmail is
// idempotent on the addresses it accepts.
func NormalizeEmail(s string) (string, bool) {
	e, problem := normalizeEmail(s)
	return e, problem == ""
}

// normalizeEmail is NormalizeEmail with the reason for a refusal ("" when
// accepted), worded for a field error.
func normalizeEmail(s string) (string, string) {
	const bad = "must be a valid e-mail address"
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", "is required"
	case len(s) > maxEmailLen:
		return "", "must be at most 254 bytes"
	case !utf8.ValidString(s):
		return "", "must be valid UTF-8"
	case strings.ContainsFunc(s, invisible):
		return "", "must not contain control or invisible characters"
	}
	s = norm.NFKC.String(strings.ToLower(norm.NFKC.String(s)))
	if strings.ContainsFunc(s, invisible) {
		return "", "must not contain control or invisible characters"
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", bad
	}
	local, domain := s[:at], s[at+1:]
	if !isASCII(local) {
		return "", "must have a plain ASCII part before the @"
	}
	ascii, err := emailProfile.ToASCII(domain)
	if err != nil {
		return "", bad
	}
	ascii = strings.ToLower(ascii)
	uni, err := emailProfile.ToUnicode(ascii)
	if err != nil {
		return "", bad
	}
	for _, label := range strings.Split(uni, ".") {
		if mixedScripts(label) {
			return "", "must not mix scripts within a part of the domain"
		}
	}
	e := local + "@" + ascii
	if !validEmail(e) {
		return "", bad
	}
	return e, ""
}

// validEmail reports whether the normalised address e is a plain
// addr-spec (no display name, no comments) with a dotted ASCII domain.
func validEmail(e string) bool {
	if e == "" || len(e) > maxEmailLen || !isASCII(e) || strings.ContainsAny(e, " \t\r\n<>()\",;") {
		return false
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return false
	}
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || len(local) > 64 || strings.Contains(domain, "@") {
		return false
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
	}
	return true
}

// emailField normalises the address raw sent as field, recording a problem
// with it in v; it returns the canonical form ("" when refused).
func emailField(v *errs.Validation, field, raw string) string {
	e, problem := normalizeEmail(raw)
	if problem != "" {
		v.Add(field, problem)
		return ""
	}
	return e
}

// normalizeText returns s trimmed and NFC-normalised, and the reason it is
// refused ("" when accepted): invalid UTF-8, or a control or invisible
// character. Display names and address lines go through it; it is
// idempotent on what it accepts.
func normalizeText(s string) (string, string) {
	if !utf8.ValidString(s) {
		return "", "must be valid UTF-8"
	}
	if strings.ContainsFunc(s, invisible) {
		return "", "must not contain control or invisible characters"
	}
	return strings.TrimSpace(norm.NFC.String(s)), ""
}

// textField normalises the free-text value raw of field, recording in v
// a problem with it: refused by normalizeText, empty when required, or
// longer than maxChars characters (checked in bytes first, at four bytes a
// character, so that a huge value is refused before it is read).
func textField(v *errs.Validation, field, raw string, required bool, maxChars int) string {
	if len(raw) > 4*maxChars {
		v.Add(field, "must be at most "+strconv.Itoa(maxChars)+" characters")
		return ""
	}
	s, problem := normalizeText(raw)
	switch {
	case problem != "":
		v.Add(field, problem)
	case required && s == "":
		v.Add(field, "is required")
	case utf8.RuneCountInString(s) > maxChars:
		v.Add(field, "must be at most "+strconv.Itoa(maxChars)+" characters")
	}
	return s
}

// nameField is textField for a display name (at most 200 characters).
func nameField(v *errs.Validation, field, raw string, required bool) string {
	return textField(v, field, raw, required, maxNameLen)
}

// capField records a problem when the secret value of field (a password, a
// code, a token) is longer than maxBytes; secrets are not normalised.
func capField(v *errs.Validation, field, value string, maxBytes int) {
	v.Check(len(value) <= maxBytes, field, "must be at most "+strconv.Itoa(maxBytes)+" bytes")
}

// invisible reports whether r is a control character, a format character
// (zero-width spaces and joiners, bidi controls, the BOM, soft hyphen…), a
// line or paragraph separator, a private-use or surrogate code point, or
// another default-ignorable code point (Hangul fillers, variation
// selectors, tags) — characters that do not show, or show as nothing.
func invisible(r rune) bool {
	if r == utf8.RuneError {
		return true
	}
	if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co, unicode.Cs) {
		return true
	}
	switch {
	case r == 0x034F, r == 0x115F, r == 0x1160, r == 0x17B4, r == 0x17B5, r == 0x3164, r == 0xFFA0,
		r >= 0x180B && r <= 0x180F, r >= 0xFE00 && r <= 0xFE0F, r >= 0xFFF0 && r <= 0xFFF8,
		r >= 0x1BCA0 && r <= 0x1BCA3, r >= 0x1D173 && r <= 0x1D17A, r >= 0xE0000 && r <= 0xE0FFF,
		r == 0x2800: // Braille blank
		return true
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// scriptOf is the Unicode script of r, "" for Common and Inherited
// characters (digits, hyphen, marks), which go with any script.
func scriptOf(r rune) string {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return "Latin"
		}
		return ""
	}
	for name, table := range unicode.Scripts {
		if name != "Common" && name != "Inherited" && unicode.Is(table, r) {
			return name
		}
	}
	return ""
}

// mixedScripts reports whether a domain label mixes scripts beyond UTS #39's
// "highly restrictive" level: one script, or Latin with Han and Japanese
// kana, with Han and Bopomofo, or with Han and Hangul.
func mixedScripts(label string) bool {
	seen := map[string]bool{}
	for _, r := range label {
		if s := scriptOf(r); s != "" {
			seen[s] = true
		}
	}
	if len(seen) <= 1 {
		return false
	}
	for _, allowed := range []map[string]bool{
		{"Latin": true, "Han": true, "Hiragana": true, "Katakana": true},
		{"Latin": true, "Han": true, "Bopomofo": true},
		{"Latin": true, "Han": true, "Hangul": true},
	} {
		ok := true
		for s := range seen {
			ok = ok && allowed[s]
		}
		if ok {
			return false
		}
	}
	return true
}
