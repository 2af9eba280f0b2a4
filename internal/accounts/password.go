package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/argon2"

	"mercato/internal/platform/errs"
)

// HashParams are argon2id's cost parameters.
type HashParams struct {
	MemoryKiB   uint32 // memory per hash in KiB
	Iterations  uint32 // passes over the memory
	Parallelism uint8  // lanes
	SaltLen     int    // bytes of random salt
	KeyLen      uint32 // bytes of derived key
}

// DefaultHashParams are the production parameters: OWASP's argon2id minimum
// (19 MiB, 2 iterations, 1 lane), ~47 ms per hash on the reference machine.
var DefaultHashParams = HashParams{MemoryKiB: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// hasher hashes and verifies passwords with argon2id, at most slots at a
// time, so that a flood of logins queues instead of exhausting memory
// (each hash holds MemoryKiB while it runs), and with at most queue
// callers waiting for a slot: beyond that it sheds load at once (429
// rate_limited, Retry-After 1) instead of making every caller wait longer.
// Safe for concurrent use.
type hasher struct {
	p       HashParams
	slots   chan struct{}
	queue   int64        // the most callers waiting for a slot
	waiting atomic.Int64 // callers waiting for a slot now

	// derive is argon2.IDKey; tests count (or block) the hashes through it.
	derive func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte

	dummyOnce sync.Once
	dummy     string // a hash of a random password, verified for unknown users
}

func newHasher(p HashParams, slots, queue int) *hasher {
	if p.MemoryKiB == 0 {
		p = DefaultHashParams
	}
	if p.SaltLen == 0 {
		p.SaltLen = 16
	}
	if p.KeyLen == 0 {
		p.KeyLen = 32
	}
	if slots <= 0 {
		slots = runtime.GOMAXPROCS(0)
	}
	if queue <= 0 {
		queue = 64
	}
	return &hasher{p: p, slots: make(chan struct{}, slots), queue: int64(queue), derive: argon2.IDKey}
}

// errBusy is the answer when too many hashes wait already.
var errBusy = &errs.Error{Op: "accounts.hash", Kind: errs.RateLimited, Code: string(errs.CodeRateLimited),
	Msg: "the server is busy checking passwords; try again shortly", RetryAfter: 1}

// busy reports whether the queue of waiting hashes is at its bound, so
// that a caller can shed load before doing any other work.
func (h *hasher) busy() bool {
	return len(h.slots) == cap(h.slots) && h.waiting.Load() >= h.queue
}

// acquire takes a hashing slot: at once when one is free, after waiting
// when fewer than queue callers wait already (errBusy otherwise), or not
// at all when ctx ends first (Unavailable).
func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	if h.waiting.Add(1) > h.queue {
		h.waiting.Add(-1)
		return errBusy
	}
	defer h.waiting.Add(-1)
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return errs.E("accounts.hash", errs.Unavailable, "the server is busy; try again", ctx.Err())
	}
}

func (h *hasher) release() { <-h.slots }

// Hash returns the PHC-style encoding of password's argon2id hash with a
// fresh salt: $argon2id$v=19$m=<KiB>,t=<iter>,p=<lanes>$<salt>$<key>
// (salt and key in unpadded standard base64).
func (h *hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", errs.E("accounts.hash", errs.Internal, err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	key := h.derive([]byte(password), salt, h.p.Iterations, h.p.MemoryKiB, h.p.Parallelism, h.p.KeyLen)
	h.release()
	return encodeHash(h.p, salt, key), nil
}

// Verify reports whether password matches encoded, using the parameters
// stored in encoded. An empty or unreadable encoded hash (an erased account)
// is verified against the dummy hash instead, so that it costs the same time
// and never matches.
func (h *hasher) Verify(ctx context.Context, password, encoded string) (bool, error) {
	p, salt, key, err := decodeHash(encoded)
	real := err == nil
	if !real {
		p, salt, key, _ = decodeHash(h.dummyHash())
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	got := h.derive([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(key)))
	h.release()
	return real && subtle.ConstantTimeCompare(got, key) == 1, nil
}

// dummyHash is a hash with h's parameters of a random password nobody
// knows, made once on first use.
func (h *hasher) dummyHash() string {
	h.dummyOnce.Do(func() {
		salt := make([]byte, h.p.SaltLen)
		rand.Read(salt)
		key := make([]byte, h.p.KeyLen)
		rand.Read(key)
		h.dummy = encodeHash(h.p, salt, key)
	})
	return h.dummy
}

var b64 = base64.RawStdEncoding

func encodeHash(p HashParams, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.MemoryKiB, p.Iterations, p.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key))
}

var errBadHash = errors.New("accounts: not an argon2id hash")

// maxHashIterations bounds the time cost a stored hash may ask of a
// verification (ours use 2).
const maxHashIterations = 16

func decodeHash(s string) (p HashParams, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism); err != nil {
		return p, nil, nil, errBadHash
	}
	if p.MemoryKiB == 0 || p.Iterations == 0 || p.Iterations > maxHashIterations || p.Parallelism == 0 || p.MemoryKiB > 1<<21 {
		return p, nil, nil, errBadHash
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) == 0 {
		return p, nil, nil, errBadHash
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 {
		return p, nil, nil, errBadHash
	}
	p.SaltLen, p.KeyLen = len(salt), uint32(len(key))
	if encodeHash(p, salt, key) != s { // one spelling per hash: no signs, spaces or leading zeros
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}
