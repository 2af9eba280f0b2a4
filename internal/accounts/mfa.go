package accounts

import (
	"context"
	"strings"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/totp"
)

// recoveryCodeCount is how many recovery codes an MFA activation issues.
const recoveryCodeCount = 10

// CodeMFARequired is the problem code of a login that lacks its one-time code.
const CodeMFARequired errs.Code = "mfa_required"

var (
	errMFARequired = errs.E("accounts.login", errs.Unauthorized, CodeMFARequired,
		"this account uses two-factor authentication: send the code from the authenticator app (or a recovery code) as otp")
	errBadOTP = errs.E("accounts.login", errs.Unauthorized, "the one-time code is wrong or was already used")
)

// EnrollResponse answers POST /api/v1/me/mfa/enroll: the secret to enter
// in an authenticator app, also as an otpauth:// URL (for a QR code).
type EnrollResponse struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
}

// VerifyMFARequest is the body of POST /api/v1/me/mfa/verify.
type VerifyMFARequest struct {
	Code string `json:"code" maxlen:"64"`
}

// VerifyMFAResponse holds the recovery codes, shown this once (only their
// hashes are kept). Each works once in place of a TOTP code.
type VerifyMFAResponse struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// secondFactor is the checked second factor of a login.
type secondFactor struct {
	kind string // "" (MFA off), "totp" or "recovery"
	step uint64 // the TOTP time step matched (replay guard)
	hash string // the recovery code's hash
}

// recoveryHash is the stored form of a recovery code, from its canonical
// spelling (so case, spaces and dashes do not matter).
func recoveryHash(code string) (string, bool) {
	c, ok := totp.NormalizeRecoveryCode(code)
	if !ok {
		return "", false
	}
	return hashToken(c), true
}

// checkSecondFactor checks otp against a's active MFA: a TOTP code of a
// later time step than the last one accepted (RFC 6238 5.2: no replay), or
// an unused recovery code. Without active MFA otp is ignored. Returns
// errMFARequired when otp is missing, errBadOTP when it does not match.
func (s *Service) checkSecondFactor(ctx context.Context, a account, otp string) (secondFactor, error) {
	if a.MFASecret == "" {
		return secondFactor{}, nil
	}
	code := strings.TrimSpace(otp)
	if code == "" {
		return secondFactor{}, errMFARequired
	}
	if step, ok := totp.Check(a.MFASecret, strings.ReplaceAll(code, " ", ""), s.db.Now()); ok {
		if step <= a.MFALastStep {
			return secondFactor{}, errBadOTP
		}
		return secondFactor{kind: "totp", step: step}, nil
	}
	h, ok := recoveryHash(code)
	if !ok {
		return secondFactor{}, errBadOTP
	}
	var used int64
	err := s.db.Reader().QueryRowContext(ctx, `SELECT used_at FROM accounts_recovery_codes
		WHERE user_id = $1 AND code_hash = $2`, a.ID, h).Scan(&used)
	if err != nil && !isNoRows(err) {
		return secondFactor{}, errs.E("accounts.checkSecondFactor", errs.Internal, err)
	}
	if err == nil && used == 0 {
		return secondFactor{kind: "recovery", hash: h}, nil
	}
	return secondFactor{}, errBadOTP
}

// useSecondFactor consumes f in tx with a conditional write, so that a
// code raced by two logins lets only one in.
func (s *Service) useSecondFactor(ctx context.Context, tx *sqldb.Tx, userID string, f secondFactor) error {
	var n int64
	var err error
	switch f.kind {
	case "":
		return nil
	case "totp":
		n, err = exec(ctx, tx, "accounts.useSecondFactor", `UPDATE accounts_users SET mfa_last_step = $1
			WHERE id = $2 AND mfa_last_step < $1`, int64(f.step), userID)
	case "recovery":
		n, err = exec(ctx, tx, "accounts.useSecondFactor", `UPDATE accounts_recovery_codes SET used_at = $1
			WHERE user_id = $2 AND code_hash = $3 AND used_at = 0`, sqldb.Micros(tx.Now), userID, f.hash)
	}
	if err == nil && n == 0 {
		err = errBadOTP
	}
	return err
}

// EnrollMFARequest is the body of POST /api/v1/me/mfa/enroll: the current
// password confirms (a session alone does not suffice).
type EnrollMFARequest struct {
	Password string `json:"password" maxlen:"256"`
}

// CheckEnrollMFA checks, outside any transaction, the password that
// confirms an enrolment (counted like a login attempt; 422 on password
// when wrong); then EnrollMFATx enrols.
func (s *Service) CheckEnrollMFA(ctx context.Context, by Actor, in EnrollMFARequest) error {
	var v errs.Validation
	v.Check(in.Password != "", "password", "is required")
	capField(&v, "password", in.Password, maxPasswordLen)
	if err := v.Err("accounts.enrollMFA"); err != nil {
		return err
	}
	_, err := s.checkOwnPassword(ctx, by, "password", in.Password, nil)
	return err
}

