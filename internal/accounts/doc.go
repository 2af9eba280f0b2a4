// Package accounts is mercato's accounts module: customer registration and
// login, opaque session tokens (bearer or the mercato_session cookie), the
// roles and permission table behind web.Authenticator, staff management,
// the customer address book, password change and reset, TOTP two-factor
// sign-in, brute-force back-off, and personal-data export and erasure.
//
// # Owns
//
//	accounts_users            one row per user; e-mail normalised and unique;
//	                          roles space-separated; erased users keep their id
//	accounts_tokens           sessions and channel tokens, by SHA-256 of the token
//	accounts_addresses        address books, at most one default per user
//	accounts_recovery_codes   MFA recovery codes, by hash, single use
//	accounts_password_resets  reset tokens, by hash, single use, expiring
//	accounts_login_throttle   failed logins per normalised e-mail
//
// # Emits (outbox, same transaction as the change)
//
//	customer.registered  {customer_id}  on registration
//	customer.erased      {customer_id}  on erasure (self-service or staff)
//
// Events carry the id only: contact data stays in this module, where erasure
// can remove it; consumers that need an address call Service.User.
//
// # Consumes
//
// No events. Other modules plug into the personal-data export through
// Exporter (Service.RegisterExporter); the channels module issues channel
// tokens through Service.IssueChannelToken. Every state-changing staff
// action is written to the audit log (package audit) in its transaction.
//
// # Passwords and tokens
//
// Passwords are argon2id (DefaultHashParams: 19 MiB, t=2, p=1) in PHC form,
// hashed outside any transaction and at most Config.HashSlots at a time
// (GOMAXPROCS by default) so that a login flood queues rather than exhausts
// memory. An unknown address is checked against a dummy hash, so it answers
// like a wrong password, in about the same time. Tokens are "mct_" and 256
// random bits in base64url; only their SHA-256 is stored. Customers' tokens
// live 30 days, staff's 12 hours; logout revokes the token, a password change
// every other token of the user, a reset or a disable all of them.
//
// # Brute force
//
// See ThrottleConfig: after 10 failures in a row for one e-mail (known or
// not) or 50 from one client address, login answers 429 rate_limited with
// Retry-After for 30 s, doubling per further failure up to 15 min. Only
// failures count; during the window even the right password gets 429. A
// wrong current password on /me/password or /me/erase counts too. The
// client address is Config.ClientIP(r): the connection's peer unless the
// wiring reads a trusted proxy's header.
//
// # Housekeeping
//
// Service.Prune deletes expired and revoked tokens (a day after), used or
// expired reset tokens and idle throttle rows; the process runs it
// periodically. Password reset e-mails go to the Mailer given to New
// (LogMailer until SMTP exists: it logs the link, for development only);
// a reset request with a malformed address is 422, any other is 202 whether
// or not the address has an account, and at most one mail a minute goes to
// one account.
//
// # Two-factor sign-in
//
// Any user may enrol TOTP (POST /me/mfa/enroll, then /me/mfa/verify with a
// first code, which returns 10 single-use recovery codes once). With MFA
// active, login needs "otp": a TOTP code of a step later than the last one
// accepted, or an unused recovery code; without it the answer is 401
// mfa_required, with a wrong one 401 unauthorized (counted as a failure).
//
// With Config.StaffMFARequired (MERCATO_STAFF_MFA=required), a staff member
// without active MFA still logs in, but gets a short-lived (15 min) token
// whose principal has no roles, and "mfa_setup_required": true in the login
// answer: it can call /me routes (enrol and verify MFA, change the password,
// log out) and every staff route answers 403. Verifying MFA with it lifts
// that token to a normal staff session.
//
// # Routes (besides API.md's register, login, logout, me)
//
//	PATCH  /api/v1/me                               {name}
//	POST   /api/v1/me/password                      {current_password, new_password} → 204
//	POST   /api/v1/auth/password-reset              {email} → 202 always
//	POST   /api/v1/auth/password-reset/confirm      {token, new_password} → 204
//	GET    /api/v1/me/addresses, POST (201), PATCH/DELETE /api/v1/me/addresses/{id}
//	POST   /api/v1/me/mfa/enroll, /api/v1/me/mfa/verify {code}
//	GET    /api/v1/me/export;  POST /api/v1/me/erase {password} (customers)
//	GET    /api/v1/admin/staff, POST (201)                   staff.manage
//	POST   /api/v1/admin/staff/{id}/disable, …/enable         staff.manage
//	PUT    /api/v1/admin/staff/{id}/roles {roles}             staff.manage
//	GET    /api/v1/admin/customers?q=&limit=&cursor=, …/{id}  customers.read
//	POST   /api/v1/admin/customers/{id}/erase                 customers.write
package accounts

import (
	"embed"

	"mercato/internal/platform/migrate"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the accounts tables' migrations.
func Migrations() migrate.Source { return migrate.Embedded("accounts", migrations) }
