package accounts

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// User is an account as the API shows it (API.md: {id, email, name, roles}).
type User struct {
	ID    string   `json:"id"`
	Email string   `json:"email"`
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

// account is a stored user row.
type account struct {
	User
	PasswordHash string
	Disabled     bool
	MFASecret    string // active TOTP secret; "" when MFA is off
	MFAPending   string // enrolled secret awaiting its first code
	MFALastStep  uint64 // the TOTP time step last accepted
	ErasedAt     time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

func (a account) staff() bool  { return isStaff(a.Roles) }
func (a account) erased() bool { return !a.ErasedAt.IsZero() }

// querier is what both a reader pool and a transaction offer.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// newID returns a new opaque, time-ordered id (UUIDv7).
func newID() string { return uuid.Must(uuid.NewV7()).String() }

const userColumns = `id, email, name, password_hash, roles, disabled, mfa_secret, mfa_pending,
	mfa_last_step, erased_at, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanAccount(sc scanner) (account, error) {
	var (
		a                                    account
		roles                                string
		disabled                             int
		lastStep, erasedAt, created, updated int64
	)
	err := sc.Scan(&a.ID, &a.Email, &a.Name, &a.PasswordHash, &roles, &disabled, &a.MFASecret,
		&a.MFAPending, &lastStep, &erasedAt, &created, &updated)
	if err != nil {
		return account{}, err
	}
	a.Roles, a.Disabled = splitRoles(roles), disabled != 0
	a.MFALastStep, a.ErasedAt = uint64(lastStep), sqldb.FromMicros(erasedAt)
	a.CreatedAt, a.UpdatedAt = sqldb.FromMicros(created), sqldb.FromMicros(updated)
	return a, nil
}

var errUserNotFound = errs.E("accounts", errs.NotFound, "the user does not exist")

// userBy loads the user whose column col ("id" or "email") equals v.
// Returns a NotFound error when there is none.
func userBy(ctx context.Context, q querier, col, v string) (account, error) {
	a, err := scanAccount(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM accounts_users WHERE `+col+` = $1`, v))
	if errors.Is(err, sql.ErrNoRows) {
		return account{}, errUserNotFound
	}
	if err != nil {
		return account{}, errs.E("accounts.load", errs.Internal, err)
	}
	return a, nil
}

func userByID(ctx context.Context, q querier, id string) (account, error) {
	return userBy(ctx, q, "id", id)
}

func userByEmail(ctx context.Context, q querier, email string) (account, error) {
	return userBy(ctx, q, "email", email)
}

var errEmailTaken = errs.E("accounts", errs.Conflict, errs.CodeEmailTaken, "an account with this e-mail address already exists",
	[]errs.FieldError{{Field: "email", Message: "is already registered"}})

// insertUser stores a new user (a.Email normalised, a.Roles normalised).
// Returns an email_taken Conflict when the address is registered already;
// the statement does not fail then, so tx stays usable on both engines.
func insertUser(ctx context.Context, tx *sqldb.Tx, a account) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO accounts_users (id, email, name, password_hash, roles, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (email) DO NOTHING`,
		a.ID, a.Email, a.Name, a.PasswordHash, joinRoles(a.Roles), sqldb.Micros(tx.Now))
	if err != nil {
		return errs.E("accounts.insertUser", errs.Internal, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errEmailTaken
	}
	return nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// exec runs one statement in tx, wrapping a failure as an Internal error of op.
func exec(ctx context.Context, tx *sqldb.Tx, op, query string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Page is one page of a list (API.md: {items, next_cursor}); NextCursor is
// Page is one page of a list: the API's one pagination (web.Page).
type Page[T any] = web.Page[T]

// userCursor is where a page of users starts: after this id (newest first).
type userCursor struct {
	ID string `json:"i"`
}

// likePattern turns a search string into a case-insensitive LIKE pattern
// matching it anywhere ("\" escapes).
func likePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(q)) + "%"
}

// userFilter selects users for the staff lists.
type userFilter struct {
	staff bool   // staff (any staff role) or customers
	q     string // substring of e-mail or name, case-insensitive
	page  web.PageRequest
}

// listUsers returns a page of users matching f, newest first, and the
// cursor of the next page ("" on the last).
func listUsers(ctx context.Context, q querier, f userFilter) ([]account, string, error) {
	var after userCursor
	paged, err := f.page.After(&after)
	if err != nil {
		return nil, "", err
	}
	where := []string{"roles = 'customer'"}
	if f.staff {
		where[0] = "roles <> 'customer'"
	}
	args := []any{}
	if f.q != "" {
		args = append(args, likePattern(f.q))
		where = append(where, `(lower(email) LIKE $1 ESCAPE '\' OR lower(name) LIKE $1 ESCAPE '\')`)
	}
	if paged {
		args = append(args, after.ID)
		where = append(where, "id < $"+strconv.Itoa(len(args)))
	}
	args = append(args, f.page.Limit+1)
	rows, err := q.QueryContext(ctx, `SELECT `+userColumns+` FROM accounts_users WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, "", errs.E("accounts.listUsers", errs.Internal, err)
	}
	defer rows.Close()
	out := []account{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, "", errs.E("accounts.listUsers", errs.Internal, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", errs.E("accounts.listUsers", errs.Internal, err)
	}
	p := web.NewPage(out, f.page.Limit, func(last account) any { return userCursor{ID: last.ID} })
	return p.Items, p.NextCursor, nil
}
