package accounts

import (
	"context"
	"log/slog"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// Message is an e-mail to send. Kind names what it is ("password_reset",
// "unlock") for logs, which never hold the address or the text.
type Message struct {
	Kind, To, Subject, Text string
}

// Mailer sends e-mail. Send must be safe for concurrent use; it is called
// after the transaction that wants the mail has committed.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// LogMailer is the Mailer when none is configured: it sends nothing and
// logs (at warning level) that a mail of its kind was not sent — never the
// recipient, the subject or the text, which holds a secret link.
type LogMailer struct{ Logger *slog.Logger }

// Send logs that m was not sent.
func (l LogMailer) Send(ctx context.Context, m Message) error {
	l.Logger.WarnContext(ctx, "e-mail not sent: no mailer is configured", "kind", m.Kind)
	return nil
}

// resetRequestGap is the least time between two reset (or two unlock)
// e-mails to one account (a guard against mail bombing through the public
// endpoints).
const resetRequestGap = time.Minute

// ChangePasswordRequest is the body of POST /api/v1/me/password.
type ChangePasswordRequest struct {
	CurrentPassword string `json:"current_password" maxlen:"256"`
	NewPassword     string `json:"new_password" maxlen:"256"`
}

// ResetRequest is the body of POST /api/v1/auth/password-reset.
type ResetRequest struct {
	Email string `json:"email" maxlen:"254"`
}

// ResetConfirmRequest is the body of POST /api/v1/auth/password-reset/confirm.
type ResetConfirmRequest struct {
	Token       string `json:"token" maxlen:"128"`
	NewPassword string `json:"new_password" maxlen:"256"`
}

// checkOwnPassword verifies the signed-in user's password (password change,
// erasure, MFA changes). It is counted like a login attempt for the account
// and the caller's address before it is hashed (so a stolen session cannot
// guess it quickly; 429 while locked); a wrong one is a 422 on field.
// more, when set, checks more (a second factor) within the same attempt:
// an error from it also stays counted. Otherwise the attempt ends as a
// successful login does.
func (s *Service) checkOwnPassword(ctx context.Context, by Actor, field, password string, more func(account) error) (account, error) {
	a, err := userByID(ctx, s.db.Reader(), by.ID)
	if err != nil {
		return account{}, err
	}
	if s.hash.busy() {
		return account{}, errBusy
	}
	at, err := s.beginAttempt(ctx, a.Email, by.IP)
	if err != nil {
		return account{}, err
	}
	ok, err := s.hash.Verify(ctx, password, a.PasswordHash)
	if err != nil {
		s.ips.end(by.IP, false, s.db.Now())
		s.undo(ctx, at)
		return account{}, err
	}
	if !ok {
		err = errs.E("accounts.checkPassword", errs.Invalid, errs.CodeValidation, "the password is wrong",
			[]errs.FieldError{{Field: field, Message: "is wrong"}})
	} else if more != nil {
		err = more(a)
	}
	s.ips.end(by.IP, err != nil, s.db.Now())
	if err != nil {
		return account{}, err
	}
	if err := s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.succeeded(ctx, tx, at) }); err != nil {
		return account{}, err
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
	capField(&v, "current_password", in.CurrentPassword, maxPasswordLen)
	checkPassword(&v, "new_password", in.NewPassword)
	if err := v.Err("accounts.changePassword"); err != nil {
		return PasswordChange{}, err
	}
	if _, err := s.checkOwnPassword(ctx, by, "current_password", in.CurrentPassword, nil); err != nil {
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

// checkResetRequest validates a reset request's address (before any
// other work) and returns its canonical form.
func checkResetRequest(in ResetRequest) (string, error) {
	var v errs.Validation
	email := emailField(&v, "email", in.Email)
	return email, v.Err("accounts.requestReset")
}

// RequestReset queues a password reset for the account with email (after
// checkResetRequest's validation) and returns at once: the token is
// written and mailed by the job queue, so the answer takes the same time
// whether or not the address has an account. 429 when the queue is full.
func (s *Service) RequestReset(email string) error {
	return s.jobs.add(job{name: "password_reset", run: func(ctx context.Context) error {
		return s.mailAfter(ctx, func(tx *sqldb.Tx) (*Message, error) { return s.commitRequestReset(ctx, tx, email) })
	}})
}

// mailAfter runs commit as a unit of the write path and sends the message
// it returns, if any, once that unit has committed.
func (s *Service) mailAfter(ctx context.Context, commit func(tx *sqldb.Tx) (*Message, error)) error {
	var msg *Message
	if err := s.write.Do(ctx, func(tx *sqldb.Tx) (err error) {
		msg, err = commit(tx)
		return err
	}); err != nil || msg == nil {
		return err
	}
	return s.mailer.Send(ctx, *msg)
}

// commitRequestReset stores a reset token for the account with email, if
// there is a live one and none was requested within resetRequestGap, and
// returns the e-mail to send after commit (nil: none).
func (s *Service) commitRequestReset(ctx context.Context, tx *sqldb.Tx, email string) (*Message, error) {
	a, err := userByEmail(ctx, tx, email)
	if errs.Is(err, errs.NotFound) || (err == nil && (a.Disabled || a.erased())) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	tok, err := s.issueMailToken(ctx, tx, a.ID, purposeReset)
	if tok == "" || err != nil {
		return nil, err
	}
	return &Message{Kind: purposeReset, To: a.Email, Subject: "Reset your password", Text: s.mailText(tok,
		"Someone asked to reset the password of your account. If it was you, use this within "+s.cfg.ResetTokenTTL.String()+":",
		"If it was not you, ignore this message; your password stays as it is.")}, nil
}

// mailText is the text of a mail carrying tok: intro, the link, outro.
func (s *Service) mailText(tok, intro, outro string) string {
	link := tok
	if s.cfg.ResetURL != "" {
		link = s.cfg.ResetURL + tok
	}
	return intro + "\n\n    " + link + "\n\n" + outro + "\n"
}

// prepareResetConfirm validates the token and the new password (caps
// first) and hashes the password.
func (s *Service) prepareResetConfirm(ctx context.Context, in ResetConfirmRequest) (string, error) {
	var v errs.Validation
	v.Check(in.Token != "", "token", "is required")
	capField(&v, "token", in.Token, maxTokenLen)
	checkPassword(&v, "new_password", in.NewPassword)
	if err := v.Err("accounts.confirmReset"); err != nil {
		return "", err
	}
	return s.hash.Hash(ctx, in.NewPassword)
}

var errBadResetToken = errs.E("accounts.confirmReset", errs.Invalid, errs.CodeValidation, "the reset token is invalid, expired or used",
	[]errs.FieldError{{Field: "token", Message: "is invalid, expired or already used"}})

// commitResetConfirm uses the reset token: sets the password, revokes all
// sessions and other reset tokens, and clears the login throttle's locks,
// in tx. It leaves MFA as it is: a reset proves the mailbox, not the
// second factor.
func (s *Service) commitResetConfirm(ctx context.Context, tx *sqldb.Tx, ip, token, hash string) error {
	const op = "accounts.confirmReset"
	userID, err := useMailToken(ctx, tx, token, purposeReset)
	if err != nil || userID == "" {
		return orErr(err, errBadResetToken)
	}
	a, err := userByID(ctx, tx, userID)
	if err != nil {
		return err
	}
	if a.Disabled || a.erased() {
		return errBadResetToken
	}
	if _, err := exec(ctx, tx, op, `UPDATE accounts_users SET password_hash = $1, updated_at = $2 WHERE id = $3`,
		hash, sqldb.Micros(tx.Now), a.ID); err != nil {
		return err
	}
	if err := s.revokeUserTokens(ctx, tx, a.ID, ""); err != nil {
		return err
	}
	if err := clearLocks(ctx, tx, a.Email); err != nil {
		return err
	}
	if a.staff() {
		return s.audit(ctx, tx, Actor{ID: a.ID, IP: ip}, "user.password_reset", "user", a.ID, nil, map[string]any{"sessions_revoked": true})
	}
	return nil
}
