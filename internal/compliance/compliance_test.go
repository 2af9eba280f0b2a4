package compliance

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
)

var cnRules = map[string]any{
	"restrictions": []any{map[string]any{"id": "cn-no-wine", "place": map[string]any{"country": "CN"}, "product_ids": []string{"p-wine"}}},
	"limits": []any{map[string]any{"id": "cn-cross-border", "place": map[string]any{"country": "CN"}, "currency": "CNY",
		"per_order": 500000, "per_year": 2600000}},
	"identity": []any{map[string]any{"id": "cn-real-name", "place": map[string]any{"country": "CN"}}},
}

func TestRulesRoutes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		op := e.staff("op@example.com", "operator")
		cust := e.customer("c@example.com")
		cust.Do("PUT", "/api/v1/admin/compliance/rules", cnRules).WantStatus(t, http.StatusForbidden)
		e.c.Do("GET", "/api/v1/admin/compliance/rules", nil).WantStatus(t, http.StatusUnauthorized)

		r := op.Do("GET", "/api/v1/admin/compliance/rules", nil)
		r.WantStatus(t, http.StatusOK)
		if r.Field("version") != float64(0) {
			t.Fatalf("no rules yet: %s", r.Body)
		}
		r = op.Do("PUT", "/api/v1/admin/compliance/rules", cnRules)
		r.WantStatus(t, http.StatusOK)
		if r.Field("version") != float64(1) {
			t.Fatalf("first save: %s", r.Body)
		}
		if n := e.count("audit_log", "action = 'compliance.rules_updated'"); n != 1 {
			t.Errorf("%d audit entries", n)
		}
		if n := e.count("outbox", "type = 'compliance.updated'"); n != 1 {
			t.Errorf("%d compliance.updated events", n)
		}

		bad := []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"unknown product", map[string]any{"restrictions": []any{map[string]any{"id": "x", "place": map[string]any{"country": "CN"},
				"product_ids": []string{"p-none"}}}}, "restrictions[0].product_ids[0]"},
			{"bad country", map[string]any{"identity": []any{map[string]any{"id": "x", "place": map[string]any{"country": "C1"}}}},
				"identity[0].place.country"},
			{"no bound", map[string]any{"limits": []any{map[string]any{"id": "x", "place": map[string]any{"country": "CN"}, "currency": "CNY"}}},
				"limits[0]"},
			{"bad currency", map[string]any{"limits": []any{map[string]any{"id": "x", "place": map[string]any{"country": "CN"},
				"currency": "ZZZ", "per_order": 1}}}, "limits[0].currency"},
			{"duplicate id", map[string]any{"identity": []any{map[string]any{"id": "x", "place": map[string]any{"country": "CN"}},
				map[string]any{"id": "x", "place": map[string]any{"country": "HK"}}}}, "identity[1].id"},
		}
		for _, c := range bad {
			r := op.Do("PUT", "/api/v1/admin/compliance/rules", c.body)
			r.WantStatus(t, http.StatusUnprocessableEntity)
			if got := r.Field("errors.0.field"); got != c.field {
				t.Errorf("%s: field %v, want %s (%s)", c.name, got, c.field, r.Body)
			}
		}
		op.Do("PUT", "/api/v1/admin/compliance/rules", map[string]any{"limits": []any{}, "extra": 1}).WantStatus(t, http.StatusBadRequest)
		if r := op.Do("GET", "/api/v1/admin/compliance/rules", nil); r.Field("version") != float64(1) {
			t.Errorf("a refused save changed the version: %s", r.Body)
		}
	})
}

func (e *env) put(t *testing.T) {
	t.Helper()
	if _, err := e.svc.Put(context.Background(), Actor{ID: "op"}, Rules{
		Restrictions: []Restriction{{ID: "cn-no-wine", Place: Place{Country: "CN"}, CategoryIDs: []string{"c-wine"}}},
		Limits:       []Limit{{ID: "cn", Place: Place{Country: "CN"}, Currency: "CNY", PerOrder: 500000, PerYear: 2600000}},
		Identity:     []IdentityRule{{ID: "cn-id", Place: Place{Country: "CN", Region: "SH"}}},
	}); err != nil {
		t.Fatal(err)
	}
}

