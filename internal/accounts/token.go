package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// tokenPrefix starts every bearer token, so that leaked tokens are easy to
// recognise (secret scanners) and garbage is rejected without a query.
const tokenPrefix = "mct_"

// CookieName is the session cookie of the web UI; it holds the same opaque
// token as the bearer scheme.
const CookieName = "mercato_session"

// Token scopes.
const (
	scopeFull     = "full"      // a normal session
	scopeMFASetup = "mfa_setup" // staff without MFA while MFA is required: no roles
	scopeChannel  = "channel"   // a channel's API token
)

// newToken returns a fresh bearer token (256 random bits) and the hex
// SHA-256 under which it is stored; the token itself is never stored.
func newToken() (token, hash string) {
	var b [32]byte
	rand.Read(b[:])
	token = tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashToken(token)
}

// hashToken is the stored form of a token (or of any other random secret).
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// issueToken stores a new session token for userID with the given scope,
// valid for ttl, and returns it.
func issueToken(ctx context.Context, tx *sqldb.Tx, userID, scope string, ttl time.Duration) (string, error) {
	tok, h := newToken()
	_, err := tx.ExecContext(ctx, `INSERT INTO accounts_tokens (id, token_hash, user_id, channel, scope, created_at, expires_at)
		VALUES ($1, $2, $3, '', $4, $5, $6)`, newID(), h, userID, scope, sqldb.Micros(tx.Now), sqldb.Micros(tx.Now.Add(ttl)))
	if err != nil {
		return "", errs.E("accounts.issueToken", errs.Internal, err)
	}
	return tok, nil
}

// IssueChannelToken stores a new API token bound to the channel with code
// channelCode, in tx, and returns it (shown once; only its hash is kept).
// The token does not expire; RevokeChannelTokens ends it. Its Principal has
// Roles ["channel"], Channel = channelCode and UserID "channel:<code>" (so
// that idempotency keys are scoped per channel).
func (s *Service) IssueChannelToken(ctx context.Context, tx *sqldb.Tx, channelCode string) (string, error) {
	if channelCode == "" {
		return "", errs.E("accounts.IssueChannelToken", errs.Invalid, "a channel code is required")
	}
	tok, h := newToken()
	_, err := tx.ExecContext(ctx, `INSERT INTO accounts_tokens (id, token_hash, user_id, channel, scope, created_at, expires_at)
		VALUES ($1, $2, NULL, $3, $4, $5, 0)`, newID(), h, channelCode, scopeChannel, sqldb.Micros(tx.Now))
	if err != nil {
		return "", errs.E("accounts.IssueChannelToken", errs.Internal, err)
	}
	return tok, nil
}

// RevokeChannelTokens revokes every token of the channel channelCode, in tx.
func (s *Service) RevokeChannelTokens(ctx context.Context, tx *sqldb.Tx, channelCode string) error {
	if err := s.forgetUser(ctx, tx, "channel:"+channelCode); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE accounts_tokens SET revoked_at = $1
		WHERE channel = $2 AND scope = $3 AND revoked_at = 0`, sqldb.Micros(tx.Now), channelCode, scopeChannel)
	if err != nil {
		return errs.E("accounts.RevokeChannelTokens", errs.Internal, err)
	}
	return nil
}

// revokeUserTokens revokes every live token of userID except keepID.
func (s *Service) revokeUserTokens(ctx context.Context, tx *sqldb.Tx, userID, keepID string) error {
	if err := s.forgetUser(ctx, tx, userID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE accounts_tokens SET revoked_at = $1
		WHERE user_id = $2 AND id <> $3 AND revoked_at = 0`, sqldb.Micros(tx.Now), userID, keepID)
	if err != nil {
		return errs.E("accounts.revokeTokens", errs.Internal, err)
	}
	return nil
}

// bearer returns the token r carries: the Authorization bearer token, else
// the session cookie. ok is false when r carries neither.
func bearer(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", true // present but not ours: invalid
		}
		return strings.TrimSpace(tok), true
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		return c.Value, true
	}
	return "", false
}

var errBadToken = errs.E("accounts.Authenticate", errs.Unauthorized, "the token is invalid, expired or revoked")

// Authenticate implements web.Authenticator: it reads the bearer token or
// the session cookie and returns its principal. A token that is unknown,
// expired, revoked, or belongs to a disabled or erased user is an
// Unauthorized error. A user's roles are read at each request, so a role
// change or a disable takes effect at once.
func (s *Service) Authenticate(r *http.Request) (web.Principal, bool, error) {
	tok, ok := bearer(r)
	if !ok {
		return web.Principal{}, false, nil
	}
	if !strings.HasPrefix(tok, tokenPrefix) || len(tok) != len(tokenPrefix)+43 {
		return web.Principal{}, true, errBadToken
	}
	h := hashToken(tok)
	e, ok, epoch := s.cache.get(h)
	if ok {
		return e.p, true, nil
	}
	var (
		id, channel, scope string
		userID, roles      sql.NullString
		email, name        sql.NullString
		expires, revoked   int64
		disabled, erased   sql.NullInt64
	)
	err := s.db.Reader().QueryRowContext(r.Context(), `SELECT t.id, t.user_id, t.channel, t.scope, t.expires_at, t.revoked_at,
			u.roles, u.disabled, u.erased_at, u.email, u.name
		FROM accounts_tokens t LEFT JOIN accounts_users u ON u.id = t.user_id
		WHERE t.token_hash = $1`, h).
		Scan(&id, &userID, &channel, &scope, &expires, &revoked, &roles, &disabled, &erased, &email, &name)
	if errors.Is(err, sql.ErrNoRows) {
		return web.Principal{}, true, errBadToken
	}
	if err != nil {
		return web.Principal{}, true, errs.E("accounts.Authenticate", errs.Internal, err)
	}
	now := sqldb.Micros(s.db.Now())
	if revoked != 0 || (expires != 0 && expires <= now) {
		return web.Principal{}, true, errBadToken
	}
	switch scope {
	case scopeChannel:
		e.p = web.Principal{UserID: "channel:" + channel, Roles: []string{RoleChannel}, Channel: channel, SessionID: id}
	case scopeFull, scopeMFASetup:
		if !userID.Valid || disabled.Int64 != 0 || erased.Int64 != 0 {
			return web.Principal{}, true, errBadToken
		}
		e.p = web.Principal{UserID: userID.String, Roles: splitRoles(roles.String), SessionID: id}
		e.user = User{ID: userID.String, Email: email.String, Name: name.String, Roles: splitRoles(roles.String)}
		if scope == scopeMFASetup {
			e.p.Roles = []string{} // may enrol MFA and read itself; no staff permission
		}
	default:
		return web.Principal{}, true, errBadToken
	}
	if expires != 0 {
		e.expires = sqldb.FromMicros(expires)
	}
	s.cache.put(h, e, epoch)
	return e.p, true, nil
}

// Allowed implements web.Authenticator from the permission table.
func (s *Service) Allowed(p web.Principal, perm string) bool {
	return s.roleTable().allows(p.Roles, perm)
}

// SetSessionCookie sets the session cookie holding token until expires:
// HttpOnly, SameSite=Lax, Secure when r came over TLS, Path "/".
func SetSessionCookie(w http.ResponseWriter, r *http.Request, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: token, Path: "/", Expires: expires,
		MaxAge: max(1, int(time.Until(expires).Seconds())), HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

// ClearSessionCookie tells the browser to drop the session cookie.
func ClearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}
