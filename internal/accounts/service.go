package accounts

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/module"
	"mercato/internal/platform/notify"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// Config tunes the accounts module; zero fields take the defaults noted.
type Config struct {
	CustomerTokenTTL time.Duration // customer sessions; default 30 days
	StaffTokenTTL    time.Duration // staff sessions; default 12 hours
	MFASetupTokenTTL time.Duration // MFA-enrolment-only sessions; default 15 minutes
	ResetTokenTTL    time.Duration // password reset tokens; default 1 hour

	// StaffMFARequired (MERCATO_STAFF_MFA=required): a staff member without
	// active MFA gets, on login, a token that can only enrol MFA (see doc.go).
	StaffMFARequired bool
	// Issuer names the service in authenticator apps; default "mercato".
	Issuer string
	// ClientIP returns a request's client address for the per-address
	// throttle and the audit log. Nil: the connection's peer address. Behind
	// a reverse proxy, set it to read the proxy's header, or every client
	// shares the proxy's address (and its throttle).
	ClientIP func(r *http.Request) string
	// ResetURL, when set, is the link in reset e-mails; the token is
	// appended (e.g. "https://shop.example/reset?token=").
	ResetURL string

	// Hash sets argon2id's cost (default DefaultHashParams); tests that are
	// not about hashing pass cheaper ones. HashSlots caps concurrent hashes
	// (default GOMAXPROCS); HashQueue caps the callers waiting for a slot
	// (default 64): beyond it a password check is refused at once with 429.
	Hash      HashParams
	HashSlots int
	HashQueue int
	// MailQueue caps the reset and unlock requests waiting to be written
	// and mailed after their 202 (default 256); beyond it they get 429.
	MailQueue int

	Throttle ThrottleConfig

	// derive replaces argon2.IDKey when set: tests count or hold hashes.
	derive func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.CustomerTokenTTL, 30*24*time.Hour)
	def(&c.StaffTokenTTL, 12*time.Hour)
	def(&c.MFASetupTokenTTL, 15*time.Minute)
	def(&c.ResetTokenTTL, time.Hour)
	if c.ClientIP == nil {
		c.ClientIP = peerIP
	}
	if c.Issuer == "" {
		c.Issuer = "mercato"
	}
	c.Throttle = c.Throttle.withDefaults()
	return c
}

// Service is the accounts module: its use cases (Go API and HTTP routes)
// and the web.Authenticator. Safe for concurrent use.
type Service struct {
	db     *sqldb.DB
	write  sqldb.Committer
	idem   *web.Idempotency
	cfg    Config
	hash   *hasher
	mailer Mailer
	log    *slog.Logger
	ips    *ipThrottle
	cache  *authCache
	hub    *notify.Hub // the invalidations of other replicas (nil without a database)
	ownHub bool        // the hub is the module's own: RunInvalidations runs it
	jobs   *jobQueue

	mu      sync.Mutex
	roles   roleTable        // from every module's permissions; guarded by mu
	privacy []module.Privacy // the other modules' parts; guarded by mu
}

// New returns the accounts service on p (its database migrated with
// Migrations, audit's, outbox's and web's). A nil mailer logs that a mail
// was not sent. It starts the worker that writes and mails reset and
// unlock requests after they are answered: Close stops it.
func New(p module.Platform, mailer Mailer, cfg Config) *Service {
	logger := p.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if mailer == nil {
		mailer = LogMailer{Logger: logger}
	}
	write := p.Write
	if write == nil {
		write = p.DB
	}
	cfg = cfg.withDefaults()
	now, trusted := time.Now, func() bool { return true }
	hub, ownHub := p.Hub()
	if p.DB != nil {
		// On PostgreSQL the cache is trusted only while it hears the other
		// replicas' invalidations (the hub listens).
		now, trusted = p.DB.Now, hub.Trusted
	}
	h := newHasher(cfg.Hash, cfg.HashSlots, cfg.HashQueue)
	if cfg.derive != nil {
		h.derive = cfg.derive
	}
	svc := &Service{db: p.DB, write: write, idem: p.Idem, cfg: cfg, roles: newRoleTable(Permissions),
		hash: h, mailer: mailer, log: logger, ips: newIPThrottle(cfg.Throttle),
		cache: newAuthCache(now, trusted), hub: hub, ownHub: ownHub, jobs: newJobQueue(cfg.MailQueue, logger)}
	if hub != nil {
		hub.Listen(authChannel, notify.Listener{On: svc.cache.forget, Reset: svc.cache.clear})
	}
	return svc
}

