package orders

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"mercato/internal/audit"
	"mercato/internal/compliance"
	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/promotions"
	"mercato/internal/rates"
)

// pricedEnv is env with the real promotions, rates and compliance modules
// behind the orders interfaces (the adapters of cmd/mercato, in small).
type pricedEnv struct {
	*env
	promos *promotions.Service
	rates  *rates.Service
	rules  *compliance.Service
}

type testRates struct{ r *rates.Service }

func (a testRates) TablesTx(ctx context.Context, tx *sqldb.Tx) (RateTables, error) {
	st, tt, err := a.r.CurrentTx(ctx, tx)
	if err != nil {
		return RateTables{}, err
	}
	return RateTables{Shipping: st, ShippingCurrency: TableCurrency(st), Tax: tt}, nil
}

type testRules struct{ c *compliance.Service }

func cartOf(rc RegionCheck) compliance.Cart {
	c := compliance.Cart{CustomerID: rc.CustomerID, Country: rc.Country, Region: rc.Region, Currency: rc.Currency,
		Amount: rc.Amount, IdentityGiven: rc.IdentityGiven}
	for _, l := range rc.Lines {
		c.Lines = append(c.Lines, compliance.Line{SKU: l.SKU, ProductID: l.ProductID, CategoryIDs: l.CategoryIDs})
	}
	return c
}

func (a testRules) CheckTx(ctx context.Context, tx *sqldb.Tx, rc RegionCheck) (int64, error) {
	return a.c.CheckTx(ctx, tx, cartOf(rc))
}

func (a testRules) CountTx(ctx context.Context, tx *sqldb.Tx, id string, rc RegionCheck) (int64, error) {
	return a.c.CountTx(ctx, tx, id, cartOf(rc))
}

func pricedSources() []migrate.Source {
	return append(sources(), promotions.Migrations(), rates.Migrations(), compliance.Migrations(), audit.Migrations())
}

func forEachPriced(t *testing.T, fn func(t *testing.T, e *pricedEnv)) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		e := &pricedEnv{env: newEnv(t, db)}
		p := module.Platform{DB: db, Write: e.svc.write, Idem: e.svc.idem, Logger: e.svc.logger}
		e.promos, e.rates, e.rules = promotions.New(p, promotions.Config{}), rates.New(p, rates.Config{}), compliance.New(p, nil)
		e.svc.promos, e.svc.rates, e.svc.rules = e.promos, testRates{e.rates}, testRules{e.rules}
		e.svc.cfg.IdentityKey = []byte("test identity key")
		fn(t, e)
	}, pricedSources()...)
}

func ptr[T any](v T) *T { return &v }

var staff = promotions.Actor{ID: "u-op"}

