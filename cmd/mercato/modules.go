package main

import (
	"slices"
	"strings"

	"mercato/internal/accounts"
	"mercato/internal/audit"
	"mercato/internal/catalog"
	"mercato/internal/inventory"
	"mercato/internal/orders"
	"mercato/internal/platform/idem"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/jobs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/secret"
	"mercato/internal/platform/web"
	"mercato/internal/reviews"
	"mercato/internal/syncmon"
	"mercato/internal/webhooks"
)

// shopConfig is what the modules are told by flags and environment.
type shopConfig struct {
	staffMFARequired bool
	catalogCache     catalog.Cache // nil: the catalog's in-process cache
	secret           []byte        // the server secret (webhook secrets are sealed under it)
	webhooksPrivate  bool          // --webhook-allow-private
}

// shop is the process's modules, built over one Platform.
type shop struct {
	accounts *accounts.Service // the Authenticator, also when its routes run elsewhere
	catalog  *catalog.Service
	modules  []module.Module // every module, in dependency order
}

// newShop builds every module over p, in dependency order. Adding a module
// is one line here (docs/modules.md). Building is cheap and starts nothing:
// `migrate` and `admin` build the shop too, for its migrations and use
// cases.
func newShop(p module.Platform, mon *inbox.Monitor, c shopConfig) (*shop, error) {
	acc := accounts.New(p, accounts.LogMailer{Logger: p.Logger}, accounts.Config{StaffMFARequired: c.staffMFARequired})
	// Search is off (Index nil: ?q= lists with a LIKE on title and SKU)
	// until the search package's Bleve and PostgreSQL indexes land; they are
	// wired here then (catalog.Config.Index).
	ratings := &catalogRatings{}
	cat := catalog.New(p, catalog.Config{Cache: c.catalogCache, Ratings: ratings})
	inv := inventory.New(p, inventory.Config{})
	ord := orders.New(p, orders.Deps{Catalog: ordersCatalog{cat}, Stock: ordersStock{inv}, Perms: acc}, orders.Config{})
	rev := reviews.New(p, reviews.Deps{Products: cat, Purchases: ord})
	ratings.r = rev
	var mods []module.Module
	wh := webhooks.New(p, webhooks.Config{Secret: c.secret, AllowPrivate: c.webhooksPrivate, Types: func() []string { return eventTypes(mods) }})
	mods = []module.Module{
		acc.Module(),
		audit.NewLog(p.DB).Module(),
		wh.Module(),
		syncmon.New(mon).WithWebhooks(wh).Module(),
		cat.Module(),
		rev.Module(),
		inv.Module(),
		ord.Module(),
	}
	if err := module.Check(mods); err != nil {
		return nil, err
	}
	acc.UseModules(mods)
	return &shop{accounts: acc, catalog: cat, modules: mods}, nil
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
	return []migrate.Source{web.Migrations(), idem.Migrations(), secret.Migrations(), outbox.Migrations(), inbox.Migrations(), jobs.Migrations()}
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

// eventTypes lists the event types the modules emit (webhook filters name them).
func eventTypes(mods []module.Module) []string {
	var out []string
	for _, e := range module.Events(mods) {
		out = append(out, e.Type)
	}
	return out
}
