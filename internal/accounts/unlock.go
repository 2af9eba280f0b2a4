package accounts

import (
	"context"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// The purposes of mailed tokens (accounts_password_resets.purpose).
const (
	purposeReset  = "password_reset"
	purposeUnlock = "unlock"
)

// UnlockRequest is the body of POST /api/v1/auth/unlock.
type UnlockRequest struct {
	Email string `json:"email" maxlen:"254"`
}

// UnlockConfirmRequest is the body of POST /api/v1/auth/unlock/confirm.
type UnlockConfirmRequest struct {
	Token string `json:"token" maxlen:"128"`
}

// issueMailToken stores a new single-use token of purpose for userID,
// expiring after Config.ResetTokenTTL, and returns it ("" when one of that
// purpose was issued within resetRequestGap: no second mail). Only its
// hash is stored.
func (s *Service) issueMailToken(ctx context.Context, tx *sqldb.Tx, userID, purpose string) (string, error) {
	const op = "accounts.issueMailToken"
	var recent int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM accounts_password_resets
		WHERE user_id = $1 AND purpose = $2 AND created_at > $3`,
		userID, purpose, sqldb.Micros(tx.Now.Add(-resetRequestGap))).Scan(&recent); err != nil {
		return "", errs.E(op, errs.Internal, err)
	}
	if recent > 0 {
		return "", nil
	}
	tok, h := newToken()
	if _, err := exec(ctx, tx, op, `INSERT INTO accounts_password_resets (token_hash, user_id, created_at, expires_at, purpose)
		VALUES ($1, $2, $3, $4, $5)`, h, userID, sqldb.Micros(tx.Now), sqldb.Micros(tx.Now.Add(s.cfg.ResetTokenTTL)), purpose); err != nil {
		return "", err
	}
	return tok, nil
}

// useMailToken uses up token of purpose with a conditional write and
// deletes the user's other unused tokens of that purpose, in tx. It returns
// the token's user, or a nil error and "" when the token is unknown,
// expired, used or of another purpose.
func useMailToken(ctx context.Context, tx *sqldb.Tx, token, purpose string) (string, error) {
	const op = "accounts.useMailToken"
	now := sqldb.Micros(tx.Now)
	var userID string
	err := tx.QueryRowContext(ctx, `UPDATE accounts_password_resets SET used_at = $1
		WHERE token_hash = $2 AND purpose = $3 AND used_at = 0 AND expires_at > $1 RETURNING user_id`,
		now, hashToken(token), purpose).Scan(&userID)
	if isNoRows(err) {
		return "", nil
	}
	if err != nil {
		return "", errs.E(op, errs.Internal, err)
	}
	if _, err := exec(ctx, tx, op, `DELETE FROM accounts_password_resets WHERE user_id = $1 AND purpose = $2 AND used_at = 0`,
		userID, purpose); err != nil {
		return "", err
	}
	return userID, nil
}

// CheckUnlockRequest validates an unlock request's address (before any
// other work) and returns its canonical form.
func CheckUnlockRequest(in UnlockRequest) (string, error) {
	var v errs.Validation
	email := emailField(&v, "email", in.Email)
	return email, v.Err("accounts.requestUnlock")
}

// RequestUnlock queues an unlock link for the account with email and
// returns at once (like RequestReset): the link is mailed only when the
// account exists, is live, and a login lock is in force on it, at most
// once a minute. 429 when the queue is full.
func (s *Service) RequestUnlock(email string) error {
	return s.jobs.add(job{name: "unlock", run: func(ctx context.Context) error {
		return s.mailAfter(ctx, func(tx *sqldb.Tx) (*Message, error) { return s.commitRequestUnlock(ctx, tx, email) })
	}})
}

func (s *Service) commitRequestUnlock(ctx context.Context, tx *sqldb.Tx, email string) (*Message, error) {
	a, err := userByEmail(ctx, tx, email)
	if errs.Is(err, errs.NotFound) || (err == nil && (a.Disabled || a.erased())) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	until, err := s.lockedUntil(ctx, tx, email, tx.Now)
	if err != nil || until.IsZero() {
		return nil, err
	}
	tok, err := s.issueMailToken(ctx, tx, a.ID, purposeUnlock)
	if tok == "" || err != nil {
		return nil, err
	}
	return &Message{Kind: purposeUnlock, To: a.Email, Subject: "Unlock your account", Text: s.mailText(tok,
		"Sign-in to your account was paused after failed attempts. If you want to sign in now, confirm with this within "+
			s.cfg.ResetTokenTTL.String()+":",
		"If you did not ask for this, someone else may be guessing your password: consider changing it.")}, nil
}

var errBadUnlockToken = errs.E("accounts.confirmUnlock", errs.Invalid, errs.CodeValidation, "the unlock token is invalid, expired or used",
	[]errs.FieldError{{Field: "token", Message: "is invalid, expired or already used"}})

// ConfirmUnlockTx uses an unlock token, from client address ip, in tx: it
// clears every failure count and lock of the account and makes ip a known
// address of it (so the all-addresses lock does not stop it again).
func (s *Service) ConfirmUnlockTx(ctx context.Context, tx *sqldb.Tx, ip string, in UnlockConfirmRequest) error {
	var v errs.Validation
	v.Check(in.Token != "", "token", "is required")
	capField(&v, "token", in.Token, maxTokenLen)
	if err := v.Err("accounts.confirmUnlock"); err != nil {
		return err
	}
	userID, err := useMailToken(ctx, tx, in.Token, purposeUnlock)
	if err != nil || userID == "" {
		return orErr(err, errBadUnlockToken)
	}
	a, err := userByID(ctx, tx, userID)
	if err != nil {
		return err
	}
	if a.Disabled || a.erased() {
		return errBadUnlockToken
	}
	if err := clearLocks(ctx, tx, a.Email); err != nil {
		return err
	}
	_, err = exec(ctx, tx, "accounts.confirmUnlock", `INSERT INTO accounts_login_throttle
			(email, client, failures, last_failure_at, locked_until, known_until) VALUES ($1, $2, 0, 0, 0, $3)
		ON CONFLICT (email, client) DO UPDATE SET known_until = $3`,
		a.Email, ip, sqldb.Micros(tx.Now.Add(s.cfg.Throttle.KnownFor)))
	return err
}
