package inventory

import (
	"context"
	"embed"
	"log/slog"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the inventory module's schema.
func Migrations() migrate.Source { return migrate.Embedded("inventory", migrations) }

// The permissions inventory defines.
const (
	PermRead  = "inventory.read"
	PermWrite = "inventory.write"
)

// Config tunes the module. Zero values take the defaults.
type Config struct {
	// Allocator decides where a line's units come from (MostAvailable).
	Allocator Allocator
	// TTL is a reservation's lifetime when its caller gives none (DefaultTTL).
	TTL time.Duration
	// SoldOutMax bounds the in-memory sold-out set (100,000 SKUs).
	SoldOutMax int
	// SoldOutTTL is how long a SKU stays refused at the door after it was
	// seen sold out, unless a commit in this process clears it sooner
	// (default 2s): the longest a receipt committed by another replica
	// waits to be seen here.
	SoldOutTTL time.Duration
	// OnFlush, when set, is told after each commit what the transaction did
	// to each SKU it touched (metrics, tests). It must not block.
	OnFlush func(Flush)
}

// Service is the inventory module. Safe for concurrent use.
type Service struct {
	db      *sqldb.DB
	write   sqldb.Committer
	idem    *web.Idempotency
	log     *slog.Logger
	alloc   Allocator
	ttl     time.Duration
	soldOut *soldOutSet
	onFlush func(Flush)
}

// New returns the inventory module over p.
func New(p module.Platform, cfg Config) *Service {
	s := &Service{db: p.DB, write: p.Write, idem: p.Idem, log: p.Logger, alloc: cfg.Allocator, ttl: cfg.TTL, onFlush: cfg.OnFlush}
	if s.write == nil {
		s.write = p.DB
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.alloc == nil {
		s.alloc = MostAvailable{}
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	if cfg.SoldOutMax <= 0 {
		cfg.SoldOutMax = 100_000
	}
	if cfg.SoldOutTTL <= 0 {
		cfg.SoldOutTTL = 2 * time.Second
	}
	now := time.Now
	if p.DB != nil {
		now = p.DB.Now
	}
	s.soldOut = newSoldOutSet(cfg.SoldOutMax, cfg.SoldOutTTL, now)
	return s
}

// Module is inventory's declaration for the process.
func (s *Service) Module() module.Module {
	return module.Module{
		Name:       "inventory",
		Doc:        "stock per SKU and location, its ledger, reservations for orders, flash-sale guards",
		Migrations: []migrate.Source{Migrations()},
		Permissions: []module.Permission{
			{Name: PermRead, Doc: "read stock, its ledger, locations and guards", Roles: []string{accounts.RoleOperator}},
			{Name: PermWrite, Doc: "set stock, create locations, set flash-sale guards", Roles: []string{accounts.RoleOperator}},
		},
		Routes:    s.Routes(),
		Consumers: []inbox.Consumer{s.OrderConsumer()},
		Events:    Events(),
		Privacy:   &module.Privacy{Section: "inventory", Export: s.export, Erase: s.erase},
	}
}

// The order events inventory consumes. The orders module defines their
// payloads; inventory reads only the aggregate id (the order id, which is
// the reservation's reference) and so does not import it.
const (
	EventOrderPaid      = "order.paid"
	EventOrderCancelled = "order.cancelled"
	EventOrderExpired   = "order.expired"
)

// OrderConsumer commits an order's reservation when it is paid and
// releases it when it is cancelled or expires (the committed units of a
// paid order that is cancelled come back on hand: RestockCancelledTx). Exactly-once through the
// inbox; an order without a reservation, or whose reservation went the
// other way already, is applied with no effect (logged).
func (s *Service) OrderConsumer() inbox.Consumer {
	return inbox.Consumer{
		Name:   "inventory_orders",
		Events: []string{EventOrderPaid, EventOrderCancelled, EventOrderExpired},
		Handle: s.HandleOrderEvent,
	}
}

// HandleOrderEvent is OrderConsumer's handler.
func (s *Service) HandleOrderEvent(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
	var err error
	switch e.Type {
	case EventOrderPaid:
		err = s.CommitTx(ctx, tx, e.AggregateID)
	case EventOrderCancelled:
		// An unpaid order's reservation is released; a paid one's units
		// were committed (they left on_hand) but never shipped — an order
		// is not cancellable once shipped — so they come back on hand.
		if err = s.ReleaseTx(ctx, tx, e.AggregateID); errs.CodeOf(err) == errs.CodeInvalidTransition {
			err = s.RestockCancelledTx(ctx, tx, e.AggregateID)
		}
	case EventOrderExpired:
		err = s.ReleaseTx(ctx, tx, e.AggregateID)
	default:
		return nil
	}
	if k := errs.KindOf(err); err != nil && (k == errs.NotFound || k == errs.Conflict) {
		s.log.WarnContext(ctx, "inventory: order event without effect", "type", e.Type, "order", e.AggregateID, "err", err)
		return nil
	}
	return err
}

// The events inventory emits. The aggregate of reserved, committed and
// released is the reservation, whose id is the order reference: a consumer
// sees one order's reservation, commit or release in that order. The
// aggregate of low_stock is the SKU.
var (
	Reserved = event.Define[ReservedData]("inventory.reserved", 1,
		"Units were reserved for an unpaid order (aggregate id: the order reference). Emitted with the reservation, all lines or none.")
	Committed = event.Define[SettledData]("inventory.committed", 1,
		"An order's reserved units were committed (it was paid): they left on_hand and reserved (aggregate id: the order reference).")
	Released = event.Define[SettledData]("inventory.released", 1,
		"An order's reserved units were released (cancelled or expired): they are available again (aggregate id: the order reference).")
	LowStock = event.Define[LowStockData]("inventory.low_stock", 1,
		"A SKU's available units fell below its low-stock threshold (aggregate id: the SKU). Emitted once per crossing: "+
			"again only after the stock rose to the threshold or above.")
	SoldOut = event.Define[AvailabilityData]("inventory.sold_out", 1,
		"A SKU's available units fell to zero (aggregate id: the SKU): the catalog's in-stock facet follows it.")
	Restocked = event.Define[AvailabilityData]("inventory.restocked", 1,
		"A SKU with no available units has some again (aggregate id: the SKU): a receipt, a release or a return.")
)

// AvailabilityData is the payload of inventory.sold_out and
// inventory.restocked.
type AvailabilityData struct {
	SKU       string `json:"sku" doc:"The SKU (also the aggregate id)."`
	Available int64  `json:"available" doc:"Its available units after the change."`
}

// ReservedData is the payload of inventory.reserved.
type ReservedData struct {
	Ref       string         `json:"ref" doc:"The order reference (also the aggregate id)."`
	Lines     []ReservedLine `json:"lines" doc:"What was reserved where: {sku, location, quantity}; a request line may be split over locations."`
	ExpiresAt time.Time      `json:"expires_at" doc:"When the reservation expires unless committed."`
}

// SettledData is the payload of inventory.committed and inventory.released.
type SettledData struct {
	Ref   string         `json:"ref" doc:"The order reference (also the aggregate id)."`
	Lines []ReservedLine `json:"lines" doc:"The reservation's lines: {sku, location, quantity}."`
}

// LowStockData is the payload of inventory.low_stock.
type LowStockData struct {
	SKU       string `json:"sku" doc:"The SKU (also the aggregate id)."`
	Available int64  `json:"available" doc:"Its available units after the change."`
	Threshold int64  `json:"threshold" doc:"Its low-stock threshold."`
}

// Events describes the event types inventory emits.
func Events() []event.TypeInfo {
	return []event.TypeInfo{Reserved.Info(), Committed.Info(), Released.Info(), LowStock.Info(), SoldOut.Info(), Restocked.Info()}
}
