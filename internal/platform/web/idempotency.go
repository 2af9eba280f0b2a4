package web

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/idem"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Migrations is module "web"'s schema history: its last step drops the old
// idempotency_keys table. The records now live in idem.Migrations(), which
// a process serving Idempotency must apply too.
func Migrations() migrate.Source { return migrate.Embedded("web", migrations) }

// MaxIdempotencyKey is the longest Idempotency-Key accepted (longer: 400).
const MaxIdempotencyKey = 255

// HeaderReplayed marks a response replayed from an idempotency record.
const HeaderReplayed = "Idempotent-Replayed"

// A Mutation is the work of a state-changing POST: Prepare runs first,
// outside any transaction (slow work: password hashing, calls to a payment
// provider); Commit runs inside the transaction of the Committer (one InTx,
// or a group-commit unit) and returns the response: its status and a value
// encoded as the JSON body (nil: no body). Commit may run more than once
// (a group-commit batch that is retried): only its effect in tx may count.
type Mutation struct {
	Prepare func(ctx context.Context) error // optional
	Commit  func(ctx context.Context, tx *sqldb.Tx) (status int, body any, err error)
	// Scope, for a route anonymous callers use, names the identity the
	// request acts for (register, login: the lower-cased e-mail address), so
	// that its keys are that identity's. Ignored for a signed-in caller. An
	// anonymous request without one is scoped by its own body (package idem).
	Scope string
	// OnReused, when set, runs when the key was already used with another
	// request, before the 422 idempotency_key_reused is written; an error it
	// returns is written instead. Login counts this as a failed login, so
	// that the 422 is no password oracle (and may answer 429).
	OnReused func(ctx context.Context) error
}

// IdempotencyConfig configures an Idempotency.
type IdempotencyConfig struct {
	// Secret is the server secret (secret.Load), at least idem.MinSecret
	// bytes. Empty: a random secret for this process alone — its records
	// are unreachable after a restart or from another replica, so only tests
	// leave it empty (a warning is logged).
	Secret []byte
	// Retention is how long a key is kept (default and minimum 24h).
	Retention time.Duration
	// WaitTimeout is how long a duplicate waits for the request holding its
	// key before it gets 409 idempotency_key_in_use (default 10s).
	WaitTimeout time.Duration
	// LockConns caps the PostgreSQL connections that hold advisory locks for
	// running keyed requests (default 32).
	LockConns int
	// Logger receives panics in Commit and the pruner's errors (nil: slog.Default).
	Logger *slog.Logger
}

// Idempotency makes POSTs idempotent per API.md, through an idem.Store: the
// first answer to a caller's key is recorded in the same transaction as the
// effect, sealed, and replayed to every later request with that key and the
// same method, path and body. Safe for concurrent use; replicas sharing a
// database and a secret coordinate (package idem).
type Idempotency struct {
	store *idem.Store
}

// NewIdempotency returns an Idempotency recording keys in db, whose schema
// must include idem.Migrations(). Close it to release its lock connections.
// It panics if cfg.Secret is set but shorter than idem.MinSecret (a
// programming error: secret.Load returns no such secret).
func NewIdempotency(db *sqldb.DB, cfg IdempotencyConfig) *Idempotency {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Secret) == 0 {
		cfg.Secret = make([]byte, idem.MinSecret)
		rand.Read(cfg.Secret)
		cfg.Logger.Warn("web.Idempotency has no server secret: idempotency keys will not survive a restart")
	}
	s, err := idem.New(db, idem.Config{Secret: cfg.Secret, Retention: cfg.Retention,
		WaitTimeout: cfg.WaitTimeout, LockConns: cfg.LockConns, Logger: cfg.Logger})
	if err != nil {
		panic(err)
	}
	return &Idempotency{store: s}
}

// Store is the idem.Store underneath, for Forget (erasure: the scopes are
// UserScope and AnonymousScope) and for non-HTTP callers sharing it.
func (s *Idempotency) Store() *idem.Store { return s.store }

// Close releases the lock connections (PostgreSQL). Run must not be called after.
func (s *Idempotency) Close() error { return s.store.Close() }

// Prune deletes the keys older than Retention and reports how many.
func (s *Idempotency) Prune(ctx context.Context) (int64, error) { return s.store.Prune(ctx) }

// UserScope is the idempotency scope of a signed-in user's requests.
func UserScope(userID string) string { return "u:" + userID }

// AnonymousScope is the scope of anonymous requests that name identity
// (Mutation.Scope).
func AnonymousScope(identity string) string { return "anon:" + identity }

// recorded reports whether an answer with status is recorded for its key:
// success, payment declined and domain conflicts are; every other failure
// (400, 401, 403, 404, 413, 422, 429, 5xx) leaves no trace and no effect.
func recorded(status int) bool {
	return status >= 200 && status < 300 || status == http.StatusPaymentRequired || status == http.StatusConflict
}

// unrecorded carries an answer that Commit returned as a status outside
// recorded(): as an error it rolls the effect back, and it is not recorded.
type unrecorded struct{ answer idem.Outcome }

func (unrecorded) Error() string { return "web: answer is not recorded" }

