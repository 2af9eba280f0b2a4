package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"time"

	"mercato/internal/catalog"
	"mercato/internal/compliance"
	"mercato/internal/inventory"
	"mercato/internal/orders"
	"mercato/internal/payments/provider"
	"mercato/internal/payments/sandboxpay"
	"mercato/internal/payments/stripepay"
	"mercato/internal/platform/sqldb"
	"mercato/internal/rates"
	"mercato/internal/reviews"
	"mercato/internal/syncmon"
)

// The adapters below fit one module's exported API to the small interface
// another module consumes (each interface belongs to its consumer), so that
// no module imports another for a signature's sake.

// ordersCatalog is the catalog as the orders module prices lines: the web
// storefront's channel.
type ordersCatalog struct{ c *catalog.Service }

func (a ordersCatalog) VariantsTx(ctx context.Context, tx *sqldb.Tx, skus []string) (map[string]orders.Variant, error) {
	vs, err := a.c.VariantsTx(ctx, tx, "web", skus)
	if err != nil {
		return nil, err
	}
	out := make(map[string]orders.Variant, len(vs))
	for sku, v := range vs {
		out[sku] = orders.Variant{SKU: v.SKU, ProductID: v.ProductID, Title: lineTitle(v.ProductTitle, v.VariantTitle),
			Price: v.Price, WeightGrams: v.WeightGrams, TaxClass: v.TaxClass, Sellable: v.Sellable, CategoryIDs: v.CategoryIDs}
	}
	return out, nil
}

// lineTitle is an order line's title: the product's, with the variant's
// when it says more ("Linen shirt — Blue / M").
func lineTitle(product, variant string) string {
	if variant == "" || variant == product {
		return product
	}
	return product + " — " + variant
}

// ordersStock is inventory as the orders module reserves stock.
type ordersStock struct{ inv *inventory.Service }

func (a ordersStock) ReserveTx(ctx context.Context, tx *sqldb.Tx, ref, customerID string, lines []orders.StockLine, ttl time.Duration) error {
	ls := make([]inventory.Line, len(lines))
	for i, l := range lines {
		ls[i] = inventory.Line{SKU: l.SKU, Quantity: int64(l.Quantity)}
	}
	_, err := a.inv.ReserveTx(ctx, tx, ref, customerID, ls, ttl)
	return err
}

// catalogRatings is the reviews module as the catalog reads ratings. The
// catalog is built first (reviews asks it which products are reviewable),
// so r is set once reviews exists.
type catalogRatings struct{ r *reviews.Service }

func (a *catalogRatings) Ratings(ctx context.Context, ids []string) (map[string]catalog.Rating, error) {
	rs, err := a.r.Ratings(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]catalog.Rating, len(rs))
	for id, r := range rs {
		out[id] = catalog.Rating{Average: r.Average, Count: r.Count}
	}
	return out, nil
}

// ordersRates is the rates module as the orders quote reads its tables.
type ordersRates struct{ r *rates.Service }

func (a ordersRates) TablesTx(ctx context.Context, tx *sqldb.Tx) (orders.RateTables, error) {
	st, tt, err := a.r.CurrentTx(ctx, tx)
	if err != nil {
		return orders.RateTables{}, err
	}
	// The table's currency from its prices: one query fewer than ShippingCurrencyTx.
	return orders.RateTables{Shipping: st, ShippingCurrency: orders.TableCurrency(st), Tax: tt}, nil
}

// ordersCompliance is the compliance module as the orders checkout checks
// the region rules.
type ordersCompliance struct{ c *compliance.Service }

func complianceCart(rc orders.RegionCheck) compliance.Cart {
	c := compliance.Cart{CustomerID: rc.CustomerID, Country: rc.Country, Region: rc.Region, Currency: rc.Currency,
		Amount: rc.Amount, IdentityGiven: rc.IdentityGiven}
	for _, l := range rc.Lines {
		c.Lines = append(c.Lines, compliance.Line{SKU: l.SKU, ProductID: l.ProductID, CategoryIDs: l.CategoryIDs})
	}
	return c
}

func (a ordersCompliance) CheckTx(ctx context.Context, tx *sqldb.Tx, rc orders.RegionCheck) (int64, error) {
	return a.c.CheckTx(ctx, tx, complianceCart(rc))
}

func (a ordersCompliance) CountTx(ctx context.Context, tx *sqldb.Tx, orderID string, rc orders.RegionCheck) (int64, error) {
	return a.c.CountTx(ctx, tx, orderID, complianceCart(rc))
}

// complianceProducts is the catalog as the region rules check the products
// they name (an existing, active product).
type complianceProducts struct{ c *catalog.Service }

func (a complianceProducts) ProductExistsTx(ctx context.Context, tx *sqldb.Tx, id string) (bool, error) {
	return a.c.Reviewable(ctx, tx, id)
}

// identityKey derives the key of identity-number hashes from the server
// secret.
func identityKey(secret []byte) []byte { return hmacKey(secret, "mercato orders identity") }

// paymentsConfig picks the payment providers: Stripe when
// MERCATO_STRIPE_KEY is set, else the sandbox (its webhooks signed with
// sandboxSecret, random when empty) — never both, so that a shop taking
// real money offers no free tok_success.
type paymentsConfig struct {
	sandboxSecret []byte
	stripe        stripepay.Config
}

func (c paymentsConfig) providers() []provider.Provider {
	secret := c.sandboxSecret
	if len(secret) == 0 {
		secret = make([]byte, 32)
		rand.Read(secret)
	}
	if c.stripe.Key != "" {
		return []provider.Provider{stripepay.New(c.stripe)}
	}
	return []provider.Provider{sandboxpay.New(secret, nil)}
}

// hmacKey derives a purpose's key from the server secret.
func hmacKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// syncOrders is the orders module's timeline as the sync monitor lists an
// order's events.
type syncOrders struct{ o *orders.Service }

func (a syncOrders) OrderEvents(ctx context.Context, id string) ([]syncmon.EventRef, error) {
	tl, err := a.o.Events(ctx, orders.Caller{}, id, true)
	if err != nil {
		return nil, err
	}
	out := make([]syncmon.EventRef, len(tl.Items))
	for i, e := range tl.Items {
		out[i] = syncmon.EventRef{ID: e.ID, Type: e.Type, OccurredAt: e.OccurredAt}
	}
	return out, nil
}
