package notifications

import (
	"context"
	"log/slog"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/orders"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/jobs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/notify"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// PermRead is the permission to read the notification log.
const PermRead = "notifications.read"

// ConsumerName is the durable name of the module's consumer.
const ConsumerName = "notifications_orders"

// Customers finds a customer's contact details (accounts.Service does).
type Customers interface {
	User(ctx context.Context, id string) (accounts.User, error)
}

// Orders reads an order in the consumer's unit (orders.Service does).
type Orders interface {
	OrderTx(ctx context.Context, tx *sqldb.Tx, id string) (orders.Order, error)
}

// Tracking returns the customer-facing tracking link of an order's shipment
// ("" when there is none).
type Tracking interface {
	TrackingLink(ctx context.Context, orderID, shipmentID string) (string, error)
}

// DeadLetters counts the events parked in the inbox (inbox.Monitor's
// status has the figure).
type DeadLetters interface {
	DeadLetters(ctx context.Context) (int64, error)
}

// Deps are the other modules' APIs the notifications module reads.
type Deps struct {
	Customers Customers
	Orders    Orders
	Tracking  Tracking // nil: shipped mail carries no link
	// DeadLetters, with Config.StaffEmail, alerts the staff of parked
	// events; nil: no such alert.
	DeadLetters DeadLetters
}

// Config tunes the module. The zero value records every message as skipped.
type Config struct {
	// SMTP is the relay; nil when none is configured (messages are skipped).
	SMTP *SMTP
	// StaffEmail receives the staff alerts; "" sends none.
	StaffEmail string
	// MaxAttempts is how many sends fail a message for good (default 6).
	MaxAttempts int
	// RetryBase and RetryCap shape the backoff: RetryBase·2^(attempts-1), at
	// most RetryCap (defaults 1 min and 1 h).
	RetryBase, RetryCap time.Duration
	// SendEvery is the sender job's period (default 5 s); BatchSize caps
	// the messages one run sends (default 100).
	SendEvery time.Duration
	BatchSize int
	// AlertEvery is the staff alert's rate limit per SKU (default 1 h).
	AlertEvery time.Duration
}

// Service is the notifications module. Safe for concurrent use.
type Service struct {
	db     *sqldb.DB
	write  sqldb.Committer
	log    *slog.Logger
	deps   Deps
	cfg    Config
	render *renderer
	prefs  *prefsCache
	hub    *notify.Hub // the preferences' invalidations across processes (nil without a database)
}

// New returns the module over p.
func New(p module.Platform, deps Deps, cfg Config) *Service {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Minute
	}
	if cfg.RetryCap <= 0 {
		cfg.RetryCap = time.Hour
	}
	if cfg.SendEvery <= 0 {
		cfg.SendEvery = 5 * time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.AlertEvery <= 0 {
		cfg.AlertEvery = time.Hour
	}
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Service{db: p.DB, write: p.Write, log: log, deps: deps, cfg: cfg, render: newRenderer(),
		prefs: newPrefsCache(func() bool { return true })}
	// The process's hub (serve runs it); tools and tests without one get a
	// hub of their own that nothing runs: on PostgreSQL its cache is then
	// never trusted, and every mail reads the preferences.
	if hub, _ := p.Hub(); hub != nil {
		s.hub = hub
		s.prefs = newPrefsCache(hub.Trusted)
		s.prefs.listen(hub)
	}
	return s
}

// consumed are the event types the consumer handles.
var consumed = []string{"order.placed", "order.paid", "order.shipped", "order.delivered", "order.cancelled",
	"payment.refunded", "inventory.low_stock"}

// Module is the notifications module's declaration.
func (s *Service) Module() module.Module {
	return module.Module{
		Name:       "notifications",
		Doc:        "customer e-mail on order events, staff alerts, notification preferences",
		Migrations: []migrate.Source{Migrations()},
		Permissions: []module.Permission{{Name: PermRead, Doc: "read the notification log",
			Roles: []string{accounts.RoleCustomerService, accounts.RoleOperator}}},
		Routes:    s.routes(),
		Consumers: []inbox.Consumer{{Name: ConsumerName, Events: consumed, Handle: s.HandleEvent}},
		Jobs: []jobs.Job{{Name: "notifications.send", Every: s.cfg.SendEvery, Timeout: 5 * time.Minute,
			Run: s.SendDue},
			{Name: "notifications.dead_letters", Every: 5 * time.Minute, Run: s.AlertDeadLetters}},
		Privacy: &module.Privacy{Section: "notifications", Export: s.export, Erase: s.erase},
	}
}

// routes are the module's HTTP endpoints.
func (s *Service) routes() []web.Route {
	return []web.Route{
		{Method: "GET", Path: "/api/v1/me/notification-preferences", Summary: "My notification preferences", Tag: "notifications",
			Access: web.Authenticated, Response: Preferences{}, Handler: s.handleGetPrefs},
		{Method: "PUT", Path: "/api/v1/me/notification-preferences", Summary: "Set my notification preferences", Tag: "notifications",
			Access: web.Authenticated, Request: PreferencesRequest{}, Response: Preferences{}, Handler: s.handlePutPrefs},
		{Method: "GET", Path: "/api/v1/admin/notifications", Summary: "The notification log", Tag: "notifications",
			Access: web.Permission(PermRead), Response: web.Page[Message]{}, Query: []string{"customer_id", "status", "limit", "cursor"},
			Handler: s.handleList},
	}
}
