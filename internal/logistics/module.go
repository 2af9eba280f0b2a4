package logistics

import (
	"context"
	"embed"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/inventory"
	"mercato/internal/logistics/carrier"
	"mercato/internal/orders"
	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/jobs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	serversecret "mercato/internal/platform/secret"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

//go:embed migrations
var migrations embed.FS

// Migrations is the logistics module's schema.
func Migrations() migrate.Source { return migrate.Embedded("logistics", migrations) }

// The permissions the module defines.
const (
	PermShipmentsWrite = "shipments.write" // ship orders
	PermReturnsManage  = "returns.manage"  // approve, reject and receive returns
)

// Deps are the other modules' APIs logistics works with. The order's
// lifecycle is the orders module's: logistics moves it through the orders
// use cases (ShipTx, DeliverTx, …) inside its own units. Stock restocks
// returned lines and tells where a paid order's units were reserved.
type Deps struct {
	Orders   *orders.Service
	Stock    *inventory.Service
	Carriers []carrier.Carrier
}

// Config tunes the module. Zero values take the defaults.
type Config struct {
	// TrackEvery is the period of the logistics.track job that asks the
	// carriers for news of the shipments in transit (default 5 s: the
	// sandbox carrier's step).
	TrackEvery time.Duration
	// ReturnWindow is how long after delivery a customer may ask for a
	// return (default 14 days).
	ReturnWindow time.Duration
	// CompleteAfter is how long after delivery the logistics.complete job
	// completes an order (default: the return window); CompleteEvery its
	// period (default 1 hour).
	CompleteAfter, CompleteEvery time.Duration
	// TrackChunk is how many shipments one run of logistics.track reads at
	// a time (default 200).
	TrackChunk int
	// Secret is the server secret (package secret), under which warehouse
	// secrets are sealed at rest. Without it warehouses can be listed but
	// not registered, and their updates are refused (an Internal error).
	Secret []byte
	// RotationWindow is how long a warehouse's previous secret still
	// verifies after a rotation (default 24h).
	RotationWindow time.Duration
}

func (c Config) withDefaults() Config {
	if c.TrackEvery <= 0 {
		c.TrackEvery = 5 * time.Second
	}
	if c.ReturnWindow <= 0 {
		c.ReturnWindow = 14 * 24 * time.Hour
	}
	if c.CompleteAfter <= 0 {
		c.CompleteAfter = c.ReturnWindow
	}
	if c.CompleteEvery <= 0 {
		c.CompleteEvery = time.Hour
	}
	if c.TrackChunk <= 0 {
		c.TrackChunk = 200
	}
	if c.RotationWindow <= 0 {
		c.RotationWindow = 24 * time.Hour
	}
	return c
}

// Service is the logistics module: fulfilments, shipments, tracking and
// returns. Safe for concurrent use.
type Service struct {
	db       *sqldb.DB
	write    sqldb.Committer
	idem     *web.Idempotency
	orders   *orders.Service
	stock    *inventory.Service
	carriers map[string]carrier.Carrier
	seal     *serversecret.Sealer // nil without a server secret
	cfg      Config
}

// New returns the logistics module over p with deps and cfg. It starts
// nothing.
func New(p module.Platform, deps Deps, cfg Config) *Service {
	s := &Service{db: p.DB, write: p.Write, idem: p.Idem, orders: deps.Orders, stock: deps.Stock,
		carriers: map[string]carrier.Carrier{}, cfg: cfg.withDefaults()}
	for _, c := range deps.Carriers {
		s.carriers[c.Name()] = c
	}
	if len(cfg.Secret) > 0 {
		seal, err := serversecret.NewSealer(cfg.Secret, sealPurpose)
		if err != nil {
			panic(err) // a server secret too short: secret.Load returns none
		}
		s.seal = seal
	}
	s.cfg.Secret = nil // only the sealer keeps what it needs
	return s
}

// Module declares the logistics module.
func (s *Service) Module() module.Module {
	return module.Module{
		Name:       "logistics",
		Doc:        "fulfilments, shipments with carrier tracking, and returns",
		Migrations: []migrate.Source{Migrations()},
		Permissions: []module.Permission{
			{Name: PermShipmentsWrite, Doc: "ship paid orders", Roles: []string{accounts.RoleOperator}},
			{Name: PermReturnsManage, Doc: "approve, reject and receive returns",
				Roles: []string{accounts.RoleOperator, accounts.RoleCustomerService}},
			{Name: PermWarehousesManage, Doc: "register warehouses, rotate their secrets, read their updates",
				Roles: []string{accounts.RoleOperator}},
		},
		Routes:    s.routes(),
		Consumers: []inbox.Consumer{s.OrderConsumer()},
		Jobs: []jobs.Job{
			// A run may take longer than a step when many parcels are on
			// their way; the next one starts when it is done.
			{Name: "logistics.track", Every: s.cfg.TrackEvery, Timeout: max(s.cfg.TrackEvery, time.Minute), Run: s.Track},
			{Name: "logistics.complete", Every: s.cfg.CompleteEvery, Run: s.CompleteDue},
		},
		Events: []event.TypeInfo{ShipmentCreated.Info(), ShipmentUpdated.Info(), ReturnRequested.Info(),
			ReturnApproved.Info(), ReturnRejected.Info(), ReturnReceived.Info(), FulfilmentUpdated.Info()},
		Privacy: &module.Privacy{Section: "returns", Export: s.export, Erase: s.erase},
	}
}

// OrderConsumer opens a fulfilment when an order is paid (logistics_orders).
func (s *Service) OrderConsumer() inbox.Consumer {
	// Replayable: opening a fulfilment keeps what exists.
	return inbox.Consumer{Name: "logistics_orders", Events: []string{orders.OrderPaid.Type()}, Handle: s.HandleOrderEvent, Replayable: true}
}

// HandleOrderEvent is OrderConsumer's handler.
func (s *Service) HandleOrderEvent(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
	if !orders.OrderPaid.Is(e) {
		return nil
	}
	return s.OpenFulfilmentTx(ctx, tx, e.AggregateID)
}
