package accounts

import (
	"context"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// RegisterRequest is the body of POST /api/v1/auth/register.
type RegisterRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

// LoginRequest is the body of POST /api/v1/auth/login. OTP is a TOTP code
// or an unused recovery code, required when the user has MFA active.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	OTP      string `json:"otp,omitempty"`
}

// AuthResponse answers register and login (API.md: {user, token}).
// MFASetupRequired is true when the token may only enrol MFA (doc.go).
type AuthResponse struct {
	User             User      `json:"user"`
	Token            string    `json:"token"`
	ExpiresAt        time.Time `json:"expires_at"`
	MFASetupRequired bool      `json:"mfa_setup_required,omitempty"`
}

// errBadCredentials is the one answer to an unknown address, a wrong
// password, and a disabled or erased account.
var errBadCredentials = errs.E("accounts.login", errs.Unauthorized, "the e-mail address or password is wrong")

// prepareRegister validates a registration and hashes its password.
func (s *Service) prepareRegister(ctx context.Context, in RegisterRequest) (preparedUser, error) {
	return s.prepareUser(ctx, newUserInput{Email: in.Email, Password: in.Password, Name: in.Name,
		Roles: []string{RoleCustomer}}, true)
}

// commitRegister stores the customer, emits customer.registered and opens
// a session, all in tx. email_taken when the address is registered.
func (s *Service) commitRegister(ctx context.Context, tx *sqldb.Tx, n preparedUser) (AuthResponse, error) {
	if err := s.commitUser(ctx, tx, n, actor{}); err != nil {
		return AuthResponse{}, err
	}
	return s.openSession(ctx, tx, n.account, scopeFull)
}

// openSession issues a session token for a in tx.
func (s *Service) openSession(ctx context.Context, tx *sqldb.Tx, a account, scope string) (AuthResponse, error) {
	ttl := s.tokenTTL(a.Roles)
	if scope == scopeMFASetup {
		ttl = s.cfg.MFASetupTokenTTL
	}
	tok, err := issueToken(ctx, tx, a.ID, scope, ttl)
	if err != nil {
		return AuthResponse{}, err
	}
	return AuthResponse{User: a.User, Token: tok, ExpiresAt: tx.Now.Add(ttl).Truncate(time.Second),
		MFASetupRequired: scope == scopeMFASetup}, nil
}

// loginAttempt is a login whose credentials checked out; commitLogin
// turns it into a session.
type loginAttempt struct {
	acct  account
	email string
	ip    string
	mfa   secondFactor
}

// prepareLogin checks a login outside any transaction: the throttle (429),
// then the password (argon2id; an unknown address is checked against a
// dummy hash so that it takes as long), then the second factor. A failure
// is counted (in its own transaction) before the 401 is returned.
func (s *Service) prepareLogin(ctx context.Context, in LoginRequest, ip string) (loginAttempt, error) {
	email := NormalizeEmail(in.Email)
	var v errs.Validation
	v.Check(email != "", "email", "is required")
	v.Check(in.Password != "", "password", "is required")
	v.Check(len(in.Password) <= maxPasswordLen, "password", "must be at most 256 bytes")
	if err := v.Err("accounts.login"); err != nil {
		return loginAttempt{}, err
	}
	if err := s.checkThrottle(ctx, email, ip); err != nil {
		return loginAttempt{}, err
	}
	a, err := userByEmail(ctx, s.db.Reader(), email)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return loginAttempt{}, err
	}
	ok, err := s.hash.Verify(ctx, in.Password, a.PasswordHash) // "" → dummy hash
	if err != nil {
		return loginAttempt{}, err
	}
	if !ok {
		if err := s.recordFailure(ctx, email, ip); err != nil {
			return loginAttempt{}, err
		}
		return loginAttempt{}, errBadCredentials
	}
	if a.Disabled || a.erased() {
		return loginAttempt{}, errBadCredentials
	}
	f, err := s.checkSecondFactor(ctx, a, in.OTP)
	if err != nil {
		if errs.Is(err, errs.Unauthorized) && in.OTP != "" {
			if ferr := s.recordFailure(ctx, email, ip); ferr != nil {
				return loginAttempt{}, ferr
			}
		}
		return loginAttempt{}, err
	}
	return loginAttempt{acct: a, email: email, ip: ip, mfa: f}, nil
}

// commitLogin resets the account's failure count, uses up the second
// factor, and opens a session, in tx. Staff logins are audited.
func (s *Service) commitLogin(ctx context.Context, tx *sqldb.Tx, at loginAttempt) (AuthResponse, error) {
	if err := resetThrottle(ctx, tx, at.email); err != nil {
		return AuthResponse{}, err
	}
	if err := s.useSecondFactor(ctx, tx, at.acct.ID, at.mfa); err != nil {
		return AuthResponse{}, err
	}
	scope := scopeFull
	if s.cfg.StaffMFARequired && at.acct.staff() && at.acct.MFASecret == "" {
		scope = scopeMFASetup
	}
	res, err := s.openSession(ctx, tx, at.acct, scope)
	if err != nil {
		return AuthResponse{}, err
	}
	if at.acct.staff() {
		err = s.audit(ctx, tx, actor{at.acct.ID, at.ip}, "user.logged_in", "user", at.acct.ID, nil,
			map[string]any{"mfa": at.mfa.kind, "scope": scope})
	}
	return res, err
}

// commitLogout revokes the session sessionID of userID, in tx.
func (s *Service) commitLogout(ctx context.Context, tx *sqldb.Tx, userID, sessionID string) error {
	_, err := exec(ctx, tx, "accounts.logout", `UPDATE accounts_tokens SET revoked_at = $1
		WHERE id = $2 AND user_id = $3 AND revoked_at = 0`, sqldb.Micros(tx.Now), sessionID, userID)
	return err
}
