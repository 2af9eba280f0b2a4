package accounts

import (
	"context"
	"log/slog"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// Message is an e-mail to send.
type Message struct {
	To, Subject, Text string
}

// Mailer sends e-mail. Send must be safe for concurrent use; it is called
// after the transaction that wants the mail has committed.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// LogMailer "sends" e-mail by logging it, until an SMTP mailer exists. The
// log then holds the reset link: use it in development only.
type LogMailer struct{ Logger *slog.Logger }

// Send logs m at info level.
func (l LogMailer) Send(ctx context.Context, m Message) error {
	l.Logger.InfoContext(ctx, "e-mail (not sent: no mailer configured)", "to", m.To, "subject", m.Subject, "text", m.Text)
	return nil
}

// resetRequestGap is the least time between two reset e-mails to one
// account (a guard against mail bombing through the public endpoint).
const resetRequestGap = time.Minute

// ChangePasswordRequest is the body of POST /api/v1/me/password.
type ChangePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// ResetRequest is the body of POST /api/v1/auth/password-reset.
type ResetRequest struct {
	Email string `json:"email"`
}

// ResetConfirmRequest is the body of POST /api/v1/auth/password-reset/confirm.
type ResetConfirmRequest struct {
	Token       string `json:"token"`
	NewPassword string `json:"new_password"`
}

// checkOwnPassword verifies the signed-in user's password (password change,
// erasure). A wrong one counts as a failed login for the account (so a
// stolen session cannot guess it quickly) and is a 422 on field.
func (s *Service) checkOwnPassword(ctx context.Context, by Actor, field, password string) (account, error) {
	a, err := userByID(ctx, s.db.Reader(), by.ID)
	if err != nil {
		return account{}, err
	}
	if err := s.checkThrottle(ctx, a.Email, by.IP); err != nil {
		return account{}, err
	}
	ok, err := s.hash.Verify(ctx, password, a.PasswordHash)
	if err != nil {
		return account{}, err
	}
	if !ok {
		if err := s.recordFailure(ctx, a.Email, by.IP); err != nil {
			return account{}, err
		}
		return account{}, errs.E("accounts.checkPassword", errs.Invalid, errs.CodeValidation, "the password is wrong",
			[]errs.FieldError{{Field: field, Message: "is wrong"}})
	}
	return a, nil
}

// PasswordChange is a checked password change with the new password
// hashed: what ChangePasswordTx stores. Made by NewPasswordChange.
type PasswordChange struct {
	by          Actor
	keepSession string
	hash        string
}

// NewPasswordChange checks the caller's current password (a wrong one
// counts as a failed login) and the new one against the policy, and hashes
// the new one, outside any transaction. session is the caller's session,
// which the change keeps; every other session of the user is revoked.
func (s *Service) NewPasswordChange(ctx context.Context, by Actor, session string, in ChangePasswordRequest) (PasswordChange, error) {
	var v errs.Validation
	v.Check(in.CurrentPassword != "", "current_password", "is required")
	checkPassword(&v, "new_password", in.NewPassword)
	if err := v.Err("accounts.changePassword"); err != nil {
		return PasswordChange{}, err
	}
	if _, err := s.checkOwnPassword(ctx, by, "current_password", in.CurrentPassword); err != nil {
		return PasswordChange{}, err
	}
	h, err := s.hash.Hash(ctx, in.NewPassword)
	return PasswordChange{by: by, keepSession: session, hash: h}, err
}

// ChangePasswordTx stores the new hash and revokes every other session of
// the user, in tx. Staff changes are audited.
func (s *Service) ChangePasswordTx(ctx context.Context, tx *sqldb.Tx, pc PasswordChange) error {
	const op = "accounts.changePassword"
	a, err := userByID(ctx, tx, pc.by.ID)
	if err != nil {
		return err
	}
	if _, err := exec(ctx, tx, op, `UPDATE accounts_users SET password_hash = $1, updated_at = $2 WHERE id = $3`,
		pc.hash, sqldb.Micros(tx.Now), a.ID); err != nil {
		return err
	}
	if err := s.revokeUserTokens(ctx, tx, a.ID, pc.keepSession); err != nil {
		return err
	}
	if a.staff() {
		return s.audit(ctx, tx, pc.by, "user.password_changed", "user", a.ID, nil, map[string]any{"other_sessions_revoked": true})
	}
	return nil
}

// ChangePassword is NewPasswordChange, then ChangePasswordTx as one unit
// of the write path.
func (s *Service) ChangePassword(ctx context.Context, by Actor, session string, in ChangePasswordRequest) error {
	pc, err := s.NewPasswordChange(ctx, by, session, in)
	if err != nil {
		return err
	}
	return s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.ChangePasswordTx(ctx, tx, pc) })
}

