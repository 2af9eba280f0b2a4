package rates

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"mercato/internal/accounts"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web/webtest"
	"mercato/internal/pricing"
)

func eurJSON(n int64) map[string]any { return map[string]any{"amount": n, "currency": "EUR"} }

// table is a valid shipping table: France flat, Germany by weight.
func table() map[string]any {
	return map[string]any{"currency": "EUR", "zones": []any{
		map[string]any{"id": "fr", "areas": []any{map[string]any{"country": "FR"}}, "rates": []any{
			map[string]any{"method": "standard", "kind": "flat", "price": eurJSON(490), "free_from": eurJSON(5000)},
			map[string]any{"method": "express", "kind": "flat", "price": eurJSON(990)}}},
		map[string]any{"id": "de", "areas": []any{map[string]any{"country": "DE"}}, "rates": []any{
			map[string]any{"method": "standard", "kind": "weight", "brackets": []any{
				map[string]any{"from": 0, "to": 1000, "price": eurJSON(500)},
				map[string]any{"from": 1000, "price": eurJSON(900)}}}}},
	}}
}

func taxTable() map[string]any {
	return map[string]any{"regions": []any{
		map[string]any{"country": "FR", "inclusive": true, "rounding": "line", "shipping_taxable": true,
			"rates": []any{map[string]any{"class": "standard", "bp": 2000}, map[string]any{"class": "reduced", "bp": 550}}},
		map[string]any{"country": "US", "region": "CA", "rounding": "order", "rates": []any{map[string]any{"class": "standard", "bp": 725}}},
	}}
}