// Close stops taking reset and unlock requests and waits until those
// already answered are written and mailed. Call it on shutdown before the
// write path closes; afterwards such requests get 503.
func (s *Service) Close() { s.jobs.close() }

// RunInvalidations keeps the token cache in step with the changes other
// replicas commit, until ctx ends, when the module made its own notify hub
// (no module.Platform.Notify: tools and tests). With the process's hub it
// returns nil at once: the process runs the hub, for every module's caches.
// On SQLite it returns nil at once. Until the hub listens, tokens are read
// from the database each time.
func (s *Service) RunInvalidations(ctx context.Context) error {
	if !s.ownHub || s.hub == nil {
		return nil
	}
	return s.hub.Run(ctx)
}

// UseModules hands the accounts module what it needs of every module of
// the process (itself included): the permissions they define, from which
// the role table is built, and their privacy parts, which export and
// erasure run besides its own. Call it once at wiring time, before serving.
func (s *Service) UseModules(mods []module.Module) {
	perms := module.Permissions(mods)
	if !slices.ContainsFunc(perms, func(p module.Permission) bool { return p.Name == PermStaffManage }) {
		perms = append(perms, Permissions...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles = newRoleTable(perms)
	s.privacy = module.Privacies(mods)
}

func (s *Service) privacyParts() []module.Privacy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.privacy
}

func (s *Service) roleTable() roleTable {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roles
}

// Actor is who performs a state change, for the audit log and ownership:
// a user id ("system" for the command line and start-up) and the client
// address.
type Actor struct {
	ID string
	IP string
}

var systemActor = Actor{ID: "system"}

// audit records a staff action in tx (the same transaction as the change).
func (s *Service) audit(ctx context.Context, tx *sqldb.Tx, by Actor, action, targetType, targetID string, before, after any) error {
	err := audit.Record(ctx, tx, audit.Entry{ActorID: by.ID, Action: action, TargetType: targetType,
		TargetID: targetID, IP: by.IP, Before: before, After: after})
	if err != nil {
		return errs.E("accounts.audit", err)
	}
	return nil
}

// User returns the user with id (erased users included, anonymised);
// NotFound when there is none. Other modules use it for contact details,
// which events deliberately do not carry (erasure, see doc.go).
func (s *Service) User(ctx context.Context, id string) (User, error) {
	a, err := userByID(ctx, s.db.Reader(), id)
	return a.User, err
}

// CreateUser creates a user with roles (the customer role alone, or staff
// roles) for `mercato admin create-user`. The password must pass the
// policy; the e-mail must be free (email_taken). Audited as by "system".
func (s *Service) CreateUser(ctx context.Context, email, password, name string, roles []string) (User, error) {
	n, err := s.prepareUser(ctx, newUserInput{Email: email, Password: password, Name: name, Roles: roles}, false)
	if err != nil {
		return User{}, err
	}
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.commitUser(ctx, tx, n, systemActor) })
	return n.User, err
}

// BootstrapAdmin creates an admin with email and password when no user
// holds the admin role yet, and reports whether it did. It is safe to call
// at every start-up, also from replicas starting together (the e-mail's
// uniqueness lets one win).
func (s *Service) BootstrapAdmin(ctx context.Context, email, password string) (bool, error) {
	has, err := s.adminExists(ctx, s.db.Reader())
	if err != nil || has {
		return false, err
	}
	n, err := s.prepareUser(ctx, newUserInput{Email: email, Password: password, Name: "Administrator", Roles: []string{RoleAdmin}}, false)
	if err != nil {
		return false, err
	}
	created := false
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error {
		if has, err := s.adminExists(ctx, tx); err != nil || has {
			return err
		}
		if err := s.commitUser(ctx, tx, n, systemActor); err != nil {
			return err
		}
		created = true
		return nil
	})
	if errs.CodeOf(err) == errs.CodeEmailTaken {
		// A racing replica created it — or the address belongs to a user who
		// is no admin, which must not pass silently.
		if has, herr := s.adminExists(ctx, s.db.Reader()); herr != nil || has {
			return false, herr
		}
	}
	return created, err
}

