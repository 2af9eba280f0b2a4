package accounts

import (
	"context"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// ProfileExport is the profile section of an export.
type ProfileExport struct {
	ID         string    `json:"id"`
	Email      string    `json:"email"`
	Name       string    `json:"name"`
	Roles      []string  `json:"roles"`
	MFAEnabled bool      `json:"mfa_enabled"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Export returns every piece of personal data mercato holds about userID:
// {"exported_at", "profile", "addresses", <each module's section>} (the
// modules' parts are given with UsePrivacy).
func (s *Service) Export(ctx context.Context, userID string) (map[string]any, error) {
	const op = "accounts.Export"
	a, err := userByID(ctx, s.db.Reader(), userID)
	if err != nil {
		return nil, err
	}
	addrs, err := listAddresses(ctx, s.db.Reader(), userID)
	if err != nil {
		return nil, err
	}
	logins, err := loginAddresses(ctx, s.db.Reader(), a.Email)
	if err != nil {
		return nil, err
	}
	out := map[string]any{
		"login_addresses": logins,
		"exported_at":     s.db.Now().Truncate(time.Second),
		"profile": ProfileExport{ID: a.ID, Email: a.Email, Name: a.Name, Roles: a.Roles, MFAEnabled: a.MFASecret != "",
			CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt},
		"addresses": addrs,
	}
	for _, p := range s.privacyParts() {
		if p.Export == nil {
			continue
		}
		data, err := p.Export(ctx, userID)
		if err != nil {
			return nil, errs.E(op, err)
		}
		if _, dup := out[p.Section]; dup || p.Section == "" {
			return nil, errs.E(op, errs.Internal, "export section "+p.Section+" is taken")
		}
		out[p.Section] = data
	}
	return out, nil
}

// EraseRequest is the body of POST /api/v1/me/erase: the password confirms.
type EraseRequest struct {
	Password string `json:"password" maxlen:"256"`
}

// EraseResponse answers an erasure.
type EraseResponse struct {
	ID       string    `json:"id"`
	Erased   bool      `json:"erased"`
	ErasedAt time.Time `json:"erased_at"`
}

// erasedEmail is the address an erased account keeps: unique, undeliverable
// (.invalid is reserved, RFC 2606), and personal to no one.
func erasedEmail(id string) string { return "erased-" + id + "@invalid" }

// EraseTx anonymises the customer userID in tx: e-mail and name
// replaced, password hash, MFA secrets, addresses, recovery codes, reset
// tokens, sessions and the login-throttle row removed, and every other
// module's personal data of the customer erased in the same unit (their
// Privacy.Erase). The user row and its id stay (orders and payments refer
// to it). Emits customer.erased; audited when staff erase someone. Erasing
// an erased customer changes nothing.
func (s *Service) EraseTx(ctx context.Context, tx *sqldb.Tx, by Actor, userID string) (EraseResponse, error) {
	const op = "accounts.erase"
	a, err := userByID(ctx, tx, userID)
	if err != nil {
		return EraseResponse{}, err
	}
	if a.erased() {
		return EraseResponse{ID: a.ID, Erased: true, ErasedAt: a.ErasedAt}, nil
	}
	if err := s.forgetUser(ctx, tx, a.ID); err != nil {
		return EraseResponse{}, err
	}
	now := sqldb.Micros(tx.Now)
	if _, err := exec(ctx, tx, op, `UPDATE accounts_users SET email = $1, name = '', password_hash = '',
		mfa_secret = '', mfa_pending = '', mfa_last_step = 0, disabled = 1,
		erased_at = $2, updated_at = $2 WHERE id = $3`, erasedEmail(a.ID), now, a.ID); err != nil {
		return EraseResponse{}, err
	}
	for _, q := range []string{
		`DELETE FROM accounts_addresses WHERE user_id = $1`,
		`DELETE FROM accounts_recovery_codes WHERE user_id = $1`,
		`DELETE FROM accounts_password_resets WHERE user_id = $1`,
		`DELETE FROM accounts_tokens WHERE user_id = $1`,
	} {
		if _, err := exec(ctx, tx, op, q, a.ID); err != nil {
			return EraseResponse{}, err
		}
	}
	if err := deleteThrottle(ctx, tx, a.Email); err != nil {
		return EraseResponse{}, err
	}
	// The answers idempotency recorded for the customer go too (sealed, but
	// personal all the same).
	if s.idem != nil {
		for _, scope := range []string{web.UserScope(a.ID), web.AnonymousScope("email:" + a.Email)} {
			if _, err := s.idem.Store().Forget(ctx, tx, scope); err != nil {
				return EraseResponse{}, errs.E(op, err)
			}
		}
	}
	for _, p := range s.privacyParts() {
		if p.Erase != nil {
			if err := p.Erase(ctx, tx, a.ID); err != nil {
				return EraseResponse{}, errs.E(op, err)
			}
		}
	}
	ev, err := CustomerErased.New(a.ID, tx.Now, CustomerRef{CustomerID: a.ID})
	if err != nil {
		return EraseResponse{}, errs.E(op, errs.Internal, err)
	}
	if err := outbox.Append(ctx, tx, &ev); err != nil {
		return EraseResponse{}, errs.E(op, err)
	}
	if by.ID != a.ID {
		// The summary names no personal data: the log outlives the erasure.
		if err := s.audit(ctx, tx, by, "customer.erased", "user", a.ID,
			map[string]any{"erased": false}, map[string]any{"erased": true}); err != nil {
			return EraseResponse{}, err
		}
	}
	return EraseResponse{ID: a.ID, Erased: true, ErasedAt: tx.Now}, nil
}

var errStaffErase = errs.E("accounts.erase", errs.Forbidden,
	"staff accounts are not erased through self-service; an admin disables them")

// CheckSelfErase checks, outside any transaction, that the caller is a
// customer and confirms with the password (a wrong one counts as a failed
// login); then EraseTx(by, by.ID) erases.
func (s *Service) CheckSelfErase(ctx context.Context, by Actor, in EraseRequest) error {
	var v errs.Validation
	v.Check(in.Password != "", "password", "is required")
	capField(&v, "password", in.Password, maxPasswordLen)
	if err := v.Err("accounts.erase"); err != nil {
		return err
	}
	a, err := s.checkOwnPassword(ctx, by, "password", in.Password, nil)
	if err != nil {
		return err
	}
	if a.staff() {
		return errStaffErase
	}
	return nil
}

// EraseCustomerTx erases the customer id on a staff member's request, in
// tx. NotFound when id is not a customer.
func (s *Service) EraseCustomerTx(ctx context.Context, tx *sqldb.Tx, by Actor, id string) (EraseResponse, error) {
	a, err := userByID(ctx, tx, id)
	if err != nil {
		return EraseResponse{}, err
	}
	if a.staff() {
		return EraseResponse{}, errUserNotFound
	}
	return s.EraseTx(ctx, tx, by, id)
}

// EraseCustomer is EraseCustomerTx as one unit of the write path.
func (s *Service) EraseCustomer(ctx context.Context, by Actor, id string) (EraseResponse, error) {
	var res EraseResponse
	err := s.write.Do(ctx, func(tx *sqldb.Tx) (err error) {
		res, err = s.EraseCustomerTx(ctx, tx, by, id)
		return err
	})
	return res, err
}

// LoginAddress is what the brute-force throttle keeps of one client address
// that tried to sign in to an account: personal data, so it is exported.
type LoginAddress struct {
	Address       string    `json:"address"`
	Failures      int       `json:"failures"`
	LastFailureAt time.Time `json:"last_failure_at,omitempty"`
	KnownUntil    time.Time `json:"known_until,omitempty"` // signed in from it: spared by the account-wide lock until then
}

// loginAddresses lists the throttle's rows of email's client addresses.
func loginAddresses(ctx context.Context, q querier, email string) ([]LoginAddress, error) {
	rows, err := q.QueryContext(ctx, `SELECT client, failures, last_failure_at, known_until
		FROM accounts_login_throttle WHERE email = $1 AND client <> $2 ORDER BY client`, email, anyClient)
	if err != nil {
		return nil, errs.E("accounts.Export", errs.Internal, err)
	}
	defer rows.Close()
	out := []LoginAddress{}
	for rows.Next() {
		var l LoginAddress
		var last, known int64
		if err := rows.Scan(&l.Address, &l.Failures, &last, &known); err != nil {
			return nil, errs.E("accounts.Export", errs.Internal, err)
		}
		l.LastFailureAt, l.KnownUntil = sqldb.FromMicros(last), sqldb.FromMicros(known)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E("accounts.Export", errs.Internal, err)
	}
	return out, nil
}
