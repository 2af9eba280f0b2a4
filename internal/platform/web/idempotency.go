package web

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

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
}

// IdempotencyConfig configures an Idempotency.
type IdempotencyConfig struct {
	// Retention is how long a key is kept (default and minimum 24h).
	Retention time.Duration
	// WaitTimeout is how long a duplicate waits for the request holding its
	// key before it gets 409 idempotency_key_in_use (default 10s).
	WaitTimeout time.Duration
	// LockConns caps the PostgreSQL connections that hold advisory locks for
	// running keyed requests (default 32); they are apart from the DB's pool
	// so that a request holding a lock can always get a connection for its work.
	LockConns int
	// Logger receives the pruner's errors (nil: slog.Default).
	Logger *slog.Logger
}

// Idempotency makes POSTs idempotent per API.md: the first answer to a
// caller's key is recorded in the same transaction as the effect and
// replayed to every later request with that key and the same fingerprint.
// Safe for concurrent use; several instances (replicas) may share a
// database: on PostgreSQL they coordinate through advisory locks.
type Idempotency struct {
	db  *sqldb.DB
	cfg IdempotencyConfig

	mu      sync.Mutex
	running map[string]chan struct{} // key → closed when its request ends; guarded by mu

	// On PostgreSQL, the connections whose transactions hold advisory locks.
	lockDB  *sql.DB
	lockErr error
}

