package catalog

import (
	"context"
	"embed"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/catalog/search"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/notify"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the catalog's schema.
func Migrations() migrate.Source { return migrate.Embedded("catalog", migrations) }

// The permissions the catalog defines.
const (
	PermWrite = "catalog.write"
	PermRead  = "catalog.read"
)

// RatingSource gives products' review summaries; the reviews module
// satisfies it. A product without reviews may be missing from the answer.
type RatingSource interface {
	Ratings(ctx context.Context, productIDs []string) (map[string]Rating, error)
}

// StockSource says which SKUs have units available; the inventory module
// satisfies it. It feeds the search documents' InStock.
type StockSource interface {
	InStock(ctx context.Context, skus []string) (map[string]bool, error)
}

// Config configures the catalog.
type Config struct {
	// Index is the search index; nil disables search: ?q= then lists
	// active products whose title or a SKU holds q (a database LIKE), with
	// no facets.
	Index search.Index
	// Ratings gives the products' ratings (nil: every product has none).
	Ratings RatingSource
	// Stock says which SKUs are in stock (nil: every product is).
	Stock StockSource
	// Cache keeps encoded public product documents (nil: an in-process
	// cache of CacheSize entries; NewRedisCache for one shared by replicas).
	Cache     Cache
	CacheSize int           // default 100,000
	CacheTTL  time.Duration // default DefaultCacheTTL (also the Redis TTL)
	// PublicMaxAge is the max-age of public reads' Cache-Control (default 60s).
	PublicMaxAge time.Duration
	// IndexBatch and IndexWindow shape the indexer's batches (defaults 500
	// ids, 50ms).
	IndexBatch  int
	IndexWindow time.Duration
	// ImportProgress is how many CSV rows an import logs progress after
	// (default 1000).
	ImportProgress int
}

// Service is the catalog module. Safe for concurrent use.
type Service struct {
	db    *sqldb.DB
	write sqldb.Committer
	idem  *web.Idempotency
	log   *slog.Logger
	cfg   Config
	cache Cache
	index *Indexer

	gen    atomic.Uint64  // counts cache invalidations (see drop)
	hub    *notify.Hub    // the other replicas' invalidations (nil without a database)
	ownHub bool           // the hub is the module's own: RunInvalidations runs it
	onDrop func([]string) // called after each invalidation (tests)
}

// New builds the catalog over p. It starts nothing: Run does.
func New(p module.Platform, cfg Config) *Service {
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100_000
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.PublicMaxAge <= 0 {
		cfg.PublicMaxAge = 60 * time.Second
	}
	if cfg.ImportProgress <= 0 {
		cfg.ImportProgress = 1000
	}
	if cfg.Cache == nil {
		cfg.Cache = NewMemoryCache(cfg.CacheSize, cfg.CacheTTL)
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Service{db: p.DB, write: p.Write, idem: p.Idem, log: log, cfg: cfg, cache: cfg.Cache}
	if s.write == nil && p.DB != nil {
		s.write = p.DB
	}
	s.index = newIndexer(s, cfg.Index, cfg.IndexBatch, cfg.IndexWindow, log)
	if p.DB != nil && !cfg.Cache.Shared() {
		s.hub, s.ownHub = p.Hub()
		s.hub.Listen(notifyName, notify.Listener{
			On:    func(payload string) { s.drop(strings.Split(payload, ",")) },
			Reset: s.dropAll,
		})
	}
	return s
}

// Module is the catalog's declaration for the process.
func (s *Service) Module() module.Module {
	return module.Module{
		Name:       "catalog",
		Doc:        "categories, products and their variants, prices for orders, the public product reads and search",
		Migrations: []migrate.Source{Migrations()},
		Permissions: []module.Permission{
			{Name: PermWrite, Doc: "create and change products and categories, import the catalogue",
				Roles: []string{accounts.RoleOperator}},
			{Name: PermRead, Doc: "read products of any status, export the catalogue",
				Roles: []string{accounts.RoleOperator, accounts.RoleCustomerService}},
		},
		Routes:    s.Routes(),
		Consumers: []inbox.Consumer{s.index.Consumer()},
		Events:    Events(),
	}
}

// Indexer is the catalog's search indexer (its consumer and loop).
func (s *Service) Indexer() *Indexer { return s.index }

// Run runs the catalog's background work until ctx ends: the search
// indexer's loop, and the cache invalidations of other replicas when the
// catalog has a notify hub of its own (see RunInvalidations).
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.index.Run(ctx) })
	err := s.RunInvalidations(ctx)
	wg.Wait()
	return err
}
