package orders

import (
	"context"
	"embed"
	"log/slog"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/jobs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

//go:embed migrations
var migrations embed.FS

// Migrations is the orders module's schema.
func Migrations() migrate.Source { return migrate.Embedded("orders", migrations) }

// The permissions the module defines.
const (
	PermRead  = "orders.read"  // read any customer's orders
	PermWrite = "orders.write" // change any customer's orders (cancel by staff)
)

// Catalog prices lines; it is read inside the caller's tx. A SKU missing
// from the answer is unknown.
type Catalog interface {
	VariantsTx(ctx context.Context, tx *sqldb.Tx, skus []string) (map[string]Variant, error)
}

// Variant is what the catalog says of one SKU.
type Variant struct {
	SKU, ProductID, Title string
	Price                 money.Money
	WeightGrams           int64
	TaxClass              string
	Sellable              bool
	CategoryIDs           []string // the product's categories (promotions' and region rules' targets)
}

// Stock reserves every line for ref (the order id), all or nothing, inside
// tx; a shortage is an *errs.Error of kind Conflict with code out_of_stock
// naming the short SKUs, which checkout passes through to the client. The
// reservation is committed on order.paid and released on order.cancelled and
// order.expired by the inventory module's own consumers (keyed by the
// event's aggregate id): orders never calls them.
type Stock interface {
	ReserveTx(ctx context.Context, tx *sqldb.Tx, ref, customerID string, lines []StockLine, ttl time.Duration) error
}

// StockLine is one SKU and quantity to reserve.
type StockLine struct {
	SKU      string
	Quantity int
}

// Permissions decides whether a principal's roles grant a permission (the
// accounts service is one). It lets staff read orders through the
// customer's own routes.
type Permissions interface {
	Allowed(p web.Principal, perm string) bool
}

// Deps are the other modules' APIs the orders module consumes. A nil
// Catalog or Stock answers 503 unavailable where it is needed (a process
// wired without them still serves reads); nil Perms lets staff in only
// through the /api/v1/admin routes; nil Payment is the Sandbox.
type Deps struct {
	Catalog Catalog
	Stock   Stock
	Perms   Permissions
	Payment PaymentMethod
	// Promotions, Rates and Compliance price and check the quote (issue
	// #16); nil: no promotions, the flat shipping and no tax, no region
	// rules.
	Promotions Promotions
	Rates      Rates
	Compliance Compliance
}

// Config tunes the module. Zero values take the defaults.
type Config struct {
	// Currency is a new cart's currency until its first line (default USD).
	Currency string
	// ReservationTTL is how long an unpaid order holds its stock before it
	// expires (default 30 minutes).
	ReservationTTL time.Duration
	// ShippingFlat is the standard method's price in minor units (default
	// 500); ShippingFreeOver the subtotal, in minor units, from which it is
	// free (default 5000; negative: never free).
	ShippingFlat     int64
	ShippingFreeOver int64
	// ExpireEvery is the period of the orders.expire job (default 1 minute)
	// and ExpireChunk how many orders one read of it takes (default 100).
	ExpireEvery time.Duration
	ExpireChunk int
	// IdentityKey keys the hash of an identity number (from the server
	// secret); RetainFor is how long a closed order keeps its personal data
	// before the orders.retention job anonymises it (default 2 years),
	// RetentionEvery that job's period (default 1 hour).
	IdentityKey    []byte
	RetainFor      time.Duration
	RetentionEvery time.Duration
}

func (c Config) withDefaults() Config {
	if c.Currency == "" {
		c.Currency = "USD"
	}
	if c.ReservationTTL <= 0 {
		c.ReservationTTL = 30 * time.Minute
	}
	if c.ShippingFlat == 0 {
		c.ShippingFlat = 500
	}
	if c.ShippingFreeOver == 0 {
		c.ShippingFreeOver = 5000
	}
	if c.ExpireEvery <= 0 {
		c.ExpireEvery = time.Minute
	}
	if c.ExpireChunk <= 0 {
		c.ExpireChunk = 100
	}
	if c.RetainFor <= 0 {
		c.RetainFor = 2 * 365 * 24 * time.Hour
	}
	if c.RetentionEvery <= 0 {
		c.RetentionEvery = time.Hour
	}
	return c
}

// Service is the orders module: carts, the quote, checkout and the order
// lifecycle. Safe for concurrent use.
type Service struct {
	db      *sqldb.DB
	write   sqldb.Committer
	idem    *web.Idempotency
	catalog Catalog
	stock   Stock
	perms   Permissions
	payment PaymentMethod
	quote   Pipeline
	cfg     Config
	promos  Promotions
	rates   Rates
	rules   Compliance
	flat    FlatShipping
	logger  *slog.Logger
}

// New returns the orders module over p with deps and cfg.
func New(p module.Platform, deps Deps, cfg Config) *Service {
	cfg = cfg.withDefaults()
	s := &Service{db: p.DB, write: p.Write, idem: p.Idem, catalog: deps.Catalog, stock: deps.Stock,
		perms: deps.Perms, payment: deps.Payment, cfg: cfg, promos: deps.Promotions, rates: deps.Rates, rules: deps.Compliance, logger: p.Logger}
	if s.catalog == nil {
		s.catalog = unavailable{}
	}
	if s.stock == nil {
		s.stock = unavailable{}
	}
	if s.payment == nil {
		s.payment = Sandbox{}
	}
	s.flat = FlatShipping{Method: "standard", Amount: cfg.ShippingFlat, FreeOver: cfg.ShippingFreeOver}
	s.quote = DefaultPipeline(s.flat)
	return s
}

// SetPipeline replaces the quote's stages (promotions, shipping rates and
// tax plug in here). Call it before serving.
func (s *Service) SetPipeline(p Pipeline) { s.quote = p }

// Module declares the orders module.
func (s *Service) Module() module.Module {
	return module.Module{
		Name:       "orders",
		Doc:        "carts, checkout and orders with their lifecycle and payment",
		Migrations: []migrate.Source{Migrations()},
		Permissions: []module.Permission{
			{Name: PermRead, Doc: "read any customer's orders", Roles: []string{accounts.RoleOperator, accounts.RoleCustomerService}},
			{Name: PermWrite, Doc: "change any customer's orders (cancel)", Roles: []string{accounts.RoleOperator, accounts.RoleCustomerService}},
		},
		Routes: append(s.routes(), s.pricingRoutes()...),
		Jobs: []jobs.Job{{Name: "orders.expire", Every: s.cfg.ExpireEvery,
			Run: func(ctx context.Context) (int64, error) { return s.ExpireDue(ctx) }}, s.retentionJob()},
		Events:  append([]event.TypeInfo{OrderPlaced.Info(), OrderPaid.Info(), OrderCancelled.Info(), OrderExpired.Info()}, fulfilmentEvents()...),
		Privacy: &module.Privacy{Section: "orders", Export: s.export, Erase: s.eraseAll},
	}
}

// unavailable stands in for a dependency the process was not wired with.
type unavailable struct{}

func (unavailable) VariantsTx(context.Context, *sqldb.Tx, []string) (map[string]Variant, error) {
	return nil, errs.E("orders.Catalog", errs.Unavailable, "the catalog is not available")
}

func (unavailable) ReserveTx(context.Context, *sqldb.Tx, string, string, []StockLine, time.Duration) error {
	return errs.E("orders.Stock", errs.Unavailable, "inventory is not available")
}
