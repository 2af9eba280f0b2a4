package idem

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// MinSecret is the shortest server secret accepted, in bytes.
const MinSecret = 32

// keys are the sub-keys derived once from the server secret, one per use,
// so that no two uses share a key.
type keys struct {
	id    []byte // HMAC key of key_id
	scope []byte // HMAC key of scope_id
	anon  []byte // HMAC key of the scope of an anonymous request (its fingerprint)
	fp    []byte // HKDF salt of the per-key fingerprint key
	seal  []byte // HKDF salt of the per-key sealing key
}

func deriveKeys(secret []byte) (keys, error) {
	if len(secret) < MinSecret {
		return keys{}, fmt.Errorf("idem: the server secret has %d bytes, want at least %d", len(secret), MinSecret)
	}
	prk, err := hkdf.Extract(sha256.New, secret, []byte("mercato/idem/v1"))
	if err != nil {
		return keys{}, err
	}
	var k keys
	for _, d := range []struct {
		dst  *[]byte
		info string
	}{{&k.id, "key id"}, {&k.scope, "scope id"}, {&k.anon, "anonymous scope"}, {&k.fp, "fingerprint"}, {&k.seal, "seal"}} {
		if *d.dst, err = hkdf.Expand(sha256.New, prk, d.info, 32); err != nil {
			return keys{}, err
		}
	}
	return k, nil
}

// name is what a request's (scope, key) becomes: every value the store
// keeps or compares, none of which reveals the scope, the key or the
// request without both the server secret and the key.
type name struct {
	keyID   []byte // HMAC(id, kind ‖ scope ‖ key): the record's primary key
	scopeID []byte // HMAC(scope, kind ‖ scope): what Forget deletes by
	fp      []byte // HMAC(HKDF(kind ‖ scope ‖ key, fp), material)
	seal    []byte // AES-256 key: HKDF(kind ‖ scope ‖ key, seal)
}

// nameOf derives req's name. A request without a scope is scoped by its
// own material (kind 'a'), so it only ever meets a request identical to it.
func (k keys) nameOf(req Request) (name, error) {
	kind, scope := byte('s'), []byte(req.Scope)
	if req.Scope == "" {
		kind, scope = 'a', mac(k.anon, req.Material)
	}
	owner := lengthPrefixed(kind, scope)
	ikm := lengthPrefixed(kind, scope, []byte(req.Key))
	fpKey, err := hkdf.Key(sha256.New, ikm, k.fp, "fingerprint", 32)
	if err != nil {
		return name{}, err
	}
	sealKey, err := hkdf.Key(sha256.New, ikm, k.seal, "answer", 32)
	if err != nil {
		return name{}, err
	}
	return name{
		keyID:   mac(k.id, ikm),
		scopeID: mac(k.scope, owner),
		fp:      mac(fpKey, req.Material),
		seal:    sealKey,
	}, nil
}

// scopeID is the stored form of a named scope (see nameOf).
func (k keys) scopeID(scope string) []byte { return mac(k.scope, lengthPrefixed('s', []byte(scope))) }

func mac(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// lengthPrefixed encodes kind and parts unambiguously (each part preceded
// by its length), so that ("ab", "c") and ("a", "bc") differ.
func lengthPrefixed(kind byte, parts ...[]byte) []byte {
	b := []byte{kind}
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// Stored record layout: version byte, 12-byte nonce, then the GCM
// ciphertext of the encoded Outcome, authenticated with key_id ‖
// fingerprint as additional data (a record moved to another row or
// fingerprint does not open).
const (
	recordV1  = 1
	nonceSize = 12
)

// ErrBadRecord marks a stored record that does not open or decode: tampered
// with, truncated, or sealed under another key.
var ErrBadRecord = errors.New("idem: stored record is corrupt")

func seal(n name, o Outcome) ([]byte, error) {
	gcm, err := newGCM(n.seal)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(o.Body)+64)
	out[0] = recordV1
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return nil, err
	}
	return gcm.Seal(out, out[1:1+nonceSize], encodeOutcome(o), aad(n)), nil
}

// open is seal's inverse; any mismatch is ErrBadRecord.
func open(n name, rec []byte) (Outcome, error) {
	if len(rec) < 1+nonceSize || rec[0] != recordV1 {
		return Outcome{}, ErrBadRecord
	}
	gcm, err := newGCM(n.seal)
	if err != nil {
		return Outcome{}, err
	}
	plain, err := gcm.Open(nil, rec[1:1+nonceSize], rec[1+nonceSize:], aad(n))
	if err != nil {
		return Outcome{}, ErrBadRecord
	}
	return decodeOutcome(plain)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func aad(n name) []byte { return append(append([]byte{}, n.keyID...), n.fp...) }

// Limits of a decoded Outcome.
const (
	maxContentType = 255
	minStatus      = 100
	maxStatus      = 999
)

// encodeOutcome lays o out as: status (2 bytes, big-endian), content type
// length (uvarint), content type, body (the rest).
func encodeOutcome(o Outcome) []byte {
	b := make([]byte, 2, 2+binary.MaxVarintLen64+len(o.ContentType)+len(o.Body))
	binary.BigEndian.PutUint16(b, uint16(o.Status))
	b = binary.AppendUvarint(b, uint64(len(o.ContentType)))
	b = append(b, o.ContentType...)
	return append(b, o.Body...)
}

// decodeOutcome is encodeOutcome's inverse. It accepts only what
// encodeOutcome writes for a valid Outcome (a status of 100–999, a content
// type of at most 255 bytes, minimally encoded lengths) and fails with
// ErrBadRecord otherwise; it never panics. Body is never nil.
func decodeOutcome(b []byte) (Outcome, error) {
	if len(b) < 3 {
		return Outcome{}, ErrBadRecord
	}
	status := int(binary.BigEndian.Uint16(b))
	n, w := binary.Uvarint(b[2:])
	if w <= 0 || w != uvarintLen(n) || n > maxContentType || status < minStatus || status > maxStatus {
		return Outcome{}, ErrBadRecord
	}
	rest := b[2+w:]
	if uint64(len(rest)) < n {
		return Outcome{}, ErrBadRecord
	}
	return Outcome{
		Status:      status,
		ContentType: string(rest[:n]),
		Body:        append([]byte{}, rest[n:]...),
	}, nil
}

func uvarintLen(n uint64) int { return len(binary.AppendUvarint(nil, n)) }

// validOutcome reports whether o can be recorded (decodeOutcome takes it back).
func validOutcome(o Outcome) error {
	if o.Status < minStatus || o.Status > maxStatus || len(o.ContentType) > maxContentType {
		return fmt.Errorf("idem: outcome status %d or content type of %d bytes out of range", o.Status, len(o.ContentType))
	}
	return nil
}
