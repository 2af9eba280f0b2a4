package accounts

import (
	"context"
	"slices"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// StaffUser is a staff account as admins see it.
type StaffUser struct {
	ID         string    `json:"id"`
	Email      string    `json:"email"`
	Name       string    `json:"name"`
	Roles      []string  `json:"roles"`
	Disabled   bool      `json:"disabled"`
	MFAEnabled bool      `json:"mfa_enabled"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func staffView(a account) StaffUser {
	return StaffUser{ID: a.ID, Email: a.Email, Name: a.Name, Roles: a.Roles, Disabled: a.Disabled,
		MFAEnabled: a.MFASecret != "", CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

// Customer is a customer account as staff see it. Addresses is filled on
// the single-customer read only.
type Customer struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Erased    bool      `json:"erased"`
	CreatedAt time.Time `json:"created_at"`
	Addresses []Address `json:"addresses,omitempty"`
}

func customerView(a account) Customer {
	return Customer{ID: a.ID, Email: a.Email, Name: a.Name, Erased: a.erased(), CreatedAt: a.CreatedAt}
}

// CreateStaffRequest is the body of POST /api/v1/admin/staff.
type CreateStaffRequest struct {
	Email    string   `json:"email" maxlen:"254"`
	Name     string   `json:"name" maxlen:"200"`
	Password string   `json:"password" maxlen:"256"`
	Roles    []string `json:"roles"`
}

// RolesRequest is the body of PUT /api/v1/admin/staff/{id}/roles.
type RolesRequest struct {
	Roles []string `json:"roles"`
}

var errNotStaffRoles = errs.E("accounts.staff", errs.Invalid, errs.CodeValidation, "staff roles are required",
	[]errs.FieldError{{Field: "roles", Message: "must be one or more of admin, operator, customer_service"}})

// prepareStaff validates a new staff member and hashes the password.
func (s *Service) prepareStaff(ctx context.Context, in CreateStaffRequest) (preparedUser, error) {
	if roles, ok := normalizeRoles(in.Roles); ok && !isStaff(roles) {
		return preparedUser{}, errNotStaffRoles
	}
	return s.prepareUser(ctx, newUserInput{Email: in.Email, Password: in.Password, Name: in.Name, Roles: in.Roles}, false)
}

// listStaff returns a page of staff, newest first.
func (s *Service) listStaff(ctx context.Context, page web.PageRequest) (Page[StaffUser], error) {
	rows, next, err := listUsers(ctx, s.db.Reader(), userFilter{staff: true, page: page})
	if err != nil {
		return Page[StaffUser]{}, err
	}
	p := Page[StaffUser]{Items: make([]StaffUser, 0, len(rows)), NextCursor: next}
	for _, a := range rows {
		p.Items = append(p.Items, staffView(a))
	}
	return p, nil
}

// listCustomers returns a page of customers matching q (a substring of
// e-mail or name, any case), newest first.
func (s *Service) listCustomers(ctx context.Context, q string, page web.PageRequest) (Page[Customer], error) {
	rows, next, err := listUsers(ctx, s.db.Reader(), userFilter{q: q, page: page})
	if err != nil {
		return Page[Customer]{}, err
	}
	p := Page[Customer]{Items: make([]Customer, 0, len(rows)), NextCursor: next}
	for _, a := range rows {
		p.Items = append(p.Items, customerView(a))
	}
	return p, nil
}

// customer returns the customer id with addresses; NotFound for staff ids.
func (s *Service) customer(ctx context.Context, id string) (Customer, error) {
	a, err := userByID(ctx, s.db.Reader(), id)
	if err != nil {
		return Customer{}, err
	}
	if a.staff() {
		return Customer{}, errUserNotFound
	}
	c := customerView(a)
	if c.Addresses, err = listAddresses(ctx, s.db.Reader(), id); err != nil {
		return Customer{}, err
	}
	return c, nil
}

// staffByID loads staff member id in tx; NotFound for customers.
func staffByID(ctx context.Context, tx *sqldb.Tx, id string) (account, error) {
	a, err := userByID(ctx, tx, id)
	if err == nil && !a.staff() {
		err = errUserNotFound
	}
	return a, err
}

var errLastAdmin = errs.E("accounts.staff", errs.Conflict, "at least one enabled admin must remain")

// otherAdmins counts enabled admins other than id. On PostgreSQL it locks
// their rows, so that two admins disabling each other at once cannot both
// pass the check (SQLite's single writer serialises them anyway).
func otherAdmins(ctx context.Context, tx *sqldb.Tx, id string) (int, error) {
	q := `SELECT id FROM accounts_users WHERE disabled = 0 AND erased_at = 0 AND (' ' || roles || ' ') LIKE '% admin %' ORDER BY id`
	if tx.Engine() == sqldb.Postgres {
		q += ` FOR UPDATE`
	}
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return 0, errs.E("accounts.otherAdmins", errs.Internal, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var other string
		if err := rows.Scan(&other); err != nil {
			return 0, errs.E("accounts.otherAdmins", errs.Internal, err)
		}
		if other != id {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		return 0, errs.E("accounts.otherAdmins", errs.Internal, err)
	}
	return n, nil
}

// setDisabled disables or enables staff member id, in tx. Disabling revokes
// the member's sessions and is refused for the last enabled admin.
func (s *Service) setDisabled(ctx context.Context, tx *sqldb.Tx, by Actor, id string, disabled bool) (StaffUser, error) {
	const op = "accounts.setDisabled"
	a, err := staffByID(ctx, tx, id)
	if err != nil {
		return StaffUser{}, err
	}
	if a.Disabled == disabled {
		return staffView(a), nil
	}
	if disabled && slices.Contains(a.Roles, RoleAdmin) {
		if n, err := otherAdmins(ctx, tx, id); err != nil || n == 0 {
			return StaffUser{}, orErr(err, errLastAdmin)
		}
	}
	flag := 0
	if disabled {
		flag = 1
	}
	if err := s.forgetUser(ctx, tx, id); err != nil {
		return StaffUser{}, err
	}
	if _, err := exec(ctx, tx, op, `UPDATE accounts_users SET disabled = $1, updated_at = $2 WHERE id = $3`,
		flag, sqldb.Micros(tx.Now), id); err != nil {
		return StaffUser{}, err
	}
	if disabled {
		if err := s.revokeUserTokens(ctx, tx, id, ""); err != nil {
			return StaffUser{}, err
		}
	}
	action := "staff.enabled"
	if disabled {
		action = "staff.disabled"
	}
	if err := s.audit(ctx, tx, by, action, "user", id, map[string]any{"disabled": a.Disabled},
		map[string]any{"disabled": disabled}); err != nil {
		return StaffUser{}, err
	}
	a.Disabled, a.UpdatedAt = disabled, tx.Now
	return staffView(a), nil
}

// setRoles replaces staff member id's roles, in tx. Taking the admin role
// from the last enabled admin is refused.
func (s *Service) setRoles(ctx context.Context, tx *sqldb.Tx, by Actor, id string, roles []string) (StaffUser, error) {
	const op = "accounts.setRoles"
	roles, ok := normalizeRoles(roles)
	if !ok || !isStaff(roles) {
		return StaffUser{}, errNotStaffRoles
	}
	a, err := staffByID(ctx, tx, id)
	if err != nil {
		return StaffUser{}, err
	}
	if slices.Equal(a.Roles, roles) {
		return staffView(a), nil
	}
	if slices.Contains(a.Roles, RoleAdmin) && !slices.Contains(roles, RoleAdmin) && !a.Disabled {
		if n, err := otherAdmins(ctx, tx, id); err != nil || n == 0 {
			return StaffUser{}, orErr(err, errLastAdmin)
		}
	}
	if err := s.forgetUser(ctx, tx, id); err != nil {
		return StaffUser{}, err
	}
	if _, err := exec(ctx, tx, op, `UPDATE accounts_users SET roles = $1, updated_at = $2 WHERE id = $3`,
		joinRoles(roles), sqldb.Micros(tx.Now), id); err != nil {
		return StaffUser{}, err
	}
	if err := s.audit(ctx, tx, by, "staff.roles_changed", "user", id, map[string]any{"roles": a.Roles},
		map[string]any{"roles": roles}); err != nil {
		return StaffUser{}, err
	}
	a.Roles, a.UpdatedAt = roles, tx.Now
	return staffView(a), nil
}

// orErr returns err when it is set, else fallback.
func orErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

// ProfileRequest is the body of PATCH /api/v1/me.
type ProfileRequest struct {
	Name *string `json:"name,omitempty" maxlen:"200"`
}

// updateProfile changes the caller's name, in tx (audited for staff).
func (s *Service) updateProfile(ctx context.Context, tx *sqldb.Tx, by Actor, in ProfileRequest) (User, error) {
	const op = "accounts.updateProfile"
	a, err := userByID(ctx, tx, by.ID)
	if err != nil {
		return User{}, err
	}
	if in.Name == nil {
		return a.User, nil
	}
	var v errs.Validation
	name := nameField(&v, "name", *in.Name, a.staff())
	if err := v.Err(op); err != nil {
		return User{}, err
	}
	if err := s.forgetUser(ctx, tx, a.ID); err != nil {
		return User{}, err
	}
	if _, err := exec(ctx, tx, op, `UPDATE accounts_users SET name = $1, updated_at = $2 WHERE id = $3`,
		name, sqldb.Micros(tx.Now), a.ID); err != nil {
		return User{}, err
	}
	if a.staff() {
		if err := s.audit(ctx, tx, by, "user.profile_updated", "user", a.ID,
			map[string]any{"name": a.Name}, map[string]any{"name": name}); err != nil {
			return User{}, err
		}
	}
	a.Name = name
	return a.User, nil
}
