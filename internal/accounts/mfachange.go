package accounts

import (
	"context"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// DisableMFARequest is the body of POST /api/v1/me/mfa/disable: the
// current password and a second factor (a TOTP code or an unused recovery
// code) confirm.
type DisableMFARequest struct {
	Password string `json:"password" maxlen:"256"`
	OTP      string `json:"otp" maxlen:"64"`
}

// MFADisable is a checked request to turn the caller's MFA off: what
// DisableMFATx stores. Made by NewMFADisable.
type MFADisable struct {
	by Actor
	f  secondFactor
}

// NewMFADisable checks, outside any transaction, the caller's password and
// second factor, as one attempt counted like a login (a wrong password is
// 422 on password, a wrong or used code 422 on otp, both counted; 429 while
// locked). Conflict when MFA is not active.
func (s *Service) NewMFADisable(ctx context.Context, by Actor, in DisableMFARequest) (MFADisable, error) {
	const op = "accounts.disableMFA"
	var v errs.Validation
	v.Check(in.Password != "", "password", "is required")
	capField(&v, "password", in.Password, maxPasswordLen)
	v.Check(in.OTP != "", "otp", "is required")
	capField(&v, "otp", in.OTP, maxOTPLen)
	if err := v.Err(op); err != nil {
		return MFADisable{}, err
	}
	a, err := userByID(ctx, s.db.Reader(), by.ID)
	if err != nil {
		return MFADisable{}, err
	}
	if a.MFASecret == "" {
		return MFADisable{}, errs.E(op, errs.Conflict, "two-factor authentication is not active")
	}
	var f secondFactor
	_, err = s.checkOwnPassword(ctx, by, "password", in.Password, func(a account) error {
		var err error
		if f, err = s.checkSecondFactor(ctx, a, in.OTP); err != nil {
			return errs.E(op, errs.Invalid, errs.CodeValidation, "the one-time code is wrong or was already used",
				[]errs.FieldError{{Field: "otp", Message: "is wrong or was already used"}})
		}
		return nil
	})
	return MFADisable{by: by, f: f}, err
}

// DisableMFATx uses up the checked second factor (a raced code lets one
// request through) and turns the caller's MFA off, in tx: secret, pending
// enrolment and recovery codes removed; sessions stay. Audited for staff.
func (s *Service) DisableMFATx(ctx context.Context, tx *sqldb.Tx, d MFADisable) error {
	if err := s.useSecondFactor(ctx, tx, d.by.ID, d.f); err != nil {
		if err != errBadOTP {
			return err
		}
		return errs.E("accounts.disableMFA", errs.Invalid, errs.CodeValidation, "the one-time code was already used",
			[]errs.FieldError{{Field: "otp", Message: "is wrong or was already used"}})
	}
	a, err := s.clearMFA(ctx, tx, d.by.ID)
	if err != nil {
		return err
	}
	if a.staff() {
		return s.audit(ctx, tx, d.by, "user.mfa_disabled", "user", a.ID, map[string]any{"mfa": true}, map[string]any{"mfa": false})
	}
	return nil
}

// DisableMFA is NewMFADisable, then DisableMFATx as one unit of the write path.
func (s *Service) DisableMFA(ctx context.Context, by Actor, in DisableMFARequest) error {
	d, err := s.NewMFADisable(ctx, by, in)
	if err != nil {
		return err
	}
	return s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.DisableMFATx(ctx, tx, d) })
}

// clearMFA turns userID's MFA off in tx and returns the account as it was.
func (s *Service) clearMFA(ctx context.Context, tx *sqldb.Tx, userID string) (account, error) {
	const op = "accounts.clearMFA"
	a, err := userByID(ctx, tx, userID)
	if err != nil {
		return account{}, err
	}
	if err := s.forgetUser(ctx, tx, a.ID); err != nil {
		return account{}, err
	}
	if _, err := exec(ctx, tx, op, `UPDATE accounts_users SET mfa_secret = '', mfa_pending = '', mfa_last_step = 0,
		updated_at = $1 WHERE id = $2`, sqldb.Micros(tx.Now), a.ID); err != nil {
		return account{}, err
	}
	_, err = exec(ctx, tx, op, `DELETE FROM accounts_recovery_codes WHERE user_id = $1`, a.ID)
	return a, err
}

// ResetMFATx resets the MFA of user id on support's request, in tx: MFA
// off (as DisableMFATx) and every session of the user revoked, so that the
// owner signs in again with the password and may enrol anew. staff says
// which kind of user id must be (NotFound otherwise): customers through
// customers.mfa_reset, staff through staff.manage. Always audited
// ("customer.mfa_reset" or "staff.mfa_reset"), by "system" from the
// command line.
func (s *Service) ResetMFATx(ctx context.Context, tx *sqldb.Tx, by Actor, id string, staff bool) error {
	a, err := userByID(ctx, tx, id)
	if err != nil {
		return err
	}
	if a.staff() != staff || a.erased() {
		return errUserNotFound
	}
	if _, err := s.clearMFA(ctx, tx, a.ID); err != nil {
		return err
	}
	if err := s.revokeUserTokens(ctx, tx, a.ID, ""); err != nil {
		return err
	}
	action := "customer.mfa_reset"
	if staff {
		action = "staff.mfa_reset"
	}
	return s.audit(ctx, tx, by, action, "user", a.ID, map[string]any{"mfa": a.MFASecret != ""},
		map[string]any{"mfa": false, "sessions_revoked": true})
}

// ResetMFAByEmail resets the MFA of the user with email (customer or
// staff) for `mercato admin reset-mfa`, audited as by "system", as one
// unit of the write path. NotFound when there is no such live user.
func (s *Service) ResetMFAByEmail(ctx context.Context, email string) (User, error) {
	var v errs.Validation
	email = emailField(&v, "email", email)
	if err := v.Err("accounts.resetMFA"); err != nil {
		return User{}, err
	}
	var u User
	err := s.write.Do(ctx, func(tx *sqldb.Tx) error {
		a, err := userByEmail(ctx, tx, email)
		if err != nil {
			return err
		}
		u = a.User
		return s.ResetMFATx(ctx, tx, systemActor, a.ID, a.staff())
	})
	return u, err
}
