package secret_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"mercato/internal/platform/secret"
)

// A sealed value opens for its id, purpose and server secret only, never
// holds the plain text, and two seals of one value differ (fresh nonces).
func TestSealer(t *testing.T) {
	server := bytes.Repeat([]byte{7}, secret.MinBytes)
	other := bytes.Repeat([]byte{8}, secret.MinBytes)
	mk := func(key []byte, purpose string) *secret.Sealer {
		s, err := secret.NewSealer(key, purpose)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := mk(server, "test/a")
	plain := []byte("whsec_the partner's signing key")
	sealed := s.Seal("row-1", plain)
	if strings.Contains(sealed, "partner") || bytes.Contains([]byte(sealed), plain) {
		t.Fatalf("the sealed value shows the plain text: %s", sealed)
	}
	if again := s.Seal("row-1", plain); again == sealed {
		t.Error("two seals of one value are equal: the nonce is not fresh")
	}
	got, err := s.Open("row-1", sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	cases := []struct {
		name   string
		sealer *secret.Sealer
		id     string
		value  string
	}{
		{"another row", s, "row-2", sealed},
		{"another purpose", mk(server, "test/b"), "row-1", sealed},
		{"another server secret", mk(other, "test/a"), "row-1", sealed},
		{"not base64", s, "row-1", "%%%"},
		{"truncated", s, "row-1", sealed[:10]},
		{"empty", s, "row-1", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, err := c.sealer.Open(c.id, c.value); !errors.Is(err, secret.ErrUnsealed) || got != nil {
				t.Errorf("Open = %q, %v; want ErrUnsealed", got, err)
			}
		})
	}
	if _, err := secret.NewSealer(server[:secret.MinBytes-1], "test/a"); err == nil {
		t.Error("NewSealer accepted a short server secret")
	}
}

// TestSealedValuesStillOpen pins the sealed format and both key
// derivations: values sealed by earlier versions (kept in databases) must
// open after any change here.
func TestSealedValuesStillOpen(t *testing.T) {
	server := []byte("0123456789abcdef0123456789abcdef")
	for _, c := range []struct {
		name       string
		salt, info string
		id, sealed string
		want       string
	}{
		{"NewSealer", "mercato/seal/v1", "logistics/warehouse-secret", "east", pinnedSeal, "whsec_pinned"},
		{"webhooks' endpoint secrets", "mercato/webhooks/v1", "endpoint secret", "ep_1", pinnedWebhookSeal, "whsec_pinned"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := secret.NewSealerDerived(server, c.salt, c.info)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Open(c.id, c.sealed)
			if err != nil || string(got) != c.want {
				t.Fatalf("Open = %q, %v; want %q (fresh: %s)", got, err, c.want, s.Seal(c.id, []byte(c.want)))
			}
		})
	}
}

// Sealed by the code before this test (AES-256-GCM, version byte 1).
const (
	pinnedSeal        = "AVgq63KyaWHL7TxlqimLzrPVKWmfGbv2p/GxFjplYj365CGiWfbLfYg="
	pinnedWebhookSeal = "AZud5ko3Q0hz2H4Z1r9MW8tPRVyk0nI2aBEEjIJQhLqGkkQdSIhwTeI="
)
