package promotions

import (
	"context"
	"embed"
	"log/slog"
	"net"
	"net/http"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/notify"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
	"mercato/internal/pricing"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the promotions module's schema (one text for both
// engines).
func Migrations() migrate.Source { return migrate.Embedded("promotions", migrations) }

// The permissions promotions defines.
const (
	// PermRead lets staff list and read promotions.
	PermRead = "promotions.read"
	// PermWrite lets staff create, change and deactivate promotions.
	PermWrite = "promotions.write"
)

// Permissions are the module's permissions and the staff roles that hold
// them besides admin.
var Permissions = []module.Permission{
	{Name: PermRead, Doc: "list and read promotions and their usage", Roles: []string{accounts.RoleOperator}},
	{Name: PermWrite, Doc: "create, change and deactivate promotions", Roles: []string{accounts.RoleOperator}},
}

// Service is the promotions module. Safe for concurrent use.
type Service struct {
	db       *sqldb.DB
	write    sqldb.Committer
	idem     *web.Idempotency
	log      *slog.Logger
	clientIP func(r *http.Request) string
	onFlush  func(id string, uses, spent int64) // tests: each counter UPDATE
	cache    *notify.Cache[*activeSet]          // the active promotions
	redeemed redeemedSet                        // live redemptions a flush met (redemptions.go)
}

// Config tunes the module.
type Config struct {
	// ClientIP gives the client address the audit log records (nil: the
	// connection's peer).
	ClientIP func(r *http.Request) string
}

// New returns the promotions module on p (its database migrated with
// Migrations, audit's, outbox's and idempotency's).
func New(p module.Platform, cfg Config) *Service {
	s := &Service{db: p.DB, write: p.Write, idem: p.Idem, log: p.Logger, clientIP: cfg.ClientIP}
	// The process's hub keeps the cache of the active promotions right
	// across processes (without one, a hub of its own that never listens:
	// on PostgreSQL every quote then reads the promotions).
	if hub, _ := p.Hub(); hub != nil {
		s.cache = notify.NewCache[*activeSet](hub, "promotions")
	}
	if s.write == nil && p.DB != nil {
		s.write = p.DB
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.clientIP == nil {
		s.clientIP = peerIP
	}
	return s
}

// Module is the promotions module's declaration for the process.
func (s *Service) Module() module.Module {
	return module.Module{
		Name:        "promotions",
		Doc:         "promotions and coupon codes, their versions, limits and redemptions",
		Migrations:  []migrate.Source{Migrations()},
		Permissions: Permissions,
		Routes:      s.Routes(),
		Consumers:   []inbox.Consumer{s.OrderConsumer()},
		Events:      Events(),
		Privacy:     &module.Privacy{Section: "promotions", Export: s.Export, Erase: s.EraseTx},
	}
}

// The events promotions emits; the aggregate is the promotion. No payload
// names a customer.
var (
	// Created is emitted in the unit that creates a promotion.
	Created = event.Define[PromotionEvent]("promotion.created", 1,
		"Staff created a promotion (version 1, active).")
	// Updated is emitted in the unit that changes or deactivates one.
	Updated = event.Define[PromotionEvent]("promotion.updated", 1,
		"Staff changed a promotion or deactivated it: a new version.")
)

// PromotionEvent is the payload of the promotion events.
type PromotionEvent struct {
	ID        string       `json:"id" doc:"The promotion (also the aggregate id)."`
	Version   int64        `json:"version" doc:"Its version after the change."`
	Status    string       `json:"status" doc:"active or inactive."`
	Kind      pricing.Kind `json:"kind" doc:"percentage, fixed, free_shipping or bxgy."`
	Codes     []string     `json:"codes" doc:"Its coupon codes (upper case); empty for an automatic promotion."`
	StartsAt  *time.Time   `json:"starts_at" doc:"Start of its validity, null: none."`
	EndsAt    *time.Time   `json:"ends_at" doc:"End of its validity (exclusive), null: none."`
	Exclusive bool         `json:"exclusive" doc:"Whether it applies alone."`
	Priority  int          `json:"priority" doc:"Its priority."`
}

func eventOf(p Promotion) PromotionEvent {
	e := PromotionEvent{ID: p.ID, Version: p.Version, Status: p.Status, Kind: p.Kind, Codes: p.Codes,
		Exclusive: p.Exclusive, Priority: p.Priority}
	if e.Codes == nil {
		e.Codes = []string{}
	}
	if t := p.Window.StartsAt; !t.IsZero() {
		e.StartsAt = &t
	}
	if t := p.Window.EndsAt; !t.IsZero() {
		e.EndsAt = &t
	}
	return e
}

// Events describes the event types promotions emits.
func Events() []event.TypeInfo { return []event.TypeInfo{Created.Info(), Updated.Info()} }

// The order events promotions consumes. The orders module defines them;
// promotions reads only the aggregate id (the order id, which is the
// orderRef of RedeemTx) and so does not import it.
const (
	EventOrderCancelled = "order.cancelled"
	EventOrderExpired   = "order.expired"
)

// OrderConsumer gives back an unpaid order's redemptions when it is
// cancelled or expires (ReleaseTx). Exactly-once through the inbox, and a
// second release is a no-op anyway.
func (s *Service) OrderConsumer() inbox.Consumer {
	return inbox.Consumer{
		Name:   "promotions_orders",
		Events: []string{EventOrderCancelled, EventOrderExpired},
		Handle: s.HandleOrderEvent,
	}
}

// HandleOrderEvent is OrderConsumer's handler.
func (s *Service) HandleOrderEvent(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
	switch e.Type {
	case EventOrderCancelled, EventOrderExpired:
	default:
		return nil
	}
	err := s.ReleaseTx(ctx, tx, e.AggregateID)
	if errs.KindOf(err) == errs.Invalid {
		// An aggregate id that can be no order reference has no redemption.
		s.log.WarnContext(ctx, "promotions: order event without effect", "type", e.Type, "order", e.AggregateID, "err", err)
		return nil
	}
	return err
}

// peerIP is the address of the connection's peer.
func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
