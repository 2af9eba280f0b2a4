package accounts

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"mercato/internal/platform/web/webtest"
)

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		name, in, want string // want "" means refused
	}{
		{"plain", "  Alice@Example.COM ", "alice@example.com"},
		{"full-width", "ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "alice@example.com"},
		{"IDN domain to ASCII", "bob@Bücher.example", "bob@xn--bcher-kva.example"},
		{"IDN in NFD", "bob@bu\u0308cher.example", "bob@xn--bcher-kva.example"},
		{"ASCII form kept", "bob@xn--bcher-kva.example", "bob@xn--bcher-kva.example"},
		{"one-script Cyrillic domain", "ivan@пример.рф", "ivan@xn--e1afmkfd.xn--p1ai"},
		{"Japanese label", "taro@日本語.jp", "taro@xn--wgv71a119e.jp"},
		{"zero-width space", "ali\u200bce@example.com", ""},
		{"zero-width joiner in the domain", "alice@exam\u200dple.com", ""},
		{"bidi override", "alice\u202e@example.com", ""},
		{"soft hyphen", "al\u00adice@example.com", ""},
		{"BOM", "\ufeffalice@example.com", ""},
		{"NUL", "alice\x00@example.com", ""},
		{"newline", "alice\n@example.com", ""},
		{"Hangul filler", "alice\u3164@example.com", ""},
		{"Cyrillic a in the local part", "\u0430lice@example.com", ""},
		{"Cyrillic a among Latin in the domain", "alice@ex\u0430mple.com", ""},
		{"Greek omicron among Latin", "alice@g\u03bfogle.com", ""},
		{"invalid UTF-8", "alice\xff@example.com", ""},
		{"255 bytes", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com", ""},
		{"no dotted domain", "alice@localhost", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := NormalizeEmail(tc.in)
			if ok != (tc.want != "") || (ok && got != tc.want) {
				t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
			}
		})
	}
}

func TestNormalizeText(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"plain", "  Zoë Ångström ", "Zoë Ångström", true},
		{"NFD to NFC", "Jose\u0301", "José", true},
		{"CJK", "王小明", "王小明", true},
		{"bidi override", "Bob\u202eevil", "", false},
		{"right-to-left mark", "Bob\u200f", "", false},
		{"zero-width space", "Bo\u200bb", "", false},
		{"zero-width joiner", "Bo\u200db", "", false},
		{"variation selector", "Bob\ufe0f", "", false},
		{"tag character", "Bob\U000E0041", "", false},
		{"tab", "Bob\tSmith", "", false},
		{"line separator", "Bob\u2028Smith", "", false},
		{"private use", "Bob\ue000", "", false},
		{"invalid UTF-8", "Bob\xc0", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, problem := normalizeText(tc.in)
			if (problem == "") != tc.ok || (tc.ok && got != tc.want) {
				t.Errorf("normalizeText(%q) = %q, %q; want %q, ok %v", tc.in, got, problem, tc.want, tc.ok)
			}
		})
	}
}

func TestLookAlikeIdentities(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		reg := func(email, name string) *webtest.Response {
			return e.c.Do("POST", "/api/v1/auth/register", map[string]string{"email": email, "password": goodPassword, "name": name})
		}
		reg("alice@example.com", "Alice").WantStatus(t, http.StatusCreated)
		r := reg("carl@café.example", "Carl")
		r.WantStatus(t, http.StatusCreated)
		if got := r.Field("user.email"); got != "carl@xn--caf-dma.example" {
			t.Errorf("stored e-mail %v, want the domain's ASCII form", got)
		}
		tests := []struct {
			name, email, display string
			status               int
			code, field          string
		}{
			{"full-width", "ａｌｉｃｅ@example.com", "A", 409, "email_taken", "email"},
			{"upper case", "ALICE@EXAMPLE.COM", "A", 409, "email_taken", "email"},
			{"NFD domain", "carl@cafe\u0301.example", "C", 409, "email_taken", "email"},
			{"ASCII form of the domain", "carl@xn--caf-dma.example", "C", 409, "email_taken", "email"},
			{"zero-width", "ali\u200bce@example.com", "A", 422, "validation_failed", "email"},
			{"Cyrillic look-alike local part", "\u0430lice@example.com", "A", 422, "validation_failed", "email"},
			{"Cyrillic look-alike in the domain", "alice@ex\u0430mple.com", "A", 422, "validation_failed", "email"},
			{"bidi control", "alice\u202e@example.com", "A", 422, "validation_failed", "email"},
			{"name with a bidi override", "dora@example.com", "Dora\u202e", 422, "validation_failed", "name"},
			{"name with a zero-width space", "dora@example.com", "Do\u200bra", 422, "validation_failed", "name"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := e.snapshot()
				p := webtest.AssertProblem(t, reg(tc.email, tc.display), tc.status, tc.code)
				webtest.AssertFieldError(t, p, tc.field)
				e.assertUnchanged(before)
			})
		}
		t.Run("names are stored in NFC", func(t *testing.T) {
			r := reg("jose@example.com", "Jose\u0301")
			r.WantStatus(t, http.StatusCreated)
			if got := r.Field("user.name"); got != "José" {
				t.Errorf("name %q, want NFC", got)
			}
		})
		t.Run("login finds the normalised address", func(t *testing.T) {
			e.login("ＡＬＩＣＥ@example.com", goodPassword)
			e.login("carl@CAFÉ.example", goodPassword)
		})
	})
}

