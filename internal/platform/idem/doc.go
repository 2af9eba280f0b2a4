// Package idem makes a unit of work idempotent: the first recorded outcome
// of a (scope, key) commits in the same transaction as the unit's effect and
// is returned again, without running anything, to every later call with that
// key and the same fingerprint material. It knows nothing of HTTP: the web
// middleware (web.Idempotency), channel imports keyed by external id and
// receipts of payment or carrier webhooks are all callers.
//
// # Semantics (Store.Do)
//
//   - A record of the key with the same material is replayed (Result.Replayed)
//     and nothing runs; other material is ErrKeyReused.
//   - While a call with the key runs — in this process (an in-memory lock),
//     or on PostgreSQL on any replica (a transaction-scoped advisory lock, so
//     a crash frees it) — a duplicate waits up to Config.WaitTimeout, then
//     replays the record or gets ErrKeyInUse.
//   - Otherwise the work runs as one sqldb.Unit on the caller's Committer (a
//     plain transaction or a group-commit batch): a success is recorded with
//     its effect; a failure is rolled back and recorded only when
//     Request.Record says so (a declined payment, a stock conflict), in the
//     same transaction. An outcome that is not recorded (a crash before the
//     commit, a validation error, a 500) leaves no trace and frees the key.
//   - Records are kept at least 24 hours (Prune deletes older ones); Forget
//     deletes every record of a scope (erasure of a customer).
//
// # No secret at rest
//
// A copy of the database yields neither a key, a scope, the request nor
// the answer: key_id and scope_id are HMACs under sub-keys of the server
// secret; the fingerprint is an HMAC of the material under a key derived
// (HKDF) from the server secret and the idempotency key, so it cannot be
// tested against guessed bodies (a password) without both; the answer
// (status, content type, body — which may hold bearer tokens, recovery
// codes, TOTP secrets) is sealed with AES-256-GCM under another key derived
// from both. Neither the database nor the server secret alone opens it.
//
// # Scopes
//
// Request.Scope names the caller whose keys these are; different scopes
// never meet. The HTTP layer uses "u:"+user id for a signed-in user,
// "c:"+channel for a channel token, and "anon:"+identity for an anonymous
// request whose handler names the identity it acts for (register and login:
// the lower-cased e-mail address). An anonymous request that names nobody
// passes no scope: it is then scoped by its own material, so it replays
// only for an identical request and a stranger cannot squat a key that
// another caller will use (it never gets ErrKeyReused either).
//
// # Which answers replay, and why
//
// Every POST with an Idempotency-Key replays its recorded answer (API.md):
// successes (2xx), 402 payment declined and 409 conflicts, because those
// are outcomes of the work that a retry must not change. Register replays
// its 201 (the token it issued) to a retry with the same body, and login
// its 200, so a client that lost the answer is not told "email taken" or
// issued a second session. A login retried with the same key and another
// body gets ErrKeyReused (422), which the handler counts as a failed login
// (web.Mutation.OnReused) so that the 422 is no password oracle. Nothing
// else is recorded: 400, 401, 403, 404, 413, 422, 429 and 5xx leave the key
// free for a corrected retry.
package idem
