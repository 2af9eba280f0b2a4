package rates

import (
	"embed"
	"net"
	"net/http"

	"mercato/internal/accounts"
	"mercato/internal/platform/event"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/notify"
	"mercato/internal/platform/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the rates module's schema (one text for both engines).
func Migrations() migrate.Source { return migrate.Embedded("rates", migrations) }

// The permissions rates defines.
const (
	// PermRead lets staff read the shipping and tax tables.
	PermRead = "rates.read"
	// PermWrite lets staff save new versions of them.
	PermWrite = "rates.write"
)

// Permissions are the module's permissions and the staff roles that hold
// them besides admin.
var Permissions = []module.Permission{
	{Name: PermRead, Doc: "read the shipping and tax tables", Roles: []string{accounts.RoleOperator}},
	{Name: PermWrite, Doc: "save new versions of the shipping and tax tables", Roles: []string{accounts.RoleOperator}},
}

// Updated is emitted in the unit that saves a new version of a table; the
// aggregate is the table ("shipping" or "tax").
var Updated = event.Define[UpdatedData]("rates.updated", 1,
	"Staff saved a new version of the shipping table or of the tax table (aggregate id: shipping or tax).")

// UpdatedData is the payload of rates.updated.
type UpdatedData struct {
	Table   string `json:"table" doc:"shipping or tax (also the aggregate id)."`
	Version int64  `json:"version" doc:"The new current version."`
}

// Events describes the event types rates emits.
func Events() []event.TypeInfo { return []event.TypeInfo{Updated.Info()} }

// Service is the rates module. Safe for concurrent use.
type Service struct {
	db       *sqldb.DB
	write    sqldb.Committer
	clientIP func(r *http.Request) string
	cache    cache
	vcache   *notify.Cache[[2]int64] // the current versions (shipping, tax)
}

// Config tunes the module.
type Config struct {
	// ClientIP gives the client address the audit log records (nil: the
	// connection's peer).
	ClientIP func(r *http.Request) string
}

// New returns the rates module on p (its database migrated with
// Migrations, audit's and outbox's).
func New(p module.Platform, cfg Config) *Service {
	s := &Service{db: p.DB, write: p.Write, clientIP: cfg.ClientIP}
	// The process's hub keeps the cache of the current versions right
	// across processes (without one, a hub of its own that never listens:
	// on PostgreSQL every quote then reads the versions).
	if hub, _ := p.Hub(); hub != nil {
		s.vcache = notify.NewCache[[2]int64](hub, "rates")
	}
	if s.write == nil && p.DB != nil {
		s.write = p.DB
	}
	if s.clientIP == nil {
		s.clientIP = peerIP
	}
	return s
}

// Module is the rates module's declaration for the process.
func (s *Service) Module() module.Module {
	return module.Module{
		Name:        "rates",
		Doc:         "the shipping table (zones, methods, rates) and the tax table, as versioned documents",
		Migrations:  []migrate.Source{Migrations()},
		Permissions: Permissions,
		Routes:      s.Routes(),
		Events:      Events(),
	}
}

// peerIP is the address of the connection's peer.
func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
