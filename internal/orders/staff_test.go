package orders

import (
	"context"
	"net/http"
	"testing"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web/webtest"
)

// TestStaffAndPages: staff cancel any order (the event says by staff);
// once shipped an order cannot be cancelled; lists page newest first.
func TestStaffAndPages(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		var ids []string
		for range 3 {
			ids = append(ids, e.placeGo(1).ID)
			e.clock.Advance(time.Millisecond)
		}
		alice := e.as("alice")
		r := alice.Do("GET", "/api/v1/orders?limit=2", nil)
		cur, _ := r.Field("next_cursor").(string)
		if fieldStr(r, "items.0.id") != ids[2] || fieldStr(r, "items.1.id") != ids[1] || cur == "" {
			t.Fatalf("page 1: %s", r.Body)
		}
		r = alice.Do("GET", "/api/v1/orders?limit=2&cursor="+cur, nil)
		if fieldStr(r, "items.0.id") != ids[0] || r.Field("items.1") != nil || r.Field("next_cursor") != nil {
			t.Fatalf("page 2: %s", r.Body)
		}
		webtest.AssertProblem(t, alice.Do("GET", "/api/v1/orders?cursor=bogus", nil), http.StatusUnprocessableEntity, "validation_failed")

		webtest.AssertProblem(t, e.as("bob").Do("POST", "/api/v1/orders/"+ids[0]+"/cancel", nil), http.StatusNotFound, "not_found")
		r = e.as("op").Do("POST", "/api/v1/admin/orders/"+ids[0]+"/cancel", nil)
		if r.Status != http.StatusOK || fieldStr(r, "status") != "cancelled" {
			t.Fatalf("staff cancel: %d %s", r.Status, r.Body)
		}
		if d := e.outboxData(ids[0], "order.cancelled"); d["by"] != "staff" || d["was_paid"] != false {
			t.Fatalf("order.cancelled: %v", d)
		}
		if _, err := e.db.Writer().Exec(`UPDATE orders_orders SET status = 'shipped', fulfillment_status = 'shipped' WHERE id = $1`, ids[1]); err != nil {
			t.Fatal(err)
		}
		webtest.AssertProblem(t, alice.Do("POST", "/api/v1/orders/"+ids[1]+"/cancel", nil), http.StatusConflict, "invalid_transition")
		webtest.AssertProblem(t, e.as("op").Do("POST", "/api/v1/admin/orders/"+ids[1]+"/cancel", nil), http.StatusConflict, "invalid_transition")
		e.as("op").Do("GET", "/api/v1/admin/orders/"+ids[1], nil).WantStatus(t, http.StatusOK)
		webtest.AssertProblem(t, e.as("op").Do("GET", "/api/v1/admin/orders/nope", nil), http.StatusNotFound, "not_found")
	})
}

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

// TestPrivacy: the export holds the customer's orders only; erasure
// anonymises their shipping addresses and keeps the accounting facts.
func TestPrivacy(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		mine := e.placeGo(2)
		bobs := e.placed(e.as("bob"), e.cartWith(e.as("bob"), "MUG", 1))
		got, err := e.svc.export(ctx, "u-alice")
		if err != nil {
			t.Fatal(err)
		}
		list := got.([]Order)
		if len(list) != 1 || list[0].ID != mine.ID || list[0].ShippingAddress.Name != "A" || len(list[0].Lines) != 1 {
			t.Fatalf("export: %+v", list)
		}
		if err := e.db.InTx(ctx, func(tx *sqldb.Tx) error { return e.svc.erase(ctx, tx, "u-alice") }); err != nil {
			t.Fatal(err)
		}
		after, err := e.svc.Get(ctx, Caller{}, mine.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		a := after.ShippingAddress
		if a != (Address{Name: erasedName, Region: "R", Country: "US"}) {
			t.Fatalf("erased address: %+v", a)
		}
		if after.Total != mine.Total || after.Status != mine.Status || len(after.Lines) != 1 || e.count("orders_timeline", "order_id = $1", mine.ID) != 1 {
			t.Fatalf("accounting facts changed: %+v", after)
		}
		b, err := e.svc.Get(ctx, Caller{}, bobs, true)
		if err != nil || b.ShippingAddress.Name != "Alice A" {
			t.Fatalf("another customer's order was erased: %+v, %v", b.ShippingAddress, err)
		}
	})
}

// TestUnwired: without a Catalog and Stock (a process not wired with the
// catalog and inventory modules) empty carts still work, and what needs
// them is 503 unavailable, not 500.
func TestUnwired(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite, sources()...)
	svc := New(module.Platform{DB: db, Write: db}, Deps{}, Config{})
	ctx := context.Background()
	c := Caller{CustomerID: "u-alice"}
	var cart Cart
	if err := db.Do(ctx, func(tx *sqldb.Tx) (err error) { cart, err = svc.CreateCartTx(ctx, tx, c); return err }); err != nil {
		t.Fatal(err)
	}
	if cart.Total.Currency() != "USD" || len(cart.Lines) != 0 {
		t.Fatalf("empty cart: %+v", cart)
	}
	err := db.Do(ctx, func(tx *sqldb.Tx) error { _, err := svc.SetItemTx(ctx, tx, c, cart.ID, "MUG", 1); return err })
	if !errs.Is(err, errs.Unavailable) {
		t.Fatalf("set item without a catalog: %v, want unavailable", err)
	}
	if _, err := (unavailable{}).VariantsTx(ctx, nil, nil); !errs.Is(err, errs.Unavailable) {
		t.Fatalf("catalog: %v", err)
	}
	if err := (unavailable{}).ReserveTx(ctx, nil, "", "", nil, 0); !errs.Is(err, errs.Unavailable) {
		t.Fatalf("stock: %v", err)
	}
}
