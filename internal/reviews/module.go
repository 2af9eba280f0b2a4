package reviews

import (
	"context"
	"embed"
	"net"
	"net/http"

	"mercato/internal/accounts"
	"mercato/internal/platform/event"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the reviews module's schema (one text for both engines).
func Migrations() migrate.Source { return migrate.Embedded("reviews", migrations) }

// Products is what reviews needs of the catalog.
type Products interface {
	// Reviewable reports whether productID names a product that exists and
	// is active. tx is the caller's unit when there is one (creating a
	// review) and nil for a read outside any unit (the public list): the
	// implementation then reads from its own database reader. An unknown id
	// is (false, nil), not an error.
	Reviewable(ctx context.Context, tx *sqldb.Tx, productID string) (bool, error)
}

// Purchases is what reviews needs of the orders module.
type Purchases interface {
	// HasPaidOrder reports whether customerID has a paid order holding
	// productID, read inside tx (the review's unit).
	HasPaidOrder(ctx context.Context, tx *sqldb.Tx, customerID, productID string) (bool, error)
}

// The permissions reviews defines.
const (
	// PermModerate lets staff hide and restore reviews.
	PermModerate = "reviews.moderate"
	// PermRead lets staff list reviews of every status.
	PermRead = "reviews.read"
)

// Permissions are the reviews module's permissions and the staff roles that
// hold them besides admin.
var Permissions = []module.Permission{
	{Name: PermModerate, Doc: "hide and restore product reviews",
		Roles: []string{accounts.RoleOperator, accounts.RoleCustomerService}},
	{Name: PermRead, Doc: "list product reviews of every status, with their authors",
		Roles: []string{accounts.RoleOperator, accounts.RoleCustomerService}},
}

// Service is the reviews module. Safe for concurrent use.
type Service struct {
	db        *sqldb.DB
	write     sqldb.Committer
	idem      *web.Idempotency
	products  Products
	purchases Purchases
	clientIP  func(r *http.Request) string
}

// Deps are the other modules' APIs reviews calls. A nil Products makes
// every product unreviewable (404 on the product's routes: nothing is known
// to exist); a nil Purchases makes no review a verified purchase. ClientIP
// gives the client address the audit log records (nil: the connection's
// peer).
type Deps struct {
	Products  Products
	Purchases Purchases
	ClientIP  func(r *http.Request) string
}

// New returns the reviews module on p (its database migrated with
// Migrations, audit's, outbox's and idempotency's).
func New(p module.Platform, d Deps) *Service {
	write := p.Write
	if write == nil && p.DB != nil {
		write = p.DB
	}
	if d.ClientIP == nil {
		d.ClientIP = peerIP
	}
	return &Service{db: p.DB, write: write, idem: p.Idem, products: d.Products, purchases: d.Purchases, clientIP: d.ClientIP}
}

// Module is the reviews module's declaration for the process.
func (s *Service) Module() module.Module {
	return module.Module{
		Name:        "reviews",
		Doc:         "customers' product reviews, their moderation and each product's rating",
		Migrations:  []migrate.Source{Migrations()},
		Permissions: Permissions,
		Routes:      s.Routes(),
		Events:      Events(),
		Privacy:     &module.Privacy{Section: "reviews", Export: s.Export, Erase: s.EraseTx},
	}
}

// Events describes the event types reviews emits, for the events catalogue.
func Events() []event.TypeInfo {
	return []event.TypeInfo{Created.Info(), Hidden.Info(), Restored.Info(), Erased.Info()}
}

// peerIP is the address of the connection's peer.
func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