func (s *Service) adminExists(ctx context.Context, q querier) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM accounts_users
		WHERE (' ' || roles || ' ') LIKE '% admin %'`).Scan(&n)
	if err != nil {
		return false, errs.E("accounts.adminExists", errs.Internal, err)
	}
	return n > 0, nil
}

// newUserInput is a user to create (registration, staff creation, CLI).
type newUserInput struct {
	Email    string
	Password string
	Name     string
	Roles    []string
}

// preparedUser is a validated new user with its password hashed.
type preparedUser struct {
	account
}

// prepareUser validates in and hashes its password (outside any
// transaction: hashing is the slow part). A customer's name may be empty
// only when nameOptional.
func (s *Service) prepareUser(ctx context.Context, in newUserInput, nameOptional bool) (preparedUser, error) {
	const op = "accounts.prepareUser"
	var v errs.Validation
	email := emailField(&v, "email", in.Email)
	name := nameField(&v, "name", in.Name, !nameOptional)
	checkPassword(&v, "password", in.Password)
	roles, ok := normalizeRoles(in.Roles)
	v.Check(ok, "roles", "must be [\"customer\"] or staff roles (admin, operator, customer_service)")
	if err := v.Err(op); err != nil {
		return preparedUser{}, err
	}
	h, err := s.hash.Hash(ctx, in.Password)
	if err != nil {
		return preparedUser{}, err
	}
	return preparedUser{account{User: User{ID: newID(), Email: email, Name: name, Roles: roles}, PasswordHash: h}}, nil
}

// commitUser stores n in tx: a customer emits customer.registered, staff
// creation is audited.
func (s *Service) commitUser(ctx context.Context, tx *sqldb.Tx, n preparedUser, by Actor) error {
	if err := insertUser(ctx, tx, n.account); err != nil {
		return err
	}
	if !n.staff() {
		// Only the id: contact data stays in this module, so erasure can
		// remove it (consumers ask Service.User).
		ev, err := CustomerRegistered.New(n.ID, tx.Now, CustomerRef{CustomerID: n.ID})
		if err != nil {
			return errs.E("accounts.register", errs.Internal, err)
		}
		if err := outbox.Append(ctx, tx, &ev); err != nil {
			return errs.E("accounts.register", err)
		}
		return nil
	}
	return s.audit(ctx, tx, by, "staff.created", "user", n.ID, nil,
		map[string]any{"email": n.Email, "name": n.Name, "roles": n.Roles})
}

// tokenTTL is the session lifetime for a user with roles.
func (s *Service) tokenTTL(roles []string) time.Duration {
	if isStaff(roles) {
		return s.cfg.StaffTokenTTL
	}
	return s.cfg.CustomerTokenTTL
}

// Prune deletes what no longer matters: tokens that expired or were revoked
// more than a day ago, used or expired reset and unlock tokens, and
// login-throttle rows idle for longer than Throttle.Forget, unlocked and
// no longer known. Run it periodically (hourly is
// plenty); it reports how many rows it deleted.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	var total int64
	err := s.write.Do(ctx, func(tx *sqldb.Tx) error {
		now := sqldb.Micros(tx.Now)
		dayAgo := sqldb.Micros(tx.Now.Add(-24 * time.Hour))
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`DELETE FROM accounts_tokens WHERE (expires_at <> 0 AND expires_at < $1) OR (revoked_at <> 0 AND revoked_at < $1)`, []any{dayAgo}},
			{`DELETE FROM accounts_password_resets WHERE used_at <> 0 OR expires_at < $1`, []any{now}},
			{`DELETE FROM accounts_login_throttle WHERE last_failure_at < $1 AND locked_until < $2 AND known_until < $2`,
				[]any{sqldb.Micros(tx.Now.Add(-s.cfg.Throttle.Forget)), now}},
		} {
			n, err := exec(ctx, tx, "accounts.Prune", q.sql, q.args...)
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	return total, err
}