// Staff save and read both tables; every save is a version, audited and
// evented; bad tables are 422 naming the overlap and write nothing.
func TestRatesScenario(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		spec := webtest.CheckOpenAPI(t, e.router)
		opID, op := e.staff("op@example.com", accounts.RoleOperator)
		_, cs := e.staff("cs@example.com", accounts.RoleCustomerService)
		_, ann := e.customer("ann@example.com")
		const ship, tax = "/api/v1/admin/shipping-rates", "/api/v1/admin/tax-rates"

		webtest.AssertProblem(t, e.c.Do("PUT", ship, table()), http.StatusUnauthorized, "unauthorized")
		webtest.AssertProblem(t, ann.Do("PUT", ship, table()), http.StatusForbidden, "forbidden")
		webtest.AssertProblem(t, ann.Do("GET", tax, nil), http.StatusForbidden, "forbidden")
		webtest.AssertProblem(t, cs.Do("PUT", tax, taxTable()), http.StatusForbidden, "forbidden")

		// Nothing saved yet: version 0, empty.
		r := op.Do("GET", ship, nil)
		r.WantStatus(t, http.StatusOK)
		spec.ValidateResponse(t, "GET", ship, r)
		if r.Field("version") != float64(0) || len(r.Field("zones").([]any)) != 0 {
			t.Errorf("empty table: %s", r.Body)
		}

		bad := []struct {
			name, path string
			body       any
			fields     []string
			mention    string
		}{
			{"overlapping zones", ship, map[string]any{"currency": "EUR", "zones": []any{
				map[string]any{"id": "a", "areas": []any{map[string]any{"country": "US"}}, "rates": []any{}},
				map[string]any{"id": "b", "areas": []any{map[string]any{"country": "US", "region": "CA"}}, "rates": []any{}}}},
				[]string{"zones.1.areas.0"}, "zones.0.areas.0"},
			{"overlapping brackets", ship, map[string]any{"currency": "EUR", "zones": []any{
				map[string]any{"id": "a", "areas": []any{map[string]any{"country": "FR"}}, "rates": []any{
					map[string]any{"method": "standard", "kind": "weight", "brackets": []any{
						map[string]any{"from": 0, "to": 1000, "price": eurJSON(500)},
						map[string]any{"from": 500, "price": eurJSON(900)}}}}}}},
				[]string{"zones.0.rates.0.brackets.1"}, "brackets.0"},
			{"price in another currency", ship, map[string]any{"currency": "USD", "zones": []any{
				map[string]any{"id": "a", "areas": []any{map[string]any{"country": "FR"}}, "rates": []any{
					map[string]any{"method": "standard", "kind": "flat", "price": eurJSON(500)}}}}},
				[]string{"zones.0.rates.0.price"}, ""},
			{"unknown method and currency", ship, map[string]any{"currency": "XYZ", "zones": []any{
				map[string]any{"id": "a", "areas": []any{map[string]any{"country": "FR"}}, "rates": []any{
					map[string]any{"method": "drone", "kind": "flat", "price": eurJSON(500)}}}}},
				[]string{"currency"}, ""},
			{"a long zone id", ship, map[string]any{"currency": "EUR", "zones": []any{
				map[string]any{"id": strings.Repeat("z", 65), "areas": []any{map[string]any{"country": "FR"}}, "rates": []any{}}}},
				[]string{"zones.0.id"}, ""},
			{"one region twice", tax, map[string]any{"regions": []any{
				map[string]any{"country": "FR", "rounding": "line", "rates": []any{}},
				map[string]any{"country": "fr", "rounding": "order", "rates": []any{}}}},
				[]string{"regions.1"}, "regions.0"},
			{"a rate over 100 %", tax, map[string]any{"regions": []any{
				map[string]any{"country": "FR", "rounding": "line", "rates": []any{map[string]any{"class": "standard", "bp": 10001}}}}},
				[]string{"regions.0.rates.0.bp"}, ""},
			{"unknown rounding", tax, map[string]any{"regions": []any{
				map[string]any{"country": "FR", "rounding": "up", "rates": []any{}}}},
				[]string{"regions.0.rounding"}, ""},
		}
		for _, tc := range bad {
			p := webtest.AssertProblem(t, op.Do("PUT", tc.path, tc.body), http.StatusUnprocessableEntity, "validation_failed")
			for _, f := range tc.fields {
				webtest.AssertFieldError(t, p, f)
			}
			if tc.mention != "" && !strings.Contains(string(mustJSON(p.Errors)), tc.mention) {
				t.Errorf("%s: the problem does not name %s: %+v", tc.name, tc.mention, p.Errors)
			}
		}
		webtest.AssertProblem(t, op.Do("PUT", ship, map[string]any{"currency": "EUR", "zone": []any{}}), http.StatusBadRequest, "malformed_request")
		if n := e.count("rates_shipping_tables", "") + e.count("rates_tax_tables", "") + e.count("outbox", "aggregate_type = 'rates'"); n != 0 {
			t.Fatalf("refusals wrote %d rows", n)
		}

		// Two saves of the shipping table, one of the tax table.
		for v := 1; v <= 2; v++ {
			r = op.Do("PUT", ship, table())
			r.WantStatus(t, http.StatusOK)
			spec.ValidateResponse(t, "PUT", ship, r)
			if r.Field("version") != float64(v) || r.Field("updated_by") != opID {
				t.Errorf("save %d: %s", v, r.Body)
			}
		}
		r = op.Do("PUT", tax, taxTable())
		r.WantStatus(t, http.StatusOK)
		if r.Field("version") != float64(1) {
			t.Errorf("tax save: %s", r.Body)
		}
		r = op.Do("GET", tax, nil)
		r.WantStatus(t, http.StatusOK)
		spec.ValidateResponse(t, "GET", tax, r)
		if r.Field("regions.1.region") != "CA" || r.Field("regions.0.rates.1.bp") != float64(550) {
			t.Errorf("tax read: %s", r.Body)
		}
		r = op.Do("GET", ship, nil)
		if r.Field("version") != float64(2) || r.Field("zones.1.rates.0.brackets.1.price.amount") != float64(900) {
			t.Errorf("shipping read: %s", r.Body)
		}

		var got []string
		rows, err := e.db.Reader().Query(`SELECT type, aggregate_id, data FROM outbox WHERE aggregate_type = 'rates' ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var typ, id, data string
			if err := rows.Scan(&typ, &id, &data); err != nil {
				t.Fatal(err)
			}
			got = append(got, typ+" "+id+" "+data)
		}
		rows.Close()
		want := []string{`rates.updated shipping {"table":"shipping","version":1}`, `rates.updated shipping {"table":"shipping","version":2}`,
			`rates.updated tax {"table":"tax","version":1}`}
		if !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
		if n := e.count("audit_log", "target_type = 'rates' AND actor_id = $1", opID); n != 3 {
			t.Errorf("%d audit entries, want 3", n)
		}
	})
}

// The public shipping methods of an address, priced for a cart.
func TestShippingMethods(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		r := e.c.Do("GET", "/api/v1/shipping-methods?country=FR", nil)
		r.WantStatus(t, http.StatusOK)
		if r.Field("version") != float64(0) || len(r.Field("methods").([]any)) != 0 {
			t.Errorf("no table: %s", r.Body)
		}
		_, op := e.staff("op@example.com", accounts.RoleOperator)
		op.Do("PUT", "/api/v1/admin/shipping-rates", table()).WantStatus(t, http.StatusOK)
		cases := []struct {
			query string
			want  string // method:price, …
		}{
			{"country=fr&subtotal=1000", "standard:490,express:990"},
			{"country=FR&subtotal=5000", "standard:0,express:990"},
			{"country=DE&weight_grams=999", "standard:500"},
			{"country=DE&weight_grams=1000", "standard:900"},
			{"country=IT", ""},
		}
		for _, tc := range cases {
			r := e.c.Do("GET", "/api/v1/shipping-methods?"+tc.query, nil)
			r.WantStatus(t, http.StatusOK)
			var m Methods
			r.Decode(t, &m)
			var parts []string
			for _, o := range m.Methods {
				parts = append(parts, fmt.Sprintf("%s:%d", o.Method, o.Price.Amount()))
			}
			if got := strings.Join(parts, ","); got != tc.want || m.Version != 1 || m.Currency != "EUR" {
				t.Errorf("%s: %s (v%d %s), want %s", tc.query, got, m.Version, m.Currency, tc.want)
			}
		}
		for _, q := range []string{"", "country=FRA", "country=FR&subtotal=-1", "country=FR&weight_grams=x"} {
			webtest.AssertProblem(t, e.c.Do("GET", "/api/v1/shipping-methods?"+q, nil), http.StatusUnprocessableEntity, "validation_failed")
		}
	})
}

// CurrentTx decodes a table once per version; a save that rolls back
// leaves the cache untouched, one that commits is seen at once.
func TestCurrentCache(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		by := Actor{ID: "s-1"}
		var ship ShippingRequest
		decodeInto(t, table(), &ship)
		var tax TaxRequest
		decodeInto(t, taxTable(), &tax)
		if _, err := e.svc.PutShipping(ctx, by, ship); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.PutTax(ctx, by, tax); err != nil {
			t.Fatal(err)
		}
		current := func() (pricing.ShippingTable, pricing.TaxTable) {
			var st pricing.ShippingTable
			var tt pricing.TaxTable
			if err := e.db.Do(ctx, func(tx *sqldb.Tx) (err error) { st, tt, err = e.svc.CurrentTx(ctx, tx); return err }); err != nil {
				t.Fatal(err)
			}
			return st, tt
		}
		for range 3 {
			st, tt := current()
			if st.Version != 1 || tt.Version != 1 || len(st.Zones) != 2 || tt.Regions[0].Rates[0].BP != 2000 {
				t.Fatalf("current: %+v %+v", st, tt)
			}
		}
		if n := e.loads(); n != 1 {
			t.Errorf("%d loads for three reads of one version, want 1", n)
		}
		// A save whose unit fails: the version it read in its unit is not cached.
		boom := errors.New("boom")
		one := ShippingRequest{Currency: "EUR", Zones: ship.Zones[:1]}
		err := e.db.Do(ctx, func(tx *sqldb.Tx) error {
			if _, err := e.svc.PutShippingTx(ctx, tx, by, one); err != nil {
				return err
			}
			st, _, err := e.svc.CurrentTx(ctx, tx)
			if err != nil || st.Version != 2 || len(st.Zones) != 1 {
				t.Errorf("inside the unit: %+v, %v", st, err)
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("unit: %v", err)
		}
		if st, _ := current(); st.Version != 1 || len(st.Zones) != 2 {
			t.Errorf("after a rolled-back save: %+v", st)
		}
		// A committed save is seen, and cached in turn.
		if _, err := e.svc.PutShipping(ctx, by, one); err != nil {
			t.Fatal(err)
		}
		before := e.loads()
		for range 2 {
			if st, tt := current(); st.Version != 2 || len(st.Zones) != 1 || tt.Version != 1 {
				t.Errorf("after a save: %+v", st)
			}
		}
		if n := e.loads() - before; n != 1 {
			t.Errorf("%d loads after the save, want 1", n)
		}
	})
}

// Saves at once each get their own version: none is lost.
func TestConcurrentSaves(t *testing.T) {
	const n = 12
	forEachEngine(t, func(t *testing.T, e *env) {
		var ship ShippingRequest
		decodeInto(t, table(), &ship)
		var wg sync.WaitGroup
		start := make(chan struct{})
		versions := make(chan int64, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				d, err := e.svc.PutShipping(context.Background(), Actor{ID: "s-1"}, ship)
				if err != nil {
					t.Errorf("PutShipping: %v", err)
					return
				}
				versions <- d.Version
			}()
		}
		close(start)
		wg.Wait()
		close(versions)
		var got []int64
		for v := range versions {
			got = append(got, v)
		}
		slices.Sort(got)
		for i, v := range got {
			if v != int64(i+1) {
				t.Fatalf("versions %v, want 1..%d", got, n)
			}
		}
		if len(got) != n || e.count("rates_shipping_tables", "") != n || e.count("outbox", "") != n {
			t.Errorf("%d saves, %d rows, %d events; want %d", len(got), e.count("rates_shipping_tables", ""), e.count("outbox", ""), n)
		}
	})
}