// coupon creates a percentage promotion behind code.
func (e *pricedEnv) coupon(code string, bp int64, lim promotions.Limits, w promotions.Window) promotions.Promotion {
	e.t.Helper()
	p, err := e.promos.Create(context.Background(), staff, promotions.Rule{Name: code, Kind: "percentage", PercentBP: bp,
		Codes: []string{code}, Limits: lim, Window: w})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func TestCouponScenario(t *testing.T) {
	forEachPriced(t, func(t *testing.T, e *pricedEnv) {
		p := e.coupon("TEN", 1000, promotions.Limits{}, promotions.Window{})
		e.coupon("OLD", 1000, promotions.Limits{}, promotions.Window{EndsAt: e.clock.Now().Add(time.Hour)})
		e.clock.Advance(2 * time.Hour)
		alice := e.as("alice")
		cart := e.cartWith(alice, "TEE-M", 2, "MUG", 1) // 3900

		cases := []struct {
			code   string
			status int
			want   string
		}{
			{"nope", http.StatusUnprocessableEntity, "coupon_unknown"},
			{"old", http.StatusUnprocessableEntity, "coupon_expired"},
			{"", http.StatusUnprocessableEntity, "validation_failed"},
		}
		for _, c := range cases {
			r := alice.Do("POST", "/api/v1/carts/"+cart+"/coupons", map[string]any{"code": c.code})
			r.WantStatus(t, c.status)
			if got := fieldStr(r, "code"); got != c.want {
				t.Errorf("%q: code %s, want %s", c.code, got, c.want)
			}
		}
		var stored string
		e.db.Reader().QueryRow(`SELECT coupons FROM orders_carts WHERE id = $1`, cart).Scan(&stored)
		if stored != "[]" {
			t.Fatalf("refused coupons stored: %s", stored)
		}

		r := alice.Do("POST", "/api/v1/carts/"+cart+"/coupons", map[string]any{"code": " ten "})
		r.WantStatus(t, http.StatusOK)
		if got := amount(r, "discount"); got != 390 {
			t.Fatalf("cart discount %d, want 390", got)
		}
		if got := fieldStr(r, "coupons.0.outcome"); got != "applied" {
			t.Fatalf("coupon outcome %s", got)
		}

		r = alice.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": goodAddress})
		r.WantStatus(t, http.StatusCreated)
		id := fieldStr(r, "id")
		// 3900 − 390 = 3510 < 5000: flat shipping 500, no tax table.
		for path, want := range map[string]int64{"subtotal": 3900, "discount": 390, "shipping": 500, "tax": 0, "total": 4010} {
			if got := amount(r, path); got != want {
				t.Errorf("%s = %d, want %d", path, got, want)
			}
		}
		if got := fieldStr(r, "priced_with.promotions.0.id"); got != p.ID {
			t.Errorf("priced with %s, want %s", got, p.ID)
		}
		// Lines added in one instant are in SKU order: MUG, then TEE-M.
		if got := r.Field("lines.0.breakdown.discounts.0.amount"); fieldStr(r, "lines.0.sku") != "MUG" || got != float64(90) {
			t.Errorf("MUG line discount %v, want 90", got)
		}
		if got := r.Field("lines.1.breakdown.discount"); got != float64(300) {
			t.Errorf("TEE-M line discount %v, want 300", got)
		}
		if got := e.outboxTypes(id); len(got) != 1 || got[0] != "order.placed" {
			t.Errorf("events %v", got)
		}
		if n := e.count("promotions_redemptions", "order_ref = $1", id); n != 1 {
			t.Errorf("%d redemptions, want 1", n)
		}
		got := alice.Do("GET", "/api/v1/orders/"+id, nil)
		got.WantStatus(t, http.StatusOK)
		if fieldStr(got, "priced_with.promotions.0.id") != p.ID || amount(got, "discount") != 390 {
			t.Errorf("the stored order lost its pricing: %s", got.Body)
		}
	})
}

func TestTaxFromRatesTable(t *testing.T) {
	forEachPriced(t, func(t *testing.T, e *pricedEnv) {
		ctx := context.Background()
		if _, err := e.rates.PutTax(ctx, rates.Actor{ID: "u-op"}, rates.TaxRequest{Regions: []rates.TaxRegion{
			{Country: "US", Rounding: "line", Rates: []rates.TaxRate{{Class: "standard", BP: 1000}}},
			{Country: "FR", Inclusive: true, Rounding: "line", Rates: []rates.TaxRate{{Class: "standard", BP: 2000}}},
		}}); err != nil {
			t.Fatal(err)
		}
		fr := map[string]any{"name": "A", "line1": "1 rue", "city": "Paris", "region": "IDF", "postal_code": "75001", "country": "FR"}
		cases := []struct {
			name      string
			addr      map[string]any
			tax, tot  int64
			inclusive bool
		}{
			{"exclusive US", goodAddress, 390, 3900 + 500 + 390, false},
			{"inclusive FR", fr, 650, 3900 + 500, true}, // 3900 × 20/120
		}
		for _, c := range cases {
			alice := e.as("alice")
			cart := e.cartWith(alice, "TEE-M", 2, "MUG", 1)
			r := alice.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": c.addr})
			r.WantStatus(t, http.StatusCreated)
			if amount(r, "tax") != c.tax || amount(r, "total") != c.tot || r.Field("priced_with.tax_inclusive") != c.inclusive {
				t.Errorf("%s: tax %d total %d inclusive %v, want %d %d %v", c.name, amount(r, "tax"), amount(r, "total"),
					r.Field("priced_with.tax_inclusive"), c.tax, c.tot, c.inclusive)
			}
			got := alice.Do("GET", "/api/v1/orders/"+fieldStr(r, "id"), nil)
			if amount(got, "tax") != c.tax || amount(got, "total") != c.tot {
				t.Errorf("%s: stored tax %d total %d", c.name, amount(got, "tax"), amount(got, "total"))
			}
		}
	})
}

func TestShippingMethodsListed(t *testing.T) {
	forEachPriced(t, func(t *testing.T, e *pricedEnv) {
		alice := e.as("alice")
		cart := e.cartWith(alice, "MUG", 1)
		r := alice.Do("GET", "/api/v1/carts/"+cart+"/shipping-methods?country=US", nil)
		r.WantStatus(t, http.StatusOK)
		if fieldStr(r, "methods.0.method") != "standard" || amount(r, "methods.0.price") != 500 {
			t.Errorf("flat methods: %s", r.Body)
		}
		alice.Do("GET", "/api/v1/carts/"+cart+"/shipping-methods", nil).WantStatus(t, http.StatusUnprocessableEntity)
		e.as("bob").Do("GET", "/api/v1/carts/"+cart+"/shipping-methods?country=US", nil).WantStatus(t, http.StatusNotFound)

		// With a rates table: its methods for the address, and the one chosen charged.
		if _, err := e.rates.PutShipping(context.Background(), rates.Actor{ID: "u-op"}, rates.ShippingRequest{Currency: "USD",
			Zones: []rates.Zone{{ID: "us", Areas: []rates.Area{{Country: "US"}}, Rates: []rates.Rate{
				{Method: "standard", Kind: "flat", Price: ptr(usd(700))},
				{Method: "express", Kind: "flat", Price: ptr(usd(1500))},
			}}}}); err != nil {
			t.Fatal(err)
		}
		r = alice.Do("GET", "/api/v1/carts/"+cart+"/shipping-methods?country=US&region=IL", nil)
		r.WantStatus(t, http.StatusOK)
		if r.Field("shipping_version") != float64(1) || fieldStr(r, "methods.1.method") != "express" || amount(r, "methods.1.price") != 1500 {
			t.Errorf("table methods: %s", r.Body)
		}
		if r := alice.Do("GET", "/api/v1/carts/"+cart+"/shipping-methods?country=FR", nil); len(r.Field("methods").([]any)) != 0 {
			t.Errorf("an address in no zone has methods: %s", r.Body)
		}
		fr := map[string]any{"name": "A", "line1": "1 rue", "city": "Paris", "region": "IDF", "postal_code": "75001", "country": "FR"}
		r = alice.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": fr})
		r.WantStatus(t, http.StatusUnprocessableEntity)
		if fieldStr(r, "code") != "shipping_unavailable" {
			t.Errorf("no zone: %s", r.Body)
		}
		r = alice.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": goodAddress, "shipping_method": "express"})
		r.WantStatus(t, http.StatusCreated)
		if amount(r, "shipping") != 1500 || amount(r, "total") != 2400 || r.Field("priced_with.shipping_version") != float64(1) {
			t.Errorf("express checkout: %s", r.Body)
		}
	})
}

// TestCouponLimitUnderConcurrency: a coupon limited to 10 uses, entered on
// 100 carts, 100 checkouts at once through the group-commit batcher:
// exactly 10 orders carry it, the others are coupon_exhausted with nothing
// reserved.
func TestCouponLimitUnderConcurrency(t *testing.T) {
	forEachPriced(t, func(t *testing.T, e *pricedEnv) { e.raceLimitedCoupon(t, false) })
}

// raceLimitedCoupon creates a coupon limited to 10 uses and 100 carts of
// one mug each (the code entered on each cart, or, atCheckout, given in
// each checkout's coupon_codes instead), checks all out at once through
// the group-commit batcher and asserts that exactly 10 orders were placed,
// carrying the coupon and its 10 redemptions, and that every other checkout
// was coupon_exhausted with nothing reserved.
func (e *pricedEnv) raceLimitedCoupon(t *testing.T, atCheckout bool) {
	ctx := context.Background()
	p := e.coupon("TEN", 1000, promotions.Limits{TotalUses: ptr(int64(10))}, promotions.Window{})
	e.setStock("MUG", 1000)
	var prepare func(tx *sqldb.Tx, caller Caller, cartID string) error
	req := CheckoutRequest{ShippingAddress: &usAddress}
	if atCheckout {
		req.CouponCodes = []string{"ten"}
	} else {
		prepare = func(tx *sqldb.Tx, caller Caller, cartID string) error {
			_, err := e.svc.AddCouponTx(ctx, tx, caller, cartID, "TEN")
			return err
		}
	}
	ok := e.raceCheckouts(t, 100, "MUG", customerN, prepare, req, "coupon_exhausted")
	if ok != 10 {
		t.Errorf("%d orders placed, want 10", ok)
	}
	if got := e.count("orders_orders", ""); got != 10 {
		t.Errorf("%d orders written, want 10", got)
	}
	if got := e.count("orders_orders", "discount = 90"); got != 10 {
		t.Errorf("%d orders with the coupon's 90 off, want 10", got)
	}
	if got := e.stock("MUG"); got != 1000-10 {
		t.Errorf("stock %d, want 990 (nothing reserved for the refused)", got)
	}
	if got := e.count("promotions_redemptions", "promotion_id = $1 AND code = 'TEN'", p.ID); got != 10 {
		t.Errorf("%d redemptions, want 10", got)
	}
	if got := e.count("promotions_counters", "id = $1 AND uses = 10", p.ID); got != 1 {
		t.Errorf("the coupon's counter is not at 10 uses")
	}
}

// usAddress is a shipping address the concurrency tests check out to.
var usAddress = Address{Name: "A", Line1: "1", City: "C", Region: "IL", PostalCode: "1", Country: "US"}

// customerN is the ith of many customers.
func customerN(i int) Caller { return Caller{CustomerID: "u-" + strconv.Itoa(i), Channel: "web"} }

// raceCheckouts makes n carts, the ith caller(i)'s, each holding one unit of
// sku (and whatever prepare adds in the cart's unit, when set), then checks
// them all out at once with req and returns how many orders were placed;
// every refusal must carry the code want.
func (e *pricedEnv) raceCheckouts(t *testing.T, n int, sku string, caller func(int) Caller,
	prepare func(tx *sqldb.Tx, caller Caller, cartID string) error, req CheckoutRequest, want errs.Code) int {
	t.Helper()
	ctx := context.Background()
	carts := make([]string, n)
	for i := range carts {
		if err := e.svc.write.Do(ctx, func(tx *sqldb.Tx) error {
			c, err := e.svc.CreateCartTx(ctx, tx, caller(i))
			if err == nil {
				_, err = e.svc.SetItemTx(ctx, tx, caller(i), c.ID, sku, 1)
			}
			if err == nil && prepare != nil {
				err = prepare(tx, caller(i), c.ID)
			}
			carts[i] = c.ID
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := range carts {
		wg.Go(func() {
			results[i] = e.svc.write.Do(ctx, func(tx *sqldb.Tx) error {
				_, err := e.svc.CheckoutTx(ctx, tx, caller(i), carts[i], req)
				return err
			})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range results {
		switch {
		case err == nil:
			ok++
		case errs.CodeOf(err) != want:
			t.Errorf("refusal %v (code %s), want %s", err, errs.CodeOf(err), want)
		}
	}
	return ok
}

func (e *pricedEnv) putRules(r compliance.Rules) {
	e.t.Helper()
	if _, err := e.rules.Put(context.Background(), compliance.Actor{ID: "u-op"}, r); err != nil {
		e.t.Fatal(err)
	}
}

var cnAddress = map[string]any{"name": "Li Lei", "line1": "1 Road", "city": "Shanghai", "region": "SH",
	"postal_code": "200000", "country": "CN"}

func TestRegionRules(t *testing.T) {
	forEachPriced(t, func(t *testing.T, e *pricedEnv) {
		e.cat.set(Variant{SKU: "TEA", ProductID: "p-tea", Title: "Tea", Price: money.MustNew(300000, "CNY"), Sellable: true})
		e.cat.set(Variant{SKU: "WINE", ProductID: "p-wine", Title: "Wine", Price: money.MustNew(1000, "CNY"), Sellable: true})
		e.setStock("TEA", 100)
		e.setStock("WINE", 100)
		e.putRules(compliance.Rules{
			Restrictions: []compliance.Restriction{{ID: "cn-no-wine", Place: compliance.Place{Country: "CN"}, ProductIDs: []string{"p-wine"}}},
			Limits: []compliance.Limit{{ID: "cn-cross-border", Place: compliance.Place{Country: "CN"}, Currency: "CNY",
				PerOrder: 500000, PerYear: 2600000}},
			Identity: []compliance.IdentityRule{{ID: "cn-real-name", Place: compliance.Place{Country: "CN"}}},
		})
		id := map[string]any{"type": "national_id", "number": "11010519491231002X", "name": "Li Lei"}
		cases := []struct {
			name  string
			lines []any
			body  map[string]any
			code  string
		}{
			{"restricted", []any{"WINE", 1}, map[string]any{"shipping_address": cnAddress, "identity": id}, "region_restricted"},
			{"over per order", []any{"TEA", 2}, map[string]any{"shipping_address": cnAddress, "identity": id}, "limit_exceeded"},
			{"identity missing", []any{"TEA", 1}, map[string]any{"shipping_address": cnAddress}, "identity_required"},
			{"identity invalid", []any{"TEA", 1}, map[string]any{"shipping_address": cnAddress,
				"identity": map[string]any{"type": "national_id", "number": "110105194912310021", "name": "Li"}}, "validation_failed"},
		}
		alice := e.as("alice")
		for _, c := range cases {
			cart := e.cartWith(alice, c.lines...)
			for _, step := range []string{"quote", "checkout"} {
				r := alice.Do("POST", "/api/v1/carts/"+cart+"/"+step, c.body)
				r.WantStatus(t, http.StatusUnprocessableEntity)
				if got := fieldStr(r, "code"); got != c.code {
					t.Errorf("%s %s: code %s, want %s (%s)", c.name, step, got, c.code, r.Body)
				}
			}
		}
		if n := e.count("orders_orders", ""); n != 0 {
			t.Fatalf("%d orders written on refusals", n)
		}
		if n := e.count("compliance_spent", ""); n != 0 {
			t.Fatalf("%d counters written on refusals", n)
		}
		cart := e.cartWith(alice, "TEA", 1)
		q := alice.Do("POST", "/api/v1/carts/"+cart+"/quote", map[string]any{"shipping_address": cnAddress, "identity": id})
		q.WantStatus(t, http.StatusOK)
		if amount(q, "total") != 300000 || q.Field("priced_with.rules_version") != float64(1) {
			t.Errorf("quote: %s", q.Body)
		}
		r := alice.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": cnAddress, "identity": id})
		r.WantStatus(t, http.StatusCreated)
		if got := fieldStr(r, "identity.masked"); got != "**************002X" {
			t.Errorf("masked %s", got)
		}
		var stored, hash string
		e.db.Reader().QueryRow(`SELECT identity, identity_hash FROM orders_orders WHERE id = $1`, fieldStr(r, "id")).Scan(&stored, &hash)
		if len(hash) != 64 || containsStr(stored, "11010519491231") {
			t.Errorf("identity stored %s hash %q", stored, hash)
		}
		if v := r.Field("priced_with.rules_version"); v != float64(1) {
			t.Errorf("rules version %v", v)
		}
	})
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestYearlyLimitUnderConcurrency: one customer, 20 checkouts at once, room
// for 5 in the year: exactly 5 orders, the counter at the limit.
func TestYearlyLimitUnderConcurrency(t *testing.T) {
	forEachPriced(t, func(t *testing.T, e *pricedEnv) {
		e.cat.set(Variant{SKU: "TEA", ProductID: "p-tea", Title: "Tea", Price: money.MustNew(100000, "CNY"), Sellable: true})
		e.setStock("TEA", 1000)
		e.putRules(compliance.Rules{Limits: []compliance.Limit{{ID: "cn", Place: compliance.Place{Country: "CN"}, Currency: "CNY",
			PerOrder: 500000, PerYear: 550000}}})
		alice := func(int) Caller { return Caller{CustomerID: "u-alice", Channel: "web"} }
		addr := Address{Name: "Li", Line1: "1", City: "SH", Region: "SH", PostalCode: "1", Country: "CN"}
		ok := e.raceCheckouts(t, 20, "TEA", alice, nil, CheckoutRequest{ShippingAddress: &addr}, errs.CodeLimitExceeded)
		var spent int64
		e.db.Reader().QueryRow(`SELECT spent FROM compliance_spent WHERE customer_id = 'u-alice'`).Scan(&spent)
		// Each order is 100000 (the flat shipping is free over 5000).
		if ok != 5 || spent != 5*100000 {
			t.Errorf("%d orders, spent %d; want 5 and %d", ok, spent, 5*100000)
		}
	})
}