// checkResetRequest validates a reset request's address.
func checkResetRequest(in ResetRequest) (string, error) {
	email := NormalizeEmail(in.Email)
	var v errs.Validation
	checkEmail(&v, "email", email)
	return email, v.Err("accounts.requestReset")
}

// commitRequestReset stores a reset token for the account with email, if
// there is a live one and none was requested within resetRequestGap, and
// has the e-mail sent after commit. It answers the same whether or not the
// address has an account.
func (s *Service) commitRequestReset(ctx context.Context, tx *sqldb.Tx, email string) error {
	const op = "accounts.requestReset"
	a, err := userByEmail(ctx, tx, email)
	if errs.Is(err, errs.NotFound) || (err == nil && (a.Disabled || a.erased())) {
		return nil
	}
	if err != nil {
		return err
	}
	var recent int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM accounts_password_resets WHERE user_id = $1 AND created_at > $2`,
		a.ID, sqldb.Micros(tx.Now.Add(-resetRequestGap))).Scan(&recent); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if recent > 0 {
		return nil
	}
	tok, h := newToken()
	if _, err := exec(ctx, tx, op, `INSERT INTO accounts_password_resets (token_hash, user_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4)`, h, a.ID, sqldb.Micros(tx.Now), sqldb.Micros(tx.Now.Add(s.cfg.ResetTokenTTL))); err != nil {
		return err
	}
	msg := Message{To: a.Email, Subject: "Reset your password", Text: s.resetText(tok)}
	tx.AfterCommit(func() {
		go func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := s.mailer.Send(ctx, msg); err != nil {
				s.log.ErrorContext(ctx, "accounts: reset e-mail not sent", "err", err)
			}
		}()
	})
	return nil
}

func (s *Service) resetText(tok string) string {
	link := tok
	if s.cfg.ResetURL != "" {
		link = s.cfg.ResetURL + tok
	}
	return "Someone asked to reset the password of your account. If it was you, use this within " +
		s.cfg.ResetTokenTTL.String() + ":\n\n    " + link + "\n\nIf it was not you, ignore this message; your password stays as it is.\n"
}

// prepareResetConfirm validates the new password and hashes it.
func (s *Service) prepareResetConfirm(ctx context.Context, in ResetConfirmRequest) (string, error) {
	var v errs.Validation
	v.Check(in.Token != "", "token", "is required")
	checkPassword(&v, "new_password", in.NewPassword)
	if err := v.Err("accounts.confirmReset"); err != nil {
		return "", err
	}
	return s.hash.Hash(ctx, in.NewPassword)
}

var errBadResetToken = errs.E("accounts.confirmReset", errs.Invalid, errs.CodeValidation, "the reset token is invalid, expired or used",
	[]errs.FieldError{{Field: "token", Message: "is invalid, expired or already used"}})

// commitResetConfirm uses the reset token: sets the password, revokes all
// sessions and other reset tokens, and clears the login throttle, in tx.
func (s *Service) commitResetConfirm(ctx context.Context, tx *sqldb.Tx, ip, token, hash string) error {
	const op = "accounts.confirmReset"
	now := sqldb.Micros(tx.Now)
	var userID string
	err := tx.QueryRowContext(ctx, `UPDATE accounts_password_resets SET used_at = $1
		WHERE token_hash = $2 AND used_at = 0 AND expires_at > $1 RETURNING user_id`, now, hashToken(token)).Scan(&userID)
	if isNoRows(err) {
		return errBadResetToken
	}
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	a, err := userByID(ctx, tx, userID)
	if err != nil {
		return err
	}
	if a.Disabled || a.erased() {
		return errBadResetToken
	}
	if _, err := exec(ctx, tx, op, `UPDATE accounts_users SET password_hash = $1, updated_at = $2 WHERE id = $3`, hash, now, a.ID); err != nil {
		return err
	}
	if _, err := exec(ctx, tx, op, `DELETE FROM accounts_password_resets WHERE user_id = $1 AND used_at = 0`, a.ID); err != nil {
		return err
	}
	if err := s.revokeUserTokens(ctx, tx, a.ID, ""); err != nil {
		return err
	}
	if err := resetThrottle(ctx, tx, a.Email); err != nil {
		return err
	}
	if a.staff() {
		return s.audit(ctx, tx, Actor{ID: a.ID, IP: ip}, "user.password_reset", "user", a.ID, nil, map[string]any{"sessions_revoked": true})
	}
	return nil
}
