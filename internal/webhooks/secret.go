package webhooks

import (
	"errors"

	"mercato/internal/platform/secret"
)

// SecretPrefix starts every endpoint secret: "whsec_" + standard padded
// base64 of the key bytes (Standard Webhooks).
const SecretPrefix = secret.StandardPrefix

// newSecret returns a fresh endpoint secret.
func newSecret() string { return secret.NewStandardSecret() }

// Sign returns the Standard Webhooks signature of body for the message id
// and the unix timestamp ts, under each secret in turn, space-separated:
// "v1,<base64 HMAC-SHA256(key, id.ts.body)>" per secret.
func Sign(secrets []string, id string, ts int64, body []byte) (string, error) {
	return secret.StandardSign(secrets, id, ts, body)
}

// sealer seals endpoint secrets at rest (secret.Sealer: AES-256-GCM under
// a key derived from the server secret, bound to the endpoint id), so that
// a sealed secret copied to another row does not open. Its key derivation
// is the one webhooks sealed with before package secret had a Sealer.
type sealer struct {
	s *secret.Sealer // nil without a server secret
}

var errNoServerSecret = errors.New("webhooks: no server secret to seal endpoint secrets with")

func newSealer(serverSecret []byte) *sealer {
	s, err := secret.NewSealerDerived(serverSecret, "mercato/webhooks/v1", "endpoint secret")
	if err != nil {
		return &sealer{} // no (or too short a) server secret: sealing is refused
	}
	return &sealer{s: s}
}

// seal returns the sealed form of plain for endpoint id.
func (s *sealer) seal(id, plain string) (string, error) {
	if s.s == nil {
		return "", errNoServerSecret
	}
	return s.s.Seal(id, []byte(plain)), nil
}

// open is seal's inverse.
func (s *sealer) open(id, sealed string) (string, error) {
	if s.s == nil {
		return "", errNoServerSecret
	}
	plain, err := s.s.Open(id, sealed)
	if err != nil {
		return "", errors.New("webhooks: sealed secret does not open under this server secret")
	}
	return string(plain), nil
}
