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
