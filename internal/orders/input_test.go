package orders

import (
	"net/http"
	"testing"

	"mercato/internal/platform/web/webtest"
)

// TestBadInput: each bad request is answered with its status and stable
// code, and nothing is written: no order, no event, no stock taken, the
// cart as it was.
func TestBadInput(t *testing.T) {
	addr := func(change map[string]any) map[string]any {
		a := map[string]any{}
		for k, v := range goodAddress {
			a[k] = v
		}
		for k, v := range change {
			if v == nil {
				delete(a, k)
			} else {
				a[k] = v
			}
		}
		return a
	}
	cases := []struct {
		name   string
		path   string // after /api/v1/carts/{id}
		body   any
		empty  bool // on an empty cart
		status int
		code   string
		field  string
	}{
		{"quantity 0", "/items", map[string]any{"sku": "MUG", "quantity": 0}, false, 422, "validation_failed", "quantity"},
		{"quantity 10001", "/items", map[string]any{"sku": "MUG", "quantity": 10001}, false, 422, "validation_failed", "quantity"},
		{"negative quantity", "/items", map[string]any{"sku": "MUG", "quantity": -1}, false, 422, "validation_failed", "quantity"},
		{"unknown sku", "/items", map[string]any{"sku": "NOPE", "quantity": 1}, false, 422, "unknown_sku", "sku"},
		{"not sellable", "/items", map[string]any{"sku": "OLD", "quantity": 1}, false, 422, "not_sellable", "sku"},
		{"other currency", "/items", map[string]any{"sku": "EUR-1", "quantity": 1}, false, 422, "currency_mismatch", "sku"},
		{"client price", "/items", map[string]any{"sku": "MUG", "quantity": 1, "unit_price": 1}, false, 400, "malformed_request", ""},
		{"quantity as text", "/items", `{"sku":"MUG","quantity":"2"}`, false, 422, "validation_failed", "quantity"},
		{"sku too long", "/items", map[string]any{"sku": string(make([]byte, 65)), "quantity": 1}, false, 422, "validation_failed", "sku"},
		{"empty cart", "/checkout", map[string]any{"shipping_address": goodAddress}, true, 422, "cart_empty", "lines"},
		{"no address", "/checkout", map[string]any{}, false, 422, "validation_failed", "shipping_address"},
		{"address without city", "/checkout", map[string]any{"shipping_address": addr(map[string]any{"city": nil})}, false, 422, "validation_failed", "shipping_address.city"},
		{"country not ISO", "/checkout", map[string]any{"shipping_address": addr(map[string]any{"country": "usa"})}, false, 422, "validation_failed", "shipping_address.country"},
		{"address not an object", "/checkout", map[string]any{"shipping_address": "1 Main St"}, false, 422, "validation_failed", "shipping_address"},
		{"total sent", "/checkout", map[string]any{"shipping_address": goodAddress, "total": 1}, false, 400, "malformed_request", ""},
		{"unknown method", "/checkout", map[string]any{"shipping_address": goodAddress, "shipping_method": "express"}, false, 422, "validation_failed", "shipping_method"},
		{"out of stock", "/checkout", map[string]any{"shipping_address": goodAddress}, false, 409, "out_of_stock", ""},
	}
	forEachEngine(t, func(t *testing.T, e *env) {
		alice := e.as("alice")
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var cart string
				switch {
				case tc.empty:
					cart = e.cartWith(alice)
				case tc.code == "out_of_stock":
					cart = e.cartWith(alice, "TEE-M", 1, "MUG", 4) // 3 mugs in stock
				default:
					cart = e.cartWith(alice, "TEE-M", 1)
				}
				before := alice.Do("GET", "/api/v1/carts/"+cart, nil)
				orders, events, tee, mug := e.count("orders_orders", ""), e.count("outbox", ""), e.stock("TEE-M"), e.stock("MUG")
				r := alice.Do("POST", "/api/v1/carts/"+cart+tc.path, tc.body)
				p := webtest.AssertProblem(t, r, tc.status, tc.code)
				if tc.field != "" {
					webtest.AssertFieldError(t, p, tc.field)
				}
				if tc.code == "out_of_stock" && p.Detail != "out of stock: MUG" {
					t.Errorf("out_of_stock detail %q does not name the SKU", p.Detail)
				}
				if e.count("orders_orders", "") != orders || e.count("outbox", "") != events || e.stock("TEE-M") != tee || e.stock("MUG") != mug {
					t.Errorf("something was written")
				}
				after := alice.Do("GET", "/api/v1/carts/"+cart, nil)
				if string(after.Body) != string(before.Body) {
					t.Errorf("cart changed:\n%s\n%s", before.Body, after.Body)
				}
			})
		}
	})
}

// TestCartLimits: at most 100 lines; setting a line again replaces its
// quantity; an unavailable line is shown but not priced.
func TestCartLimits(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		alice := e.as("alice")
		cart := e.cartWith(alice)
		for i := range MaxCartLines {
			e.cat.set(Variant{SKU: "S" + itoa(i), Title: "x", Price: usd(1), Sellable: true})
			alice.Do("POST", "/api/v1/carts/"+cart+"/items", map[string]any{"sku": "S" + itoa(i), "quantity": 1}).WantStatus(t, http.StatusOK)
		}
		e.cat.set(Variant{SKU: "ONE-MORE", Title: "x", Price: usd(1), Sellable: true})
		webtest.AssertProblem(t, alice.Do("POST", "/api/v1/carts/"+cart+"/items", map[string]any{"sku": "ONE-MORE", "quantity": 1}), 422, "limit_exceeded")
		r := alice.Do("POST", "/api/v1/carts/"+cart+"/items", map[string]any{"sku": "S0", "quantity": 7})
		if r.Status != 200 || r.Field("item_count").(float64) != 106 {
			t.Fatalf("replace quantity: %d item_count %v", r.Status, r.Field("item_count"))
		}
		e.cat.set(Variant{SKU: "S1", Title: "x", Price: usd(1), Sellable: false})
		r = alice.Do("GET", "/api/v1/carts/"+cart, nil)
		if amount(r, "subtotal") != 105 || r.Field("lines.1.available") != false || r.Field("lines.1.unit_price") != nil {
			t.Fatalf("unavailable line: subtotal %d, %v", amount(r, "subtotal"), r.Field("lines.1"))
		}
		webtest.AssertProblem(t, alice.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": goodAddress}), 422, "not_sellable")
	})
}