func TestDecide(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		e.put(t)
		ctx := context.Background()
		tea := []Line{{SKU: "TEA", ProductID: "p-tea"}}
		cases := []struct {
			name string
			cart Cart
			code errs.Code
		}{
			{"fine", Cart{CustomerID: "u", Country: "CN", Region: "BJ", Currency: "CNY", Amount: 100000, Lines: tea}, ""},
			{"category restricted", Cart{CustomerID: "u", Country: "CN", Currency: "CNY", Amount: 1,
				Lines: []Line{{SKU: "W", ProductID: "p-x", CategoryIDs: []string{"c-wine"}}}}, errs.CodeRegionRestricted},
			{"elsewhere unrestricted", Cart{CustomerID: "u", Country: "FR", Currency: "CNY", Amount: 900000,
				Lines: []Line{{SKU: "W", CategoryIDs: []string{"c-wine"}}}}, ""},
			{"per order", Cart{CustomerID: "u", Country: "CN", Currency: "CNY", Amount: 500001, Lines: tea}, errs.CodeLimitExceeded},
			{"guest per order", Cart{Country: "CN", Currency: "CNY", Amount: 500001, Lines: tea}, errs.CodeLimitExceeded},
			{"other currency", Cart{CustomerID: "u", Country: "CN", Currency: "USD", Amount: 900000, Lines: tea}, ""},
			{"region identity", Cart{CustomerID: "u", Country: "CN", Region: "SH", Currency: "CNY", Amount: 1, Lines: tea}, CodeIdentityRequired},
			{"region identity given", Cart{CustomerID: "u", Country: "CN", Region: "sh", Currency: "CNY", Amount: 1, Lines: tea,
				IdentityGiven: true}, ""},
		}
		for _, c := range cases {
			err := e.svc.write.Do(ctx, func(tx *sqldb.Tx) error { _, err := e.svc.CheckTx(ctx, tx, c.cart); return err })
			if got := errs.CodeOf(err); err != nil && got != c.code || err == nil && c.code != "" {
				t.Errorf("%s: %v, want %q", c.name, err, c.code)
			}
		}
		if n := e.count("compliance_spent", ""); n != 0 {
			t.Errorf("CheckTx wrote %d counters", n)
		}
	})
}

// TestYearlyLimitConcurrentAndReleased: 20 orders of 200000 at once
// against 2600000 a year with 1500000 spent (three orders): exactly 5 are counted; a
// cancelled one gives its share back once (the consumer, twice).
func TestYearlyLimitConcurrentAndReleased(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		e.put(t)
		ctx := context.Background()
		cart := Cart{CustomerID: "u", Country: "CN", Currency: "CNY", Amount: 500000, Lines: []Line{{SKU: "T", ProductID: "p-tea"}}}
		for i := range 3 {
			if err := e.svc.write.Do(ctx, func(tx *sqldb.Tx) error {
				_, err := e.svc.CountTx(ctx, tx, "o-first-"+strconv.Itoa(i), cart)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		cart.Amount = 200000
		var wg sync.WaitGroup
		errsOf := make([]error, 20)
		for i := range errsOf {
			wg.Go(func() {
				errsOf[i] = e.svc.write.Do(ctx, func(tx *sqldb.Tx) error {
					_, err := e.svc.CountTx(ctx, tx, "o-"+strconv.Itoa(i), cart)
					return err
				})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errsOf {
			if err == nil {
				ok++
			} else if errs.CodeOf(err) != errs.CodeLimitExceeded {
				t.Errorf("refusal %v", err)
			}
		}
		spent := func() int64 {
			var s int64
			e.db.Reader().QueryRow(`SELECT spent FROM compliance_spent WHERE customer_id = 'u'`).Scan(&s)
			return s
		}
		if ok != 5 || spent() != 2500000 {
			t.Fatalf("%d counted, spent %d; want 5, 2500000", ok, spent())
		}
		h := e.svc.OrderConsumer().Handle
		for range 2 {
			if err := e.svc.write.Do(ctx, func(tx *sqldb.Tx) error {
				return h(ctx, tx, event.Envelope{Type: EventOrderCancelled, AggregateID: "o-first-0"})
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.svc.write.Do(ctx, func(tx *sqldb.Tx) error {
			return h(ctx, tx, event.Envelope{Type: "order.paid", AggregateID: "o-0"})
		}); err != nil {
			t.Fatal(err)
		}
		if spent() != 2000000 {
			t.Errorf("after the release: spent %d, want 2000000", spent())
		}
	})
}