// Run executes m for request r and writes the response. Without an
// Idempotency-Key header it runs Prepare and then Commit (in one unit of c).
// With one, the key is scoped to the caller (UserScope when signed in, "c:"
// + channel for a channel token, AnonymousScope(m.Scope) for an anonymous
// request naming an identity, else the request itself) and fingerprinted
// with method, path and raw body (web.Body):
//   - a record of the key with the same fingerprint is replayed (status,
//     content type and body as first written, plus Idempotent-Replayed:
//     true) and nothing runs; another fingerprint is 422
//     idempotency_key_reused (after m.OnReused);
//   - while a request with the key runs (in this process, or on PostgreSQL on
//     any replica) a duplicate waits up to WaitTimeout and then looks again,
//     or gets 409 idempotency_key_in_use;
//   - otherwise m runs and its answer is recorded in the transaction of its
//     effect when it is recorded(); a recorded error (402, 409) rolls the
//     effect back and records its problem document. An answer that is not
//     recorded rolls the effect back and frees the key.
//
// Once Prepare has succeeded, Commit runs even if the client goes away.
func (s *Idempotency) Run(w http.ResponseWriter, r *http.Request, c sqldb.Committer, m Mutation) {
	const op = "web.Idempotency"
	key := r.Header.Get(HeaderIdempotencyKey)
	if len(key) > MaxIdempotencyKey || !printableASCII(key) {
		Error(w, r, errs.E(op, errs.Malformed, "the Idempotency-Key header must be 1 to 255 printable ASCII characters",
			[]errs.FieldError{{Field: HeaderIdempotencyKey, Message: "at most 255 printable ASCII characters"}}))
		return
	}
	req := idem.Request{Key: key, Prepare: m.Prepare, Record: func(err error) (idem.Outcome, bool) {
		var u unrecorded
		if errors.As(err, &u) || !recorded(StatusOf(errs.KindOf(err))) {
			return idem.Outcome{}, false
		}
		return problemAnswer(r, err), true
	}}
	if key != "" {
		body, err := Body(r)
		if err != nil {
			Error(w, r, err)
			return
		}
		req.Scope = scopeOf(r, m)
		req.Material = material(r.Method, r.URL.Path, body)
	}
	res, err := s.store.Do(r.Context(), c, req, func(ctx context.Context, tx *sqldb.Tx) (idem.Outcome, error) {
		status, body, err := m.Commit(ctx, tx)
		if err != nil {
			return idem.Outcome{}, err
		}
		a, err := encodeAnswer(status, body)
		if err == nil && !recorded(status) {
			err = unrecorded{a}
		}
		return a, err
	})
	var u unrecorded
	switch {
	case err == nil:
		if res.Replayed {
			w.Header().Set(HeaderReplayed, "true")
		}
		writeBody(w, res.Status, res.ContentType, res.Body)
	case errors.As(err, &u):
		writeBody(w, u.answer.Status, u.answer.ContentType, u.answer.Body)
	case errors.Is(err, idem.ErrKeyReused):
		if m.OnReused != nil {
			if herr := m.OnReused(context.WithoutCancel(r.Context())); herr != nil {
				Error(w, r, herr)
				return
			}
		}
		Error(w, r, errs.E(op, errs.Invalid, errs.CodeIdemReused,
			"this Idempotency-Key was used with another request; use a new key for a new request"))
	case errors.Is(err, idem.ErrKeyInUse):
		Error(w, r, errs.E(op, errs.Conflict, errs.CodeIdemInUse,
			"a request with this Idempotency-Key is still being processed; retry later"))
	default:
		Error(w, r, err)
	}
}

// encodeAnswer encodes a Commit's answer as it is written and recorded.
func encodeAnswer(status int, body any) (idem.Outcome, error) {
	if body == nil {
		return idem.Outcome{Status: status, Body: []byte{}}, nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return idem.Outcome{}, errs.E("web.Idempotency", errs.Internal, err)
	}
	return idem.Outcome{Status: status, ContentType: contentTypeJSON, Body: b}, nil
}

// problemAnswer encodes err's problem document as Error would write it.
func problemAnswer(r *http.Request, err error) idem.Outcome {
	p := ProblemOf(err)
	p.Instance = RequestID(r.Context())
	b, _ := json.Marshal(p)
	return idem.Outcome{Status: p.Status, ContentType: contentTypeProblem, Body: b}
}

// scopeOf is the caller's idempotency scope (see Run); "" lets idem scope
// an anonymous request that names nobody by its own material.
func scopeOf(r *http.Request, m Mutation) string {
	if p, ok := PrincipalFrom(r.Context()); ok {
		switch {
		case p.UserID != "":
			return UserScope(p.UserID)
		case p.Channel != "":
			return "c:" + p.Channel
		}
	}
	if m.Scope != "" {
		return AnonymousScope(m.Scope)
	}
	return ""
}

// material is what a request's fingerprint covers: method, path and body.
func material(method, path string, body []byte) []byte {
	b := make([]byte, 0, len(method)+len(path)+len(body)+2)
	b = append(append(b, method...), 0)
	b = append(append(b, path...), 0)
	return append(b, body...)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