// NewIdempotency returns an Idempotency recording keys in db, whose schema
// must include Migrations(). Close it to release its lock connections.
func NewIdempotency(db *sqldb.DB, cfg IdempotencyConfig) *Idempotency {
	if cfg.Retention < 24*time.Hour {
		cfg.Retention = 24 * time.Hour
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 10 * time.Second
	}
	if cfg.LockConns <= 0 {
		cfg.LockConns = 32
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Idempotency{db: db, cfg: cfg, running: map[string]chan struct{}{}}
	if db.Engine() == sqldb.Postgres {
		s.lockDB, s.lockErr = sql.Open("pgx", db.URL())
		if s.lockErr == nil {
			s.lockDB.SetMaxOpenConns(cfg.LockConns)
			s.lockDB.SetMaxIdleConns(min(cfg.LockConns, 4))
			s.lockDB.SetConnMaxIdleTime(time.Minute)
		}
	}
	return s
}

// Close releases the lock connections (PostgreSQL). Run must not be called after.
func (s *Idempotency) Close() error {
	if s.lockDB != nil {
		return s.lockDB.Close()
	}
	return nil
}

// stored is a response as recorded: what a replay writes back byte for byte.
type stored struct {
	status      int
	contentType string
	body        []byte
}

// recorded reports whether an answer with status is recorded for its key:
// success, payment declined and domain conflicts are; every other failure
// (400, 401, 403, 404, 413, 422, 429, 5xx) leaves no trace and no effect.
func recorded(status int) bool {
	return status >= 200 && status < 300 || status == http.StatusPaymentRequired || status == http.StatusConflict
}

// errNotRecorded rolls back the effect of a Commit that answered a status
// that is not recorded without returning an error.
var errNotRecorded = errors.New("web: answer is not recorded")

// Run executes m for request r and writes the response. Without an
// Idempotency-Key header it runs Prepare and then Commit (in c.Do). With
// one, the key is scoped to the caller ("u:"+UserID when authenticated,
// "anon:"+route pattern otherwise) and the request fingerprinted (sha256 of
// method, path and the raw body, web.Body):
//   - a record of the key with the same fingerprint is replayed (status,
//     content type and body as first written, plus Idempotent-Replayed:
//     true) and nothing runs; another fingerprint is 422 idempotency_key_reused;
//   - while a request with the key runs (in this process, or on PostgreSQL on
//     any replica) a duplicate waits up to WaitTimeout and then looks again,
//     or gets 409 idempotency_key_in_use;
//   - otherwise m runs and its answer is recorded in the transaction of its
//     effect when it is recorded(): Commit runs in a savepoint, which a
//     recorded error (402, 409) rolls back before its problem is recorded.
//     An answer that is not recorded rolls the effect back and frees the key.
//
// Once Prepare has succeeded, Commit runs even if the client goes away.
func (s *Idempotency) Run(w http.ResponseWriter, r *http.Request, c sqldb.Committer, m Mutation) {
	const op = "web.Idempotency"
	key := r.Header.Get(HeaderIdempotencyKey)
	if key == "" {
		s.runPlain(w, r, c, m)
		return
	}
	if len(key) > MaxIdempotencyKey || !printableASCII(key) {
		Error(w, r, errs.E(op, errs.Malformed, "the Idempotency-Key header must be 1 to 255 printable ASCII characters",
			[]errs.FieldError{{Field: HeaderIdempotencyKey, Message: "at most 255 printable ASCII characters"}}))
		return
	}
	body, err := Body(r)
	if err != nil {
		Error(w, r, err)
		return
	}
	scope := scopeOf(r)
	fp := fingerprint(r.Method, r.URL.Path, body)
	release, err := s.lock(r.Context(), scope, key)
	if err != nil {
		Error(w, r, err)
		return
	}
	defer release()
	if s.replayed(w, r, scope, key, fp) {
		return
	}
	resp, err := s.execute(r, c, m, scope, key, fp)
	switch {
	case err == nil, errors.Is(err, errNotRecorded):
		writeBody(w, resp.status, resp.contentType, resp.body)
	case sqldb.IsUniqueViolation(err):
		// Recorded meanwhile by a process that holds no lock with us (a
		// second SQLite process); our effect was rolled back with the insert.
		if !s.replayed(w, r, scope, key, fp) {
			Error(w, r, errs.E(op, errs.Internal, err))
		}
	default:
		Error(w, r, err)
	}
}

// runPlain runs m without a key. As with a key, an answer that would not be
// recorded (a status outside 2xx, 402 and 409) rolls Commit's effect back.
func (s *Idempotency) runPlain(w http.ResponseWriter, r *http.Request, c sqldb.Committer, m Mutation) {
	if m.Prepare != nil {
		if err := m.Prepare(r.Context()); err != nil {
			Error(w, r, err)
			return
		}
	}
	ctx := context.WithoutCancel(r.Context())
	var resp stored
	var outcome error
	err := c.Do(ctx, func(tx *sqldb.Tx) error {
		var uerr error
		resp, outcome, uerr = commitAnswer(ctx, r, tx, m)
		return uerr
	})
	if err == nil {
		err = outcome
	}
	// resp holds the answer unless Commit failed with an error to report.
	if err != nil && !errors.Is(err, errNotRecorded) && !errors.Is(err, errRecordedProblem) {
		Error(w, r, err)
		return
	}
	writeBody(w, resp.status, resp.contentType, resp.body)
}

// execute runs m and, in the same transaction as Commit's effect, records
// the answer under (scope, key) when it is recorded(). It returns the answer
// to write; errNotRecorded with an answer that was not recorded; or an error
// to report (nothing persisted).
func (s *Idempotency) execute(r *http.Request, c sqldb.Committer, m Mutation, scope, key, fp string) (stored, error) {
	if m.Prepare != nil {
		if err := m.Prepare(r.Context()); err != nil {
			p := problemAnswer(r, err)
			if !recorded(p.status) {
				return stored{}, err
			}
			ctx := context.WithoutCancel(r.Context())
			return p, c.Do(ctx, func(tx *sqldb.Tx) error { return insertKey(ctx, tx, scope, key, fp, p) })
		}
	}
	ctx := context.WithoutCancel(r.Context())
	var resp stored
	var outcome error
	err := c.Do(ctx, func(tx *sqldb.Tx) error {
		var uerr error
		resp, outcome, uerr = commitAnswer(ctx, r, tx, m)
		if uerr != nil || (outcome != nil && !errors.Is(outcome, errRecordedProblem)) {
			return uerr // a recorded answer only gets its key row
		}
		outcome = nil
		return insertKey(ctx, tx, scope, key, fp, resp)
	})
	if err == nil {
		err = outcome
	}
	return resp, err
}

// errRecordedProblem marks an error answer that is recorded under the key.
var errRecordedProblem = errors.New("recorded problem")

// commitAnswer runs m.Commit inside a savepoint of tx and returns the
// answer. outcome is nil for a success that is recorded, errRecordedProblem
// for a recorded error answer (402, 409), errNotRecorded for a success status
// that is not recorded, or Commit's own error when it is not recorded; in the
// last three cases Commit's effect is already rolled back, so the unit itself
// succeeds and the group-commit batch around it is not disturbed. uerr is
// set only when the transaction itself broke: then the unit must fail.
func commitAnswer(ctx context.Context, r *http.Request, tx *sqldb.Tx, m Mutation) (resp stored, outcome, uerr error) {
	var status int
	var body any
	var cerr error
	err := tx.Savepoint(ctx, func() (err error) {
		defer func() {
			// A panic in Commit (a bug) fails this answer alone: the
			// savepoint rolls its effect back and the batch goes on.
			if p := recover(); p != nil {
				loggerFrom(ctx).Error("panic in Commit", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				cerr = errs.E("web.Commit", errs.Internal, fmt.Errorf("panic: %v", p))
				err = cerr
			}
		}()
		status, body, cerr = m.Commit(ctx, tx)
		if cerr == nil && !recorded(status) {
			return errNotRecorded
		}
		return cerr
	})
	switch {
	case err == nil:
		resp, uerr = encodeAnswer(status, body)
		return resp, nil, uerr
	case err == errNotRecorded:
		resp, uerr = encodeAnswer(status, body)
		return resp, errNotRecorded, uerr
	case errors.Is(err, sqldb.ErrSavepoint):
		return stored{}, nil, err
	case err == cerr && recorded(StatusOf(errs.KindOf(cerr))):
		return problemAnswer(r, cerr), errRecordedProblem, nil
	}
	return stored{}, err, nil
}

// replayed writes the record of (scope, key) if there is one and reports
// whether it did: the stored answer when the fingerprint matches, 422
// idempotency_key_reused when it does not. A lookup failure is written as
// a 500 (and reported as done).
func (s *Idempotency) replayed(w http.ResponseWriter, r *http.Request, scope, key, fp string) bool {
	const op = "web.Idempotency"
	var recFP string
	var rec stored
	err := s.db.Reader().QueryRowContext(r.Context(),
		`SELECT fingerprint, status, content_type, body FROM idempotency_keys WHERE scope = $1 AND key = $2`,
		scope, key).Scan(&recFP, &rec.status, &rec.contentType, &rec.body)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false
	case err != nil:
		Error(w, r, errs.E(op, errs.Internal, err))
	case recFP != fp:
		Error(w, r, errs.E(op, errs.Invalid, errs.CodeIdemReused,
			"this Idempotency-Key was used with another request; use a new key for a new request"))
	default:
		w.Header().Set(HeaderReplayed, "true")
		writeBody(w, rec.status, rec.contentType, rec.body)
	}
	return true
}

func insertKey(ctx context.Context, tx *sqldb.Tx, scope, key, fp string, a stored) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys
		(scope, key, fingerprint, status, content_type, body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		scope, key, fp, a.status, a.contentType, a.body, sqldb.Micros(tx.Now))
	return err
}

