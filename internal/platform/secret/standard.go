package secret

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks scheme (standardwebhooks.com), which the shop signs
// its outbound webhooks with and verifies partners' signed updates by: a
// secret is "whsec_" and the standard padded base64 of 24 to 64 key bytes;
// the signed content is "<id>.<unix seconds>.<body>"; a signature header is
// a space-separated list of "v1,<base64 HMAC-SHA256>", one per key (several
// during a rotation).

// StandardPrefix starts every Standard Webhooks secret.
const StandardPrefix = "whsec_"

// standardKeyBytes is the length of a generated key (the spec allows 24–64).
const standardKeyBytes = 32

// NewStandardSecret returns a fresh Standard Webhooks secret.
func NewStandardSecret() string {
	b := make([]byte, standardKeyBytes)
	rand.Read(b) // never fails (crypto/rand)
	return StandardPrefix + base64.StdEncoding.EncodeToString(b)
}

// StandardKey returns the HMAC key of a Standard Webhooks secret: the bytes
// its base64 encodes. The error never holds the secret.
func StandardKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, StandardPrefix)
	if !ok {
		return nil, errors.New("secret: a Standard Webhooks secret starts with whsec_")
	}
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(k) < 24 || len(k) > 64 {
		return nil, errors.New("secret: a Standard Webhooks secret is base64 of 24 to 64 bytes")
	}
	return k, nil
}

// StandardMAC is the HMAC-SHA256 under key of the signed content of body
// sent as message id at unix time ts.
func StandardMAC(key []byte, id string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// StandardSign returns the signature header of body as message id at unix
// time ts under each secret in turn.
func StandardSign(secrets []string, id string, ts int64, body []byte) (string, error) {
	var b strings.Builder
	for i, s := range secrets {
		key, err := StandardKey(s)
		if err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(StandardMAC(key, id, ts, body)))
	}
	return b.String(), nil
}

// Why a signed message is refused by VerifyStandard. Each error's text can
// be shown to the sender: it names no key and no signature.
var (
	ErrStandardHeaders   = errors.New("the message lacks its webhook-id, webhook-timestamp or webhook-signature header")
	ErrStandardTimestamp = errors.New("webhook-timestamp is not unix seconds")
	ErrStandardStale     = errors.New("webhook-timestamp is too far from the server's clock")
	ErrStandardSignature = errors.New("the message's signature does not verify")
)

// VerifyStandard checks the headers of a signed message — id
// (webhook-id), ts (webhook-timestamp) and sigs (webhook-signature) —
// against body: one of the v1 signatures must be the MAC under one of keys
// (compared in constant time), and the timestamp within tolerance of now.
func VerifyStandard(id, ts, sigs string, body []byte, keys [][]byte, now time.Time, tolerance time.Duration) error {
	if id == "" || ts == "" || sigs == "" {
		return ErrStandardHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrStandardTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStandardStale
	}
	macs := make([][]byte, len(keys))
	for i, k := range keys {
		macs[i] = StandardMAC(k, id, sec, body)
	}
	for _, s := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		for _, m := range macs {
			if hmac.Equal(got, m) {
				return nil
			}
		}
	}
	return ErrStandardSignature
}
