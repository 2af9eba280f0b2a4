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
//	accounts_password_resets  mailed tokens (purpose password_reset or unlock),
//	                          by hash, single use, expiring
//	accounts_login_throttle   failed logins per normalised e-mail and client
//	                          address ('*': all addresses); addresses the
//	                          account logged in from (30 days)
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
// No events. Every module's privacy part (module.Privacy, handed over with
// Service.UseModules) joins the personal-data export — {"exported_at",
// "profile", "addresses", "login_addresses", <each module's section>} — and
// the erasure, which runs in one unit across the modules and also forgets
// the customer's recorded idempotent answers. The channels module issues
// channel tokens through Service.IssueChannelToken. Every state-changing staff
// action is written to the audit log (package audit) in its transaction.
//
// # Passwords and tokens
//
// Passwords are argon2id (DefaultHashParams: 19 MiB, t=2, p=1) in PHC form,
// hashed outside any transaction and at most Config.HashSlots at a time
// (GOMAXPROCS by default) so that a login flood queues rather than exhausts
// memory; once Config.HashQueue (64) callers wait for a slot, a password
// check is refused at once with 429 rate_limited, Retry-After 1, before
// any other work. An unknown address is checked against a dummy hash of
// the same parameters: it does exactly the work of a wrong password. Tokens are "mct_" and 256
// random bits in base64url; only their SHA-256 is stored. Customers' tokens
// live 30 days, staff's 12 hours; logout revokes the token, a password change
// every other token of the user, a reset or a disable all of them.
//
// # Identities and field caps
//
// Every field is capped before any work (no hashing, no database): e-mail
// 254 bytes, passwords 256 bytes (everywhere one is read), names 200
// characters, address lines 200 (city, region 100, postal code 20,
// phone 32), one-time codes 64 bytes, mailed tokens 128 bytes; beyond a
// cap, 422 validation_failed names the field. The struct tags maxlen:"N"
// say the same for web.Decode and the OpenAPI document.
//
// E-mail addresses are stored and compared in one canonical form
// (NormalizeEmail): NFKC (full-width and compatibility forms fold to
// their plain letters) and lower case; the local part must then be plain
// ASCII (internationalised local parts are refused: they are where
// look-alikes hide); the domain is mapped by IDNA (UTS #46, IDNA2008, the
// Bidi rule) and stored in its ASCII form (xn--…), so that NFC and NFD
// spellings meet; a domain label mixing scripts beyond UTS #39's "highly
// restrictive" level (a Cyrillic "а" among Latin letters) is refused, a
// label wholly in one script is a different domain and allowed. Names and
// address lines are NFC and trimmed. Control characters, format characters
// (zero-width spaces and joiners, bidi controls, soft hyphen, BOM), line
// and paragraph separators, private-use code points and other invisible
// ones (Hangul fillers, variation selectors, tags) are refused anywhere;
// the price is that a few names that need a zero-width joiner, and emoji
// with a variation selector, are refused too. Login applies the same
// rules: an address that cannot exist is 422, not 401.
//
// # Brute force
//
// See ThrottleConfig. Every password check (login, and the confirmations
// of /me/password, /me/erase, /me/mfa/enroll and /me/mfa/disable) is
// counted as a failure before its password is hashed, on the write path,
// so parallel attempts cannot outrun the count; a right password then
// cancels it. Counters and their thresholds:
//
//	per account and client address  10 failures in a row
//	per account, all addresses      100 failures in a row, except for an
//	                                address the account logged in from
//	                                within 30 days
//	per client address (in memory)  50 failures over all accounts; and at
//	                                most as many checks in flight as
//	                                failures remain before the threshold
//
// At a threshold the counter refuses every attempt with 429 rate_limited
// and Retry-After for 30 s, doubling per further failure up to 15 min; a
// counter forgets after an hour without failures. A wrong second factor
// counts, a missing one does not. So a stranger's failures lock only the
// stranger's address, and a distributed attack only addresses the owner
// has not used. A locked-out owner asks POST /api/v1/auth/unlock {email}
// (202 always; a mail goes out only when the account exists and a lock is
// in force, at most one a minute) and confirms the mailed token, single
// use, expiring after Config.ResetTokenTTL, stored hashed, with
// POST /api/v1/auth/unlock/confirm {token}: every lock of the account is
// cleared and the confirming address becomes known. A password reset
// clears the locks too. The client address is Config.ClientIP(r): the
// connection's peer unless the wiring reads a trusted proxy's header.
//
// # Housekeeping
//
// Service.Prune deletes expired and revoked tokens (a day after), used or
// expired reset tokens and idle throttle rows; the process runs it
// periodically. Reset and unlock e-mails go to the Mailer given to New;
// LogMailer, the mailer when none is configured, sends nothing and logs
// only that a mail of its kind was not sent (never the address or the
// link). A reset request with a malformed address is 422; any other is 202
// at once, whether or not the address has an account: the request is only
// queued (at most Config.MailQueue waiting, 429 beyond), and a worker
// writes the token and sends the mail after the answer, so both answers
// take the same work. At most one mail a minute goes to one account.
// Service.Close drains the queue: call it on shutdown before the write
// path closes.
//
// # Two-factor sign-in
//
// Any user may enrol TOTP (POST /me/mfa/enroll {password}, then
// /me/mfa/verify with a first code, which returns 10 single-use recovery
// codes once). With MFA active, login needs "otp": a TOTP code of a step
// later than the last one accepted, or an unused recovery code; without it
// the answer is 401 mfa_required, with a wrong one 401 unauthorized
// (counted as a failure). POST /me/mfa/disable {password, otp} turns it
// off (a wrong password or code is 422 on its field, counted).
//
// Recovery: an owner who lost the authenticator logs in with a recovery
// code, then disables MFA or enrols anew. An owner who lost both asks
// support: staff holding customers.mfa_reset (admin, customer_service)
// reset a customer's MFA, admins (staff.manage) a staff member's, and
// `mercato admin reset-mfa --email E` does it from the command line
// (audited as "system"); a reset turns MFA off and revokes every session,
// and is always audited. A password reset does not clear MFA: it proves
// the mailbox, not the second factor.
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
//	POST   /api/v1/auth/unlock                      {email} → 202 always
//	POST   /api/v1/auth/unlock/confirm              {token} → 204
//	GET    /api/v1/me/addresses, POST (201), PATCH/DELETE /api/v1/me/addresses/{id}
//	POST   /api/v1/me/mfa/enroll {password}, /api/v1/me/mfa/verify {code}
//	POST   /api/v1/me/mfa/disable {password, otp} → 204
//	GET    /api/v1/me/export;  POST /api/v1/me/erase {password} (customers)
//	GET    /api/v1/admin/staff, POST (201)                   staff.manage
//	POST   /api/v1/admin/staff/{id}/disable, …/enable         staff.manage
//	POST   /api/v1/admin/staff/{id}/mfa/reset → 204           staff.manage
//	PUT    /api/v1/admin/staff/{id}/roles {roles}             staff.manage
//	GET    /api/v1/admin/customers?q=&limit=&cursor=, …/{id}  customers.read
//	POST   /api/v1/admin/customers/{id}/erase                 customers.write
//	POST   /api/v1/admin/customers/{id}/mfa/reset → 204       customers.mfa_reset
package accounts

import (
	"embed"

	"mercato/internal/platform/migrate"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the accounts tables' migrations.
func Migrations() migrate.Source { return migrate.Embedded("accounts", migrations) }