// encodeAnswer encodes a Commit's answer as it is written and recorded.
func encodeAnswer(status int, body any) (stored, error) {
	if body == nil {
		return stored{status: status, body: []byte{}}, nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return stored{}, errs.E("web.Idempotency", errs.Internal, err)
	}
	return stored{status: status, contentType: contentTypeJSON, body: b}, nil
}

// problemAnswer encodes err's problem document as Error would write it.
func problemAnswer(r *http.Request, err error) stored {
	p := ProblemOf(err)
	p.Instance = RequestID(r.Context())
	b, _ := json.Marshal(p)
	return stored{status: p.Status, contentType: contentTypeProblem, body: b}
}

// scopeOf is the caller's idempotency scope: its user, or for anonymous
// callers the route (API.md: one shared scope per route, guarded by the
// fingerprint).
func scopeOf(r *http.Request) string {
	if p, ok := PrincipalFrom(r.Context()); ok && p.UserID != "" {
		return "u:" + p.UserID
	}
	if rt, ok := r.Context().Value(keyRoute).(*Route); ok {
		return "anon:" + rt.Pattern()
	}
	if r.Pattern != "" {
		return "anon:" + r.Pattern
	}
	return "anon:" + r.Method + " " + r.URL.Path
}

// fingerprint identifies a request: sha256 over method, path and body.
func fingerprint(method, path string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
