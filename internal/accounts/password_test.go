package accounts

import (
	"context"
	"errors"
	"strings"
	"testing"

	"mercato/internal/platform/errs"
)

func TestHashProductionParams(t *testing.T) {
	h := newHasher(HashParams{}, 0, 0)
	if h.p != DefaultHashParams || h.p.MemoryKiB < 19*1024 || h.p.Iterations != 2 || h.p.Parallelism != 1 {
		t.Fatalf("default params = %+v, want 19 MiB, t=2, p=1", h.p)
	}
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Count(enc, "$") != 5 {
		t.Errorf("hash %q is not a PHC argon2id string with the production parameters", enc)
	}
	enc2, _ := h.Hash(ctx, "correct horse battery")
	if enc == enc2 {
		t.Errorf("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		name, password, encoded string
		want                    bool
	}{
		{"right password", "correct horse battery", enc, true},
		{"wrong password", "correct horse batterY", enc, false},
		{"empty hash (erased)", "correct horse battery", "", false},
		{"garbage hash", "correct horse battery", "$argon2id$v=19$m=x$y$z", false},
		{"other parameters verify by the stored ones", "pw-with-test-params", mustHash(t, newHasher(testHash, 1, 0), "pw-with-test-params"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := h.Verify(ctx, tc.password, tc.encoded)
			if err != nil || ok != tc.want {
				t.Errorf("Verify = %v, %v; want %v", ok, err, tc.want)
			}
		})
	}
}

func mustHash(t *testing.T, h *hasher, pw string) string {
	t.Helper()
	enc, err := h.Hash(context.Background(), pw)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func TestHashSlots(t *testing.T) {
	h := newHasher(testHash, 2, 0)
	t.Run("waiting honours the context", func(t *testing.T) {
		h.slots <- struct{}{}
		h.slots <- struct{}{}
		defer func() { <-h.slots; <-h.slots }()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := h.Hash(ctx, "whatever-password")
		if !errs.Is(err, errs.Unavailable) || !errors.Is(err, context.Canceled) {
			t.Errorf("Hash with full slots and a cancelled context = %v, want Unavailable", err)
		}
	})
	t.Run("a freed slot lets the next hash run", func(t *testing.T) {
		if _, err := h.Hash(context.Background(), "whatever-password"); err != nil {
			t.Errorf("Hash after the slots were freed: %v", err)
		}
		if len(h.slots) != 0 {
			t.Errorf("%d slots still held after Hash returned", len(h.slots))
		}
	})
}

func TestPasswordPolicy(t *testing.T) {
	tests := []struct {
		password string
		ok       bool
	}{
		{"short", false},
		{"123456789", false},
		{"1234567890", false},
		{"qwertyuiop", false},
		{"QWERTYUIOP", false},
		{"poiuytrewq", false},
		{"aaaaaaaaaaaa", false},
		{"password123", false},
		{"Password123!", false},
		{"PASSWORD2024", false},
		{"P@ssw0rd2024", false},
		{"!!password!!", false},
		{"passwordpassword", false},
		{"iloveyou123", false},
		{"Welcome@123", false},
		{"woaini1314", false},
		{"dragon12345", false},
		{"MonkeyMonkey", false},
		{"1qaz2wsx3edc", false},
		{"abcdefghij", false},
		{"mercato2026", false},
		{goodPassword, true},
		{"Tr0ub4dor&3-horse", true},
		{"correct horse battery staple", true},
		{"我的密码很长很安全的句子", true},
		{strings.Repeat("x", 257) + "y", false},
	}
	for _, tc := range tests {
		t.Run(tc.password[:min(len(tc.password), 24)], func(t *testing.T) {
			var v errs.Validation
			checkPassword(&v, "password", tc.password)
			if got := len(v.Fields) == 0; got != tc.ok {
				t.Errorf("checkPassword(%q) ok = %v, want %v (%v)", tc.password, got, tc.ok, v.Fields)
			}
		})
	}
	t.Run("the list has a few hundred entries", func(t *testing.T) {
		commonOnce.Do(loadCommon)
		if n := len(commonFull) + len(commonBase); n < 300 {
			t.Errorf("%d common passwords, want a few hundred", n)
		}
		for pw := range commonFull {
			if len([]rune(pw)) < MinPasswordLen {
				t.Errorf("listed password %q is shorter than %d: the length rule refuses it already", pw, MinPasswordLen)
			}
		}
	})
}

func TestEmailValidation(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"a@example.com", true},
		{"first.last+tag@mail.example.co.uk", true},
		{"a@b", false},
		{"@example.com", false},
		{"a@", false},
		{"a b@example.com", false},
		{"Alice <a@example.com>", false},
		{"a@@example.com", false},
		{"a@-example.com", false},
		{"a@example..com", false},
		{"a@example.com.", false},
		{strings.Repeat("a", 65) + "@example.com", false},
		{"", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if _, got := NormalizeEmail(tc.in); got != tc.ok {
				t.Errorf("NormalizeEmail(%q) ok = %v, want %v", tc.in, got, tc.ok)
			}
		})
	}
}