func TestLogMailerKeepsSecretsOut(t *testing.T) {
	var buf bytes.Buffer
	m := LogMailer{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	err := m.Send(context.Background(), Message{Kind: purposeReset, To: "private.person@example.com",
		Subject: "Reset your password", Text: "use mct_SECRETSECRETSECRET to reset"})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, leak := range []string{"private.person", "example.com", "mct_SECRET", "Reset your password"} {
		if strings.Contains(out, leak) {
			t.Errorf("the log holds %q: %s", leak, out)
		}
	}
	if !strings.Contains(out, "not sent") || !strings.Contains(out, purposeReset) {
		t.Errorf("the log does not say which mail was not sent: %s", out)
	}
}

// FuzzNormalizeEmail: what NormalizeEmail accepts is canonical (normalising
// it again changes nothing), plain ASCII, at most 254 bytes, and free of
// control and invisible characters.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"alice@example.com", "ａｌｉｃｅ@example.com", "bob@Bücher.example", "ivan@пример.рф",
		"ali\u200bce@example.com", "alice@ex\u0430mple.com", "x@xn--bcher-kva.example", "a@b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		e, ok := NormalizeEmail(in)
		if !ok {
			return
		}
		if again, ok2 := NormalizeEmail(e); !ok2 || again != e {
			t.Fatalf("NormalizeEmail(%q) = %q, then %q, %v: not idempotent", in, e, again, ok2)
		}
		if len(e) > maxEmailLen || !isASCII(e) || strings.ContainsFunc(e, invisible) {
			t.Fatalf("NormalizeEmail(%q) accepted %q", in, e)
		}
	})
}

// FuzzNormalizeText: accepted names are NFC, trimmed, idempotent, and free
// of control and invisible characters.
func FuzzNormalizeText(f *testing.F) {
	for _, s := range []string{"Zoë", "Jose\u0301", "王小明", "Bob\u202eevil", " padded ", "a\u0300\u0301"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, problem := normalizeText(in)
		if problem != "" {
			return
		}
		if again, p2 := normalizeText(s); p2 != "" || again != s {
			t.Fatalf("normalizeText(%q) = %q, then %q, %q: not idempotent", in, s, again, p2)
		}
		if !utf8.ValidString(s) || !norm.NFC.IsNormalString(s) || strings.ContainsFunc(s, invisible) || s != strings.TrimSpace(s) {
			t.Fatalf("normalizeText(%q) accepted %q", in, s)
		}
	})
}

