package orders

import (
	"testing"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web/webtest"
)

// TestOpenAPI: the routes' OpenAPI document is valid and the answers of a
// journey fit their documented schemas.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t, sqldbtest.Open(t, sqldb.SQLite, sources()...))
	spec := webtestCheck(t, e)
	alice := e.as("alice")
	r := alice.Do("POST", "/api/v1/carts", nil)
	spec.ValidateResponse(t, "POST", "/api/v1/carts", r)
	cart := r.Field("id").(string)
	r = alice.Do("POST", "/api/v1/carts/"+cart+"/items", map[string]any{"sku": "MUG", "quantity": 1})
	spec.ValidateResponse(t, "POST", "/api/v1/carts/{id}/items", r)
	r = alice.Do("POST", "/api/v1/carts/"+cart+"/checkout", map[string]any{"shipping_address": goodAddress})
	spec.ValidateResponse(t, "POST", "/api/v1/carts/{id}/checkout", r)
	id := r.Field("id").(string)
	spec.ValidateResponse(t, "GET", "/api/v1/orders/{id}", alice.Do("GET", "/api/v1/orders/"+id, nil))
	spec.ValidateResponse(t, "POST", "/api/v1/orders/{id}/pay", alice.Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_decline"}))
	spec.ValidateResponse(t, "GET", "/api/v1/orders", alice.Do("GET", "/api/v1/orders", nil))
	spec.ValidateResponse(t, "GET", "/api/v1/orders/{id}/events", alice.Do("GET", "/api/v1/orders/"+id+"/events", nil))
	r = e.as("op").Do("GET", "/api/v1/admin/orders?q=20300102-&channel=web&payment_status=unpaid&created_from=2030-01-02T00:00:00Z&created_to=2030-01-03T00:00:00Z", nil)
	spec.ValidateResponse(t, "GET", "/api/v1/admin/orders", r)
	if r.Field("items.0.id") != id {
		t.Fatalf("admin list by number prefix: %s", r.Body)
	}
	if r := e.as("op").Do("GET", "/api/v1/admin/orders?created_to=2030-01-02T00:00:00Z", nil); r.Field("items.0") != nil {
		t.Fatalf("created_to: %s", r.Body)
	}
}

func webtestCheck(t *testing.T, e *env) *webtest.Spec { return webtest.CheckOpenAPI(t, e.rt) }
