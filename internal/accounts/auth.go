package accounts

import (
	"context"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// RegisterRequest is the body of POST /api/v1/auth/register.
type RegisterRequest struct {
	Email    string `json:"email" maxlen:"254"`
	Password string `json:"password" maxlen:"256"`
	Name     string `json:"name" maxlen:"200"`
}

// LoginRequest is the body of POST /api/v1/auth/login. OTP is a TOTP code
// or an unused recovery code, required when the user has MFA active.
type LoginRequest struct {
	Email    string `json:"email" maxlen:"254"`
	Password string `json:"password" maxlen:"256"`
	OTP      string `json:"otp,omitempty" maxlen:"64"`
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

// Registration is a validated registration whose password is hashed:
// what RegisterTx stores. Made by NewRegistration.
type Registration struct {
	user preparedUser
}

// NewRegistration validates in and hashes its password — the slow part,
// done outside any transaction (at most Config.HashSlots at a time).
// validation_failed names each bad field.
func (s *Service) NewRegistration(ctx context.Context, in RegisterRequest) (Registration, error) {
	n, err := s.prepareUser(ctx, newUserInput{Email: in.Email, Password: in.Password, Name: in.Name,
		Roles: []string{RoleCustomer}}, true)
	return Registration{user: n}, err
}

// RegisterTx stores the customer of reg, emits customer.registered and
// opens a session, all in tx. email_taken when the address is registered.
func (s *Service) RegisterTx(ctx context.Context, tx *sqldb.Tx, reg Registration) (AuthResponse, error) {
	if err := s.commitUser(ctx, tx, reg.user, Actor{}); err != nil {
		return AuthResponse{}, err
	}
	return s.openSession(ctx, tx, reg.user.account, scopeFull)
}

// Register registers a customer: NewRegistration, then RegisterTx as one
// unit of the write path.
func (s *Service) Register(ctx context.Context, in RegisterRequest) (AuthResponse, error) {
	reg, err := s.NewRegistration(ctx, in)
	if err != nil {
		return AuthResponse{}, err
	}
	var res AuthResponse
	err = s.write.Do(ctx, func(tx *sqldb.Tx) (err error) {
		res, err = s.RegisterTx(ctx, tx, reg)
		return err
	})
	return res, err
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

// LoginGrant is a login whose credentials checked out: what LoginTx turns
// into a session. Made by CheckLogin.
type LoginGrant struct {
	acct account
	at   attempt
	mfa  secondFactor
}

// CheckLogin checks a login from client address ip outside any
// transaction, in this order: the fields' caps and the address's form (422,
// before any other work); the hashing queue (429 when it is full); the
// throttle, which counts the attempt as a failure before the password is
// hashed (429 while locked: see ThrottleConfig); the password (argon2id;
// an unknown address is checked against a dummy hash, so that it does the
// same work); the second factor. A wrong password or second factor stays
// counted; a missing second factor is taken back; LoginTx ends a success.
func (s *Service) CheckLogin(ctx context.Context, in LoginRequest, ip string) (LoginGrant, error) {
	var v errs.Validation
	email := emailField(&v, "email", in.Email)
	v.Check(in.Password != "", "password", "is required")
	capField(&v, "password", in.Password, maxPasswordLen)
	capField(&v, "otp", in.OTP, maxOTPLen)
	if err := v.Err("accounts.login"); err != nil {
		return LoginGrant{}, err
	}
	if s.hash.busy() {
		return LoginGrant{}, errBusy
	}
	at, err := s.beginAttempt(ctx, email, ip)
	if err != nil {
		return LoginGrant{}, err
	}
	g, failed, err := s.checkCredentials(ctx, in, at)
	s.ips.end(ip, failed, s.db.Now())
	return g, err
}

// checkCredentials is CheckLogin's part after the attempt was counted; it
// reports whether the attempt failed (a wrong password or code).
func (s *Service) checkCredentials(ctx context.Context, in LoginRequest, at attempt) (LoginGrant, bool, error) {
	a, err := userByEmail(ctx, s.db.Reader(), at.email)
	if err != nil && !errs.Is(err, errs.NotFound) {
		s.undo(ctx, at)
		return LoginGrant{}, false, err
	}
	ok, err := s.hash.Verify(ctx, in.Password, a.PasswordHash) // "" → dummy hash
	if err != nil {
		s.undo(ctx, at)
		return LoginGrant{}, false, err
	}
	if !ok {
		return LoginGrant{}, true, errBadCredentials
	}
	if a.Disabled || a.erased() {
		return LoginGrant{}, true, errBadCredentials
	}
	f, err := s.checkSecondFactor(ctx, a, in.OTP)
	if err != nil {
		if errs.Is(err, errs.Unauthorized) && in.OTP != "" {
			return LoginGrant{}, true, err
		}
		s.undo(ctx, at)
		return LoginGrant{}, false, err
	}
	return LoginGrant{acct: a, at: at, mfa: f}, false, nil
}

// ReusedLoginKey answers a login whose Idempotency-Key was used before with
// another body: it is a guess at the password, so it is counted as a failed
// login for email from ip (as CheckLogin counts one) and answered like a
// wrong password — or 429 while the throttle is locked.
func (s *Service) ReusedLoginKey(ctx context.Context, email, ip string) error {
	var v errs.Validation
	if email = emailField(&v, "email", email); email == "" {
		return errBadCredentials
	}
	if _, err := s.beginAttempt(ctx, email, ip); err != nil {
		return err
	}
	s.ips.end(ip, true, s.db.Now())
	return errBadCredentials
}

// LoginTx ends the grant's attempt as a success (see ThrottleConfig), uses
// up the second factor, and opens a session, in tx. Staff logins are
// audited.
func (s *Service) LoginTx(ctx context.Context, tx *sqldb.Tx, g LoginGrant) (AuthResponse, error) {
	if err := s.succeeded(ctx, tx, g.at); err != nil {
		return AuthResponse{}, err
	}
	if err := s.useSecondFactor(ctx, tx, g.acct.ID, g.mfa); err != nil {
		return AuthResponse{}, err
	}
	scope := scopeFull
	if s.cfg.StaffMFARequired && g.acct.staff() && g.acct.MFASecret == "" {
		scope = scopeMFASetup
	}
	res, err := s.openSession(ctx, tx, g.acct, scope)
	if err != nil {
		return AuthResponse{}, err
	}
	if g.acct.staff() {
		err = s.audit(ctx, tx, Actor{g.acct.ID, g.at.ip}, "user.logged_in", "user", g.acct.ID, nil,
			map[string]any{"mfa": g.mfa.kind, "scope": scope})
	}
	return res, err
}

// Login logs in from client address ip: CheckLogin, then LoginTx as one
// unit of the write path.
func (s *Service) Login(ctx context.Context, in LoginRequest, ip string) (AuthResponse, error) {
	g, err := s.CheckLogin(ctx, in, ip)
	if err != nil {
		return AuthResponse{}, err
	}
	var res AuthResponse
	err = s.write.Do(ctx, func(tx *sqldb.Tx) (err error) {
		res, err = s.LoginTx(ctx, tx, g)
		return err
	})
	return res, err
}

// LogoutTx revokes the session sessionID of userID, in tx.
func (s *Service) LogoutTx(ctx context.Context, tx *sqldb.Tx, userID, sessionID string) error {
	if err := s.forgetUser(ctx, tx, userID); err != nil {
		return err
	}
	_, err := exec(ctx, tx, "accounts.logout", `UPDATE accounts_tokens SET revoked_at = $1
		WHERE id = $2 AND user_id = $3 AND revoked_at = 0`, sqldb.Micros(tx.Now), sessionID, userID)
	return err
}
