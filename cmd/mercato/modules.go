package main

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/audit"
	"mercato/internal/catalog"
	"mercato/internal/catalog/search"
	"mercato/internal/catalog/search/pgsearch"
	"mercato/internal/channels"
	"mercato/internal/compliance"
	"mercato/internal/inventory"
	"mercato/internal/logistics"
	"mercato/internal/logistics/carrier"
	"mercato/internal/logistics/sandboxcarrier"
	"mercato/internal/notifications"
	"mercato/internal/orders"
	"mercato/internal/payments"
	"mercato/internal/platform/event"
	"mercato/internal/platform/idem"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/jobs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/notify"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/secret"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
	"mercato/internal/promotions"
	"mercato/internal/rates"
	"mercato/internal/reviews"
	"mercato/internal/syncmon"
	"mercato/internal/webhooks"
)

// shopConfig is what the modules are told by flags and environment.
type shopConfig struct {
	staffMFARequired bool
	catalogCache     catalog.Cache // nil: the catalog's in-process cache
	searchIndex      search.Index  // nil: no search index (?q= is a LIKE)
	// sandboxCarrierStep is the sandbox carrier's time per tracking stage
	// (default 5 s) and sandboxCarrierSecret its webhook secret (none:
	// its webhooks are refused).
	sandboxCarrierStep   time.Duration
	sandboxCarrierSecret []byte
	identityKey          []byte // keys the hash of identity numbers (from the server secret)
	payments             paymentsConfig
	secret               []byte // the server secret (webhook secrets are sealed under it)
	webhooksPrivate      bool   // --webhook-allow-private
	connectorDir         string // --connector-dir: where file_drop connectors write
	notifications        notifications.Config
	trackingURL          string // the shipped mail's link: {order}, {carrier}, {number} filled in
	// inlinePay makes the orders module pay with its inline test Sandbox
	// instead of the payments module (serve --pay-inline-sandbox: the load
	// generator's reference for the payments module's cost).
	inlinePay bool
}

// shop is the process's modules, built over one Platform.
type shop struct {
	accounts  *accounts.Service // the Authenticator, also when its routes run elsewhere
	catalog   *catalog.Service
	inventory *inventory.Service
	webhooks  *webhooks.Service
	replays   *inbox.Replays  // replays of past events to the replayable consumers
	modules   []module.Module // every module, in dependency order
	notify    *notify.Hub     // every cache's invalidations: one LISTEN connection (nil without a database)
}

// newShop builds every module over p, in dependency order. Adding a module
// is one line here (docs/modules.md). Building is cheap and starts nothing:
// `migrate` and `admin` build the shop too, for its migrations and use
// cases.
func newShop(p module.Platform, mon *inbox.Monitor, c shopConfig) (*shop, error) {
	if p.DB != nil && p.Notify == nil {
		// One LISTEN connection for the caches of every module: the token
		// cache, the product documents, promotions, rates and region rules.
		p.Notify = notify.New(p.DB)
	}
	hub := p.Notify
	acc := accounts.New(p, accounts.LogMailer{Logger: p.Logger}, accounts.Config{StaffMFARequired: c.staffMFARequired})
	ratings := &catalogRatings{}
	inv := inventory.New(p, inventory.Config{})
	cat := catalog.New(p, catalog.Config{Cache: c.catalogCache, Index: c.searchIndex, Ratings: ratings, Stock: inv})
	promos := promotions.New(p, promotions.Config{})
	rts := rates.New(p, rates.Config{})
	rules := compliance.New(p, complianceProducts{cat})
	pay := payments.New(p, c.payments.providers(), payments.Config{})
	var method orders.PaymentMethod = pay
	if c.inlinePay {
		method = orders.Sandbox{}
	}
	ord := orders.New(p, orders.Deps{Catalog: ordersCatalog{cat}, Stock: ordersStock{inv}, Perms: acc, Payment: method,
		Promotions: promos, Rates: ordersRates{rts}, Compliance: ordersCompliance{rules}}, orders.Config{IdentityKey: c.identityKey})
	pay.UseOrders(ord)
	sync := syncmon.New(mon)
	sync.Report(pay)
	rev := reviews.New(p, reviews.Deps{Products: cat, Purchases: ord})
	sandbox := sandboxcarrier.New(sandboxcarrier.Config{Step: c.sandboxCarrierStep, Now: dbNow(p.DB), Secret: c.sandboxCarrierSecret})
	lgx := logistics.New(p, logistics.Deps{Orders: ord, Stock: inv, Carriers: []carrier.Carrier{sandbox}},
		logistics.Config{TrackEvery: c.sandboxCarrierStep, Secret: c.secret})
	ratings.r = rev
	var mods []module.Module
	replays := inbox.NewReplays(p.DB, p.Write, inbox.ReplayConfig{Logger: p.Logger}, func() []inbox.Consumer { return consumersOf(mods) })
	wh := webhooks.New(p, webhooks.Config{Secret: c.secret, AllowPrivate: c.webhooksPrivate, Types: func() []string { return eventTypes(mods) },
		Payloads: func() []event.TypeInfo { return module.Events(mods) }, ConnectorDir: c.connectorDir})
	mods = []module.Module{
		acc.Module(),
		audit.NewLog(p.DB).Module(),
		wh.Module(),
		sync.WithWebhooks(wh).WithOrders(syncOrders{ord}).WithReplays(p, replays).Module(),
		cat.Module(),
		rev.Module(),
		inv.Module(),
		ord.Module(),
		promos.Module(),
		rts.Module(),
		rules.Module(),
		lgx.Module(),
		pay.Module(),
		channels.New(p, channels.Deps{Orders: ord, Tokens: acc, Connectors: wh}, channels.Config{}).Module(),
		notifications.New(p, notifications.Deps{Customers: acc, Orders: ord, Tracking: trackingLinks{lgx, c.trackingURL},
			DeadLetters: deadLetters{mon}}, c.notifications).Module(),
	}
	if err := module.Check(mods); err != nil {
		return nil, err
	}
	acc.UseModules(mods)
	return &shop{accounts: acc, catalog: cat, inventory: inv, webhooks: wh, replays: replays, modules: mods, notify: hub}, nil
}