func TestFieldCapsBeforeAnyWork(t *testing.T) {
	h := &hashes{}
	forEachEngine(t, Config{derive: h.derive}, func(t *testing.T, e *env) {
		_, tok := e.register("capped@example.com")
		me := e.as(tok)
		long := func(n int) string { return strings.Repeat("x", n) }
		email255 := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com"
		huge := strings.Repeat("a", 1_000_000) + "@example.com"
		tests := []struct {
			name, path string
			c          *webtest.Client
			method     string
			body       any
			field      string
		}{
			{"register: e-mail of 255 bytes", "/api/v1/auth/register", e.c, "POST", map[string]string{"email": email255, "password": goodPassword, "name": "A"}, "email"},
			{"register: NUL in the e-mail", "/api/v1/auth/register", e.c, "POST", map[string]string{"email": "a\x00b@example.com", "password": goodPassword, "name": "A"}, "email"},
			{"register: password of 257 bytes", "/api/v1/auth/register", e.c, "POST", map[string]string{"email": "new@example.com", "password": long(257), "name": "A"}, "password"},
			{"register: name of 201 characters", "/api/v1/auth/register", e.c, "POST", map[string]string{"email": "new@example.com", "password": goodPassword, "name": strings.Repeat("名", 201)}, "name"},
			{"login: e-mail of 1 MB", "/api/v1/auth/login", e.c, "POST", map[string]string{"email": huge, "password": goodPassword}, "email"},
			{"login: control character in the e-mail", "/api/v1/auth/login", e.c, "POST", map[string]string{"email": "capped@example.com\x07", "password": goodPassword}, "email"},
			{"login: password of 257 bytes", "/api/v1/auth/login", e.c, "POST", map[string]string{"email": "capped@example.com", "password": long(257)}, "password"},
			{"login: otp of 65 bytes", "/api/v1/auth/login", e.c, "POST", map[string]string{"email": "capped@example.com", "password": goodPassword, "otp": long(65)}, "otp"},
			{"reset: e-mail of 1 MB", "/api/v1/auth/password-reset", e.c, "POST", map[string]string{"email": huge}, "email"},
			{"reset: NUL in the e-mail", "/api/v1/auth/password-reset", e.c, "POST", map[string]string{"email": "capped@example.com\x00"}, "email"},
			{"reset confirm: token of 129 bytes", "/api/v1/auth/password-reset/confirm", e.c, "POST", map[string]string{"token": long(129), "new_password": newPassword}, "token"},
			{"reset confirm: password of 257 bytes", "/api/v1/auth/password-reset/confirm", e.c, "POST", map[string]string{"token": "mct_x", "new_password": long(257)}, "new_password"},
			{"unlock: NUL in the e-mail", "/api/v1/auth/unlock", e.c, "POST", map[string]string{"email": "\x00@example.com"}, "email"},
			{"unlock confirm: token of 129 bytes", "/api/v1/auth/unlock/confirm", e.c, "POST", map[string]string{"token": long(129)}, "token"},
			{"change: current password of 257 bytes", "/api/v1/me/password", me, "POST", map[string]string{"current_password": long(257), "new_password": newPassword}, "current_password"},
			{"change: new password of 257 bytes", "/api/v1/me/password", me, "POST", map[string]string{"current_password": goodPassword, "new_password": long(257)}, "new_password"},
			{"erase: password of 257 bytes", "/api/v1/me/erase", me, "POST", map[string]string{"password": long(257)}, "password"},
			{"enrol: password of 257 bytes", "/api/v1/me/mfa/enroll", me, "POST", map[string]string{"password": long(257)}, "password"},
			{"disable: otp of 65 bytes", "/api/v1/me/mfa/disable", me, "POST", map[string]string{"password": goodPassword, "otp": long(65)}, "otp"},
			{"verify: code of 65 bytes", "/api/v1/me/mfa/verify", me, "POST", map[string]string{"code": long(65)}, "code"},
			{"profile: name of 801 bytes", "/api/v1/me", me, "PATCH", map[string]string{"name": long(801)}, "name"},
			{"profile: name of 201 characters", "/api/v1/me", me, "PATCH", map[string]string{"name": long(201)}, "name"},
			{"address: line1 of 201 characters", "/api/v1/me/addresses", me, "POST", with(sampleAddress(), "line1", long(201)), "line1"},
			{"address: zero-width space in the city", "/api/v1/me/addresses", me, "POST", with(sampleAddress(), "city", "Ber\u200blin"), "city"},
			{"address patch: city of 1 KB", "/api/v1/me/addresses/any", me, "PATCH", map[string]string{"city": long(1024)}, "city"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := e.snapshot()
				h.calls.Store(0)
				p := webtest.AssertProblem(t, tc.c.Do(tc.method, tc.path, tc.body), 422, "validation_failed")
				webtest.AssertFieldError(t, p, tc.field)
				e.assertUnchanged(before)
				if n := h.calls.Load(); n != 0 {
					t.Errorf("%d passwords hashed for a refused request", n)
				}
			})
		}
	})
}
