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