// consumersOf lists the consumers mods declare.
func consumersOf(mods []module.Module) []inbox.Consumer {
	var out []inbox.Consumer
	for _, m := range mods {
		out = append(out, m.Consumers...)
	}
	return out
}

// trackingLinks gives the notifications module the link of a shipment:
// url with {order}, {carrier} and {number} filled in.
type trackingLinks struct {
	lgx *logistics.Service
	url string
}

func (t trackingLinks) TrackingLink(ctx context.Context, orderID, shipmentID string) (string, error) {
	if t.url == "" {
		return "", nil
	}
	tr, err := t.lgx.TrackingOf(ctx, orderID)
	if err != nil {
		return "", err
	}
	for _, sh := range tr.Items {
		if sh.ID == shipmentID {
			return strings.NewReplacer("{order}", url.PathEscape(orderID), "{carrier}", url.PathEscape(sh.Carrier),
				"{number}", url.PathEscape(sh.TrackingNumber)).Replace(t.url), nil
		}
	}
	return "", nil
}

// deadLetters counts the parked events for the notifications' staff alert
// (none without a monitor: tools build the shop without one).
type deadLetters struct{ mon *inbox.Monitor }

func (d deadLetters) DeadLetters(ctx context.Context) (int64, error) {
	if d.mon == nil {
		return 0, nil
	}
	st, err := d.mon.Status(ctx)
	return st.DeadLetters, err
}

// dbNow is db's clock, or the wall clock for a shop built without a
// database (moduleNames, checkModuleNames: nothing runs there).
func dbNow(db *sqldb.DB) func() time.Time {
	if db == nil {
		return time.Now
	}
	return db.Now
}

// moduleNames lists the names `serve --modules` accepts.
func moduleNames() []string {
	s, err := newShop(module.Platform{}, nil, shopConfig{})
	if err != nil {
		panic(err)
	}
	return module.Names(s.modules)
}

// checkModuleNames refuses names that are no module (before anything opens).
func checkModuleNames(names []string) error {
	s, err := newShop(module.Platform{}, nil, shopConfig{})
	if err != nil {
		return err
	}
	_, err = module.Select(s.modules, names)
	return err
}

// platformSources are the migrations of the platform's own tables, which
// every module's work relies on.
func platformSources() []migrate.Source {
	return []migrate.Source{web.Migrations(), idem.Migrations(), secret.Migrations(), outbox.Migrations(), inbox.Migrations(), jobs.Migrations(),
		pgsearch.Migrations()} // the PostgreSQL search index's table (nothing on SQLite), whichever index serves
}

// migrations lists every migration the database needs: the platform's, then
// every module's (all of them, whichever modules this process runs).
func (s *shop) migrations() []migrate.Source {
	return slices.Concat(platformSources(), module.Migrations(s.modules))
}

// parseModules splits a --modules value ("accounts,audit"); empty is all.
func parseModules(v string) []string {
	var out []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// runs reports whether a --modules list (empty: every module) runs name.
func runs(names []string, name string) bool {
	return len(names) == 0 || slices.Contains(names, name)
}

// eventTypes lists the event types the modules emit (webhook filters name them).
func eventTypes(mods []module.Module) []string {
	var out []string
	for _, e := range module.Events(mods) {
		out = append(out, e.Type)
	}
	return out
}