// EnrollMFA starts MFA enrolment for the caller: CheckEnrollMFA, then
// EnrollMFATx as one unit of the write path.
func (s *Service) EnrollMFA(ctx context.Context, by Actor, in EnrollMFARequest) (EnrollResponse, error) {
	if err := s.CheckEnrollMFA(ctx, by, in); err != nil {
		return EnrollResponse{}, err
	}
	var res EnrollResponse
	err := s.write.Do(ctx, func(tx *sqldb.Tx) (err error) {
		res, err = s.EnrollMFATx(ctx, tx, by)
		return err
	})
	return res, err
}

// EnrollMFATx starts MFA enrolment for the caller in tx: a new secret is
// kept as pending until verified. Conflict when MFA is already active.
func (s *Service) EnrollMFATx(ctx context.Context, tx *sqldb.Tx, by Actor) (EnrollResponse, error) {
	const op = "accounts.enrollMFA"
	a, err := userByID(ctx, tx, by.ID)
	if err != nil {
		return EnrollResponse{}, err
	}
	if a.MFASecret != "" {
		return EnrollResponse{}, errs.E(op, errs.Conflict, "two-factor authentication is already active")
	}
	secret, err := totp.NewSecret()
	if err != nil {
		return EnrollResponse{}, errs.E(op, errs.Internal, err)
	}
	if _, err := exec(ctx, tx, op, `UPDATE accounts_users SET mfa_pending = $1, updated_at = $2 WHERE id = $3`,
		secret, sqldb.Micros(tx.Now), a.ID); err != nil {
		return EnrollResponse{}, err
	}
	return EnrollResponse{Secret: secret, OTPAuthURL: totp.URL(s.cfg.Issuer, a.Email, secret)}, nil
}

// VerifyMFA activates the caller's pending MFA secret (VerifyMFATx as one
// unit of the write path).
func (s *Service) VerifyMFA(ctx context.Context, by Actor, sessionID, code string) (VerifyMFAResponse, error) {
	var res VerifyMFAResponse
	err := s.write.Do(ctx, func(tx *sqldb.Tx) (err error) {
		res, err = s.VerifyMFATx(ctx, tx, by, sessionID, code)
		return err
	})
	return res, err
}

// VerifyMFATx activates the pending secret when code matches it,
// replaces the recovery codes, and lifts the caller's session (sessionID)
// out of the MFA-setup scope. Conflict when nothing is pending; Invalid
// when the code does not match.
func (s *Service) VerifyMFATx(ctx context.Context, tx *sqldb.Tx, by Actor, sessionID, code string) (VerifyMFAResponse, error) {
	const op = "accounts.verifyMFA"
	if len(code) > maxOTPLen {
		return VerifyMFAResponse{}, errs.E(op, errs.Invalid, errs.CodeValidation, "the code is too long",
			[]errs.FieldError{{Field: "code", Message: "must be at most 64 bytes"}})
	}
	a, err := userByID(ctx, tx, by.ID)
	if err != nil {
		return VerifyMFAResponse{}, err
	}
	if a.MFAPending == "" {
		return VerifyMFAResponse{}, errs.E(op, errs.Conflict, "no enrolment is pending; call /api/v1/me/mfa/enroll first")
	}
	step, ok := totp.Check(a.MFAPending, strings.ReplaceAll(strings.TrimSpace(code), " ", ""), tx.Now)
	if !ok {
		return VerifyMFAResponse{}, errs.E(op, errs.Invalid, errs.CodeValidation, "the code does not match",
			[]errs.FieldError{{Field: "code", Message: "does not match the enrolled secret"}})
	}
	codes, err := totp.RecoveryCodes(recoveryCodeCount)
	if err != nil {
		return VerifyMFAResponse{}, errs.E(op, errs.Internal, err)
	}
	now := sqldb.Micros(tx.Now)
	if _, err := exec(ctx, tx, op, `UPDATE accounts_users SET mfa_secret = mfa_pending, mfa_pending = '',
		mfa_last_step = $1, updated_at = $2 WHERE id = $3`, int64(step), now, a.ID); err != nil {
		return VerifyMFAResponse{}, err
	}
	if _, err := exec(ctx, tx, op, `DELETE FROM accounts_recovery_codes WHERE user_id = $1`, a.ID); err != nil {
		return VerifyMFAResponse{}, err
	}
	for _, c := range codes {
		h, _ := recoveryHash(c)
		if _, err := exec(ctx, tx, op, `INSERT INTO accounts_recovery_codes (user_id, code_hash) VALUES ($1, $2)`,
			a.ID, h); err != nil {
			return VerifyMFAResponse{}, err
		}
	}
	if err := s.forgetUser(ctx, tx, a.ID); err != nil {
		return VerifyMFAResponse{}, err
	}
	if _, err := exec(ctx, tx, op, `UPDATE accounts_tokens SET scope = $1, expires_at = $2
		WHERE id = $3 AND scope = $4`, scopeFull, sqldb.Micros(tx.Now.Add(s.tokenTTL(a.Roles))), sessionID, scopeMFASetup); err != nil {
		return VerifyMFAResponse{}, err
	}
	if a.staff() {
		if err := s.audit(ctx, tx, by, "user.mfa_enabled", "user", a.ID,
			map[string]any{"mfa": false}, map[string]any{"mfa": true}); err != nil {
			return VerifyMFAResponse{}, err
		}
	}
	return VerifyMFAResponse{RecoveryCodes: codes}, nil
}
