package webhooks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// SecretPrefix starts every endpoint secret: "whsec_" + standard padded
// base64 of the key bytes (Standard Webhooks).
const SecretPrefix = "whsec_"

// secretBytes is the length of a generated key (the spec allows 24–64).
const secretBytes = 32

// newSecret returns a fresh endpoint secret.
func newSecret() string {
	b := make([]byte, secretBytes)
	rand.Read(b) // never fails (crypto/rand)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// secretKey returns the HMAC key of a secret: the bytes its base64 encodes.
func secretKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, errors.New("webhooks: secret lacks the whsec_ prefix")
	}
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(k) < 24 || len(k) > 64 {
		return nil, errors.New("webhooks: secret is not base64 of 24 to 64 bytes")
	}
	return k, nil
}

// Sign returns the Standard Webhooks signature of body for the message id
// and the unix timestamp ts, under each secret in turn, space-separated:
// "v1,<base64 HMAC-SHA256(key, id.ts.body)>" per secret.
func Sign(secrets []string, id string, ts int64, body []byte) (string, error) {
	var b strings.Builder
	for i, s := range secrets {
		key, err := secretKey(s)
		if err != nil {
			return "", err
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id))
		m.Write([]byte{'.'})
		m.Write([]byte(strconv.FormatInt(ts, 10)))
		m.Write([]byte{'.'})
		m.Write(body)
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	return b.String(), nil
}

// sealer seals endpoint secrets at rest with AES-256-GCM under a key derived
// (HKDF-SHA256) from the server secret, bound to the endpoint id (the AAD),
// so that a sealed secret copied to another row does not open.
type sealer struct {
	aead cipher.AEAD // nil without a server secret
}

// sealVersion is the first byte of a sealed value (before base64).
const sealVersion = 1

var errNoServerSecret = errors.New("webhooks: no server secret to seal endpoint secrets with")

func newSealer(serverSecret []byte) *sealer {
	if len(serverSecret) == 0 {
		return &sealer{}
	}
	key, err := hkdf.Key(sha256.New, serverSecret, []byte("mercato/webhooks/v1"), "endpoint secret", 32)
	if err != nil {
		panic(err) // 32 bytes of SHA-256 HKDF cannot fail
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &sealer{aead: aead}
}

// seal returns the sealed form of secret for endpoint id: base64 of the
// version byte, the nonce and the ciphertext.
func (s *sealer) seal(id, secret string) (string, error) {
	if s.aead == nil {
		return "", errNoServerSecret
	}
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(secret)+s.aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:])
	out = s.aead.Seal(out, out[1:1+s.aead.NonceSize()], []byte(secret), []byte(id))
	return base64.StdEncoding.EncodeToString(out), nil
}

// open is seal's inverse.
func (s *sealer) open(id, sealed string) (string, error) {
	if s.aead == nil {
		return "", errNoServerSecret
	}
	b, err := base64.StdEncoding.DecodeString(sealed)
	n := s.aead.NonceSize()
	if err != nil || len(b) < 1+n || b[0] != sealVersion {
		return "", errors.New("webhooks: sealed secret is malformed")
	}
	plain, err := s.aead.Open(nil, b[1:1+n], b[1+n:], []byte(id))
	if err != nil {
		return "", errors.New("webhooks: sealed secret does not open under this server secret")
	}
	return string(plain), nil
}
