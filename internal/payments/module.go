package payments

import (
	"context"
	"embed"
	"log/slog"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/orders"
	"mercato/internal/payments/provider"
	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/jobs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

//go:embed migrations
var migrations embed.FS

// Migrations is the payments module's schema.
func Migrations() migrate.Source { return migrate.Embedded("payments", migrations) }

// The permissions the module defines.
const (
	PermRead   = "payments.read"   // read any order's payment
	PermRefund = "payments.refund" // refund a captured payment
)

// Orders is what the payments module asks of the orders module
// (*orders.Service is one).
type Orders interface {
	Get(ctx context.Context, caller orders.Caller, id string, staff bool) (orders.Order, error)
	List(ctx context.Context, f orders.Filter, page web.PageRequest) (web.Page[orders.Order], error)
	MarkPaidTx(ctx context.Context, tx *sqldb.Tx, id, method string, with ...*event.Envelope) (orders.Order, error)
	RefundedTx(ctx context.Context, tx *sqldb.Tx, id string, refunded, captured int64) (orders.Order, error)
}

// Config tunes the module. Zero values take the defaults.
type Config struct {
	// ReconcileEvery is the period of the payments.reconcile job (default
	// 5 minutes); ReconcileAfter how old a pending attempt must be before
	// the job settles it (default 2 minutes: no pay request runs so long).
	ReconcileEvery time.Duration
	ReconcileAfter time.Duration
}

func (c Config) withDefaults() Config {
	if c.ReconcileEvery <= 0 {
		c.ReconcileEvery = 5 * time.Minute
	}
	if c.ReconcileAfter <= 0 {
		c.ReconcileAfter = 2 * time.Minute
	}
	return c
}

// Service is the payments module: payment intents, attempts, captures,
// refunds, webhooks and reconciliation over a set of Providers. It is the
// orders module's PaymentMethod (an orders.PaymentPreparer). Safe for
// concurrent use.
type Service struct {
	db        *sqldb.DB
	write     sqldb.Committer
	idem      *web.Idempotency
	logger    *slog.Logger
	providers map[string]provider.Provider
	orders    Orders
	cfg       Config

	// crash, when set (tests), runs at the named point of a use case; an
	// error it returns stops the use case there, as a crash would.
	crash func(point string) error
}

// New returns the payments module over p charging through providers (by
// Name). Call UseOrders before serving.
func New(p module.Platform, providers []provider.Provider, cfg Config) *Service {
	s := &Service{db: p.DB, write: p.Write, idem: p.Idem, logger: p.Logger, providers: map[string]provider.Provider{},
		cfg: cfg.withDefaults()}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	for _, pr := range providers {
		s.providers[pr.Name()] = pr
	}
	return s
}

// UseOrders gives the module the orders it pays (built after it: orders
// charges through the payments module).
func (s *Service) UseOrders(o Orders) { s.orders = o }

// Module declares the payments module.
func (s *Service) Module() module.Module {
	return module.Module{
		Name:       "payments",
		Doc:        "payment intents, captures, refunds, provider webhooks and reconciliation",
		Migrations: []migrate.Source{Migrations()},
		Permissions: []module.Permission{
			{Name: PermRead, Doc: "read any order's payment", Roles: []string{accounts.RoleOperator, accounts.RoleCustomerService}},
			{Name: PermRefund, Doc: "refund a captured payment", Roles: []string{accounts.RoleOperator, accounts.RoleCustomerService}},
		},
		Routes:    s.routes(),
		Consumers: []inbox.Consumer{s.CancelledConsumer()},
		Jobs: []jobs.Job{{Name: "payments.reconcile", Every: s.cfg.ReconcileEvery,
			Run: func(ctx context.Context) (int64, error) { r, err := s.Reconcile(ctx); return r.Fixed, err }}},
		Events:  []event.TypeInfo{PaymentCaptured.Info(), PaymentFailed.Info(), PaymentRefunded.Info()},
		Privacy: &module.Privacy{Section: "payments", Export: s.export, Erase: s.erase},
	}
}

// The payment events; the aggregate is the payment intent (its id).
var (
	PaymentCaptured = event.Define[CapturedData]("payment.captured", 1, "A provider captured an order's payment.")
	PaymentFailed   = event.Define[FailedData]("payment.failed", 1, "A payment attempt was declined or failed.")
	PaymentRefunded = event.Define[RefundedData]("payment.refunded", 1, "Part or all of a captured payment was refunded.")
)

// CapturedData is payment.captured's payload.
type CapturedData struct {
	PaymentID   string `json:"payment_id"`
	OrderID     string `json:"order_id"`
	Provider    string `json:"provider"`
	ProviderRef string `json:"provider_ref"`
	Amount      int64  `json:"amount" doc:"Minor units."`
	Currency    string `json:"currency"`
}

// FailedData is payment.failed's payload.
type FailedData struct {
	PaymentID string `json:"payment_id"`
	OrderID   string `json:"order_id"`
	Provider  string `json:"provider"`
	Reason    string `json:"reason" doc:"The provider's decline reason."`
}

// RefundedData is payment.refunded's payload.
type RefundedData struct {
	PaymentID     string `json:"payment_id"`
	OrderID       string `json:"order_id"`
	RefundID      string `json:"refund_id"`
	Amount        int64  `json:"amount" doc:"Minor units refunded now."`
	TotalRefunded int64  `json:"total_refunded" doc:"Minor units refunded so far."`
	Currency      string `json:"currency"`
	Reason        string `json:"reason"`
}
