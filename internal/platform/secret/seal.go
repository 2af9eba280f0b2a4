package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// Sealer keeps small secrets that the shop must be able to read again (an
// HMAC key a partner signs with, which a hash cannot verify) sealed at rest:
// AES-256-GCM under a key derived (HKDF-SHA256) from the server secret and
// a purpose, with the owning row's id as additional data, so that a sealed
// value copied to another row, or read under another purpose, does not open.
// A copy of the database alone opens nothing. Safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// sealVersion is the first byte of a sealed value (before base64), so that
// the format can change later.
const sealVersion = 1

// ErrUnsealed is returned by Open for a value that is malformed or does not
// open under this server secret, purpose and id. It never holds the value.
var ErrUnsealed = errors.New("secret: the sealed value does not open")

// NewSealer returns a Sealer for purpose (a constant naming the use, such as
// "logistics/warehouse-secret") under the server secret serverSecret, which
// must be at least MinBytes long.
func NewSealer(serverSecret []byte, purpose string) (*Sealer, error) {
	return NewSealerDerived(serverSecret, "mercato/seal/v1", purpose)
}

// NewSealerDerived is NewSealer with the key derived under its own HKDF
// salt and info: for a module whose values were sealed before NewSealer
// existed (webhooks' endpoint secrets), so that they still open.
func NewSealerDerived(serverSecret []byte, salt, info string) (*Sealer, error) {
	if len(serverSecret) < MinBytes {
		return nil, errors.New("secret: a sealer needs the server secret")
	}
	key, err := hkdf.Key(sha256.New, serverSecret, []byte(salt), info, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal returns plain sealed for the row id: base64 of the version byte, a
// random nonce and the ciphertext.
func (s *Sealer) Seal(id string, plain []byte) string {
	n := s.aead.NonceSize()
	out := make([]byte, 1+n, 1+n+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:]) // never fails (crypto/rand)
	out = s.aead.Seal(out, out[1:1+n], plain, []byte(id))
	return base64.StdEncoding.EncodeToString(out)
}

// Open is Seal's inverse; ErrUnsealed when sealed is not a value Seal made
// for id under this server secret and purpose.
func (s *Sealer) Open(id, sealed string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(sealed)
	n := s.aead.NonceSize()
	if err != nil || len(b) < 1+n || b[0] != sealVersion {
		return nil, ErrUnsealed
	}
	plain, err := s.aead.Open(nil, b[1:1+n], b[1+n:], []byte(id))
	if err != nil {
		return nil, ErrUnsealed
	}
	return plain, nil
}
