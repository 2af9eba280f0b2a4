package compliance

import (
	"context"
	"embed"
	"log/slog"
	"net"
	"net/http"

	"mercato/internal/accounts"
	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/notify"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

//go:embed migrations
var migrations embed.FS

// Migrations is the compliance module's schema.
func Migrations() migrate.Source { return migrate.Embedded("compliance", migrations) }

// The permissions the module defines.
const (
	PermRead  = "compliance.read"
	PermWrite = "compliance.write"
)

// Permissions are the module's permissions and the staff roles holding
// them besides admin.
var Permissions = []module.Permission{
	{Name: PermRead, Doc: "read the region rules", Roles: []string{accounts.RoleOperator}},
	{Name: PermWrite, Doc: "save new versions of the region rules", Roles: []string{accounts.RoleOperator}},
}

// Products says whether a product exists, read in tx (the catalog through
// an adapter). An unknown id is (false, nil).
type Products interface {
	ProductExistsTx(ctx context.Context, tx *sqldb.Tx, productID string) (bool, error)
}

// Updated is emitted in the unit that saves a new version of the rules.
var Updated = event.Define[UpdatedData]("compliance.updated", 1,
	"Staff saved a new version of the region rules (aggregate id: rules).")

// UpdatedData is compliance.updated's payload.
type UpdatedData struct {
	Version int64 `json:"version" doc:"The rules' new version."`
}

// Service is the compliance module. Safe for concurrent use.
type Service struct {
	db       *sqldb.DB
	write    sqldb.Committer
	products Products
	log      *slog.Logger
	cache    *notify.Cache[Document] // the current rules
}

// New returns the compliance module over p; nil products accepts any
// product id. The process's notify hub (p.Notify) keeps the cache of the
// current rules right across processes (without one, a hub of its own that
// never listens: on PostgreSQL every check then reads the rules).
func New(p module.Platform, products Products) *Service {
	s := &Service{db: p.DB, write: p.Write, products: products, log: p.Logger}
	if hub, _ := p.Hub(); hub != nil {
		s.cache = notify.NewCache[Document](hub, "compliance")
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// Module declares the compliance module.
func (s *Service) Module() module.Module {
	return module.Module{
		Name:        "compliance",
		Doc:         "region rules: restricted products, per-order and per-year limits, required identity",
		Migrations:  []migrate.Source{Migrations()},
		Permissions: Permissions,
		Routes:      s.Routes(),
		Consumers:   []inbox.Consumer{s.OrderConsumer()},
		Events:      []event.TypeInfo{Updated.Info()},
	}
}

// The order events the module consumes (it reads only the aggregate id).
const (
	EventOrderCancelled = "order.cancelled"
	EventOrderExpired   = "order.expired"
)

// OrderConsumer gives an order's share of the yearly counter back when it
// is cancelled or expires (ReleaseTx); a second release is a no-op.
func (s *Service) OrderConsumer() inbox.Consumer {
	return inbox.Consumer{Name: "compliance_orders", Events: []string{EventOrderCancelled, EventOrderExpired},
		Handle: func(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
			if e.Type != EventOrderCancelled && e.Type != EventOrderExpired {
				return nil
			}
			return s.ReleaseTx(ctx, tx, e.AggregateID)
		}}
}

// Routes are the staff routes.
func (s *Service) Routes() []web.Route {
	const tag = "compliance"
	return []web.Route{
		{Method: "PUT", Path: "/api/v1/admin/compliance/rules", Summary: "Save the region rules (a new version)", Tag: tag,
			Access: web.Permission(PermWrite), Request: Rules{}, Response: Document{}, Handler: s.handlePut,
			Description: "The whole rule set. Unknown products, bad countries or limits are 422 naming the field."},
		{Method: "GET", Path: "/api/v1/admin/compliance/rules", Summary: "The current region rules", Tag: tag,
			Access: web.Permission(PermRead), Response: Document{}, Handler: s.handleGet},
	}
}

func (s *Service) handlePut(w http.ResponseWriter, r *http.Request) {
	var in Rules
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	p, _ := web.PrincipalFrom(r.Context())
	d, err := s.Put(r.Context(), Actor{ID: p.UserID, IP: peerIP(r)}, in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, d)
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	d, err := s.Current(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, d)
}

func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
