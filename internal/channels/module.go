package channels

import (
	"context"
	"embed"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/orders"
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

// Migrations is the channels module's schema.
func Migrations() migrate.Source { return migrate.Embedded("channels", migrations) }

// PermManage lets staff manage channels, their tokens and quotas.
const PermManage = "channels.manage"

// Orders is the orders module as channels import into it (*orders.Service).
type Orders interface {
	ImportTx(ctx context.Context, tx *sqldb.Tx, in orders.Import) (orders.Order, error)
	OrderTx(ctx context.Context, tx *sqldb.Tx, id string) (orders.Order, error)
}

// Tokens issues channel tokens (*accounts.Service): shown once, stored
// hashed, with the channel role bound to the code.
type Tokens interface {
	IssueChannelToken(ctx context.Context, tx *sqldb.Tx, channelCode string) (string, error)
}

// Connectors are the connectors a channel's order status syncs back
// through (*webhooks.Service): binding a channel restricts the connector
// to the events of that channel's orders.
type Connectors interface {
	BindChannelTx(ctx context.Context, tx *sqldb.Tx, actorID, connectorID, channel string) error
	UnbindChannelTx(ctx context.Context, tx *sqldb.Tx, actorID, connectorID, channel string) error
}

// Deps are the other modules' APIs the channels module uses.
type Deps struct {
	Orders     Orders
	Tokens     Tokens
	Connectors Connectors // nil: channels name no connector (503)
}

// Config tunes the module. Zero values take the defaults.
type Config struct {
	// RetainFor is how long an import keeps the buyer's e-mail address and
	// name (default DefaultRetainFor); the channels.retention job erases
	// them after that.
	RetainFor time.Duration
}

// Service is the channels module. Safe for concurrent use.
type Service struct {
	db     *sqldb.DB
	write  sqldb.Committer
	idem   *web.Idempotency
	orders Orders
	tokens Tokens
	conns  Connectors
	cfg    Config
}

// New returns the module over p.
func New(p module.Platform, d Deps, cfg Config) *Service {
	return &Service{db: p.DB, write: p.Write, idem: p.Idem, orders: d.Orders, tokens: d.Tokens, conns: d.Connectors, cfg: cfg}
}

// Module declares the module.
func (s *Service) Module() module.Module {
	return module.Module{
		Name:       "channels",
		Doc:        "sales channels, their tokens and quotas, and the import of their orders",
		Migrations: []migrate.Source{Migrations()},
		Permissions: []module.Permission{{Name: PermManage, Doc: "create channels, issue their tokens, set their stock quotas",
			Roles: []string{accounts.RoleOperator}}},
		Routes:    s.routes(),
		Consumers: []inbox.Consumer{s.QuotaConsumer()},
		Jobs:      []jobs.Job{s.retentionJob()},
		Events:    []event.TypeInfo{ChannelCreated.Info(), QuotaSet.Info()},
	}
}

// The channel events; the aggregate is the channel (its code).
var (
	ChannelCreated = event.Define[CreatedData]("channel.created", 1, "Staff registered a sales channel.")
	QuotaSet       = event.Define[QuotaSetData]("channel.quota_set", 1, "Staff set a channel's cap on the units of a SKU it may reserve.")
)

// CreatedData is channel.created's payload.
type CreatedData struct {
	Code string `json:"code"`
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// QuotaSetData is channel.quota_set's payload.
type QuotaSetData struct {
	Channel string `json:"channel"`
	SKU     string `json:"sku"`
	Units   int64  `json:"units"`
}
