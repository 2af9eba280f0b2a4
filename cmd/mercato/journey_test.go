package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"mercato/internal/platform/web/webtest"
)

// eventually polls get until ok holds of its answer, for at most a minute
// (effects that travel through the event stream; the bound is generous
// because CI shares two cores).
func eventually(t *testing.T, what string, get func() *webtest.Response, ok func(r *webtest.Response) bool) *webtest.Response {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r := get()
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened; last answer %d %s", what, r.Status, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestShopJourney walks the modules together through the real server on
// both engines (and both search indexes on PostgreSQL): staff list a product and stock it; a customer browses,
// fills a cart, checks out (stock reserved), pays (stock committed by the
// inventory consumer), reviews it as a verified purchase; a second order
// for more than is left is out of stock; a cancelled order gives its stock
// back, a paid one too.
func TestShopJourney(t *testing.T) {
	variants := engines(t)
	variants["postgres_search"] = func(t *testing.T) []string { // the index in the database
		return append(variants["postgres"](t), "--search", "postgres")
	}
	for name, args := range variants {
		t.Run(name, func(t *testing.T) {
			c, admin := startShop(t, nil, args(t)...)

			cat := admin.Do("POST", "/api/v1/admin/categories", map[string]any{"name": "Audio"})
			cat.WantStatus(t, http.StatusCreated)
			prod := admin.Do("POST", "/api/v1/admin/products", map[string]any{
				"title": "Wireless headphones", "description": "Over-ear, 30 hours.", "status": "active",
				"category_ids": []string{cat.Field("id").(string)},
				"variants":     []map[string]any{{"sku": "HP-1", "title": "Black", "price": map[string]any{"amount": 4999, "currency": "USD"}, "attributes": map[string]string{"colour": "black"}}},
			})
			prod.WantStatus(t, http.StatusCreated)
			productID := prod.Field("id").(string)
			admin.Do("PUT", "/api/v1/admin/inventory/HP-1", map[string]any{"on_hand": 3}).WantStatus(t, http.StatusOK)

			// The search index follows through the event stream: a misspelt
			// query finds the product, in stock once stock was put in.
			found := eventually(t, "the product searchable and in stock", func() *webtest.Response {
				return c.Do("GET", "/api/v1/products?q=wireles+headphnes&in_stock=true", nil)
			}, func(r *webtest.Response) bool { return r.Status == http.StatusOK && r.Field("items.0.id") == productID })
			if found.Field("facets.in_stock") == nil || found.Field("facets.categories.0.value") != cat.Field("id") {
				t.Errorf("search facets: %s", found.Body)
			}

			reg := c.Do("POST", "/api/v1/auth/register", map[string]string{"email": "ann@example.com", "password": "customer password 1", "name": "Ann"})
			reg.WantStatus(t, http.StatusCreated)
			ann := c.WithToken(reg.Field("token").(string))

			list := c.Do("GET", "/api/v1/products?category="+cat.Field("id").(string), nil)
			list.WantStatus(t, http.StatusOK)
			if got := list.Field("items.0.id"); got != productID {
				t.Fatalf("category list: first item %v, want %s: %s", got, productID, list.Body)
			}
			c.Do("GET", "/api/v1/products/"+productID, nil).WantStatus(t, http.StatusOK)

			order := checkout(t, ann, "HP-1", 2)
			if order.Field("status") != "pending_payment" || order.Field("total.amount") != float64(4999*2) {
				t.Fatalf("order: %s", order.Body)
			}
			orderID := order.Field("id").(string)
			stock := admin.Do("GET", "/api/v1/admin/inventory/HP-1", nil)
			if stock.Field("reserved") != float64(2) || stock.Field("available") != float64(1) {
				t.Fatalf("after checkout: %s", stock.Body)
			}

			paid := ann.Do("POST", "/api/v1/orders/"+orderID+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"})
			paid.WantStatus(t, http.StatusOK)
			if paid.Field("status") != "paid" || paid.Field("payment_status") != "paid" {
				t.Fatalf("pay: %s", paid.Body)
			}
			eventually(t, "stock committed on order.paid", func() *webtest.Response {
				return admin.Do("GET", "/api/v1/admin/inventory/HP-1", nil)
			}, func(r *webtest.Response) bool {
				return r.Field("on_hand") == float64(1) && r.Field("reserved") == float64(0)
			})

			// The sync monitor shows where the order's events stand.
			applied := func(r *webtest.Response, typ, consumer string) bool {
				events, _ := r.Field("events").([]any)
				for _, e := range events {
					e, _ := e.(map[string]any)
					cs, _ := e["consumers"].([]any)
					for _, c := range cs {
						if c, _ := c.(map[string]any); e["type"] == typ && c["consumer"] == consumer && c["status"] == "applied" {
							return true
						}
					}
				}
				return false
			}
			eventually(t, "order.paid applied by inventory in the sync view", func() *webtest.Response {
				return admin.Do("GET", "/api/v1/admin/orders/"+orderID+"/sync", nil)
			}, func(r *webtest.Response) bool { return applied(r, "order.paid", "inventory_orders") })
			webtest.AssertProblem(t, admin.Do("GET", "/api/v1/admin/orders/no-such-order/sync", nil), http.StatusNotFound, "not_found")

			rev := ann.Do("POST", "/api/v1/products/"+productID+"/reviews", map[string]any{"rating": 5, "title": "Great", "body": "Quiet and light."})
			rev.WantStatus(t, http.StatusCreated)
			if rev.Field("verified_purchase") != true {
				t.Errorf("review of a paid purchase not verified: %s", rev.Body)
			}
			eventually(t, "rating on the product", func() *webtest.Response {
				return c.Do("GET", "/api/v1/products/"+productID, nil)
			}, func(r *webtest.Response) bool { return r.Field("rating.count") == float64(1) })

			// Bob wants 2 of the 1 left: out of stock, nothing reserved.
			reg = c.Do("POST", "/api/v1/auth/register", map[string]string{"email": "bob@example.com", "password": "customer password 2", "name": "Bob"})
			reg.WantStatus(t, http.StatusCreated)
			bob := c.WithToken(reg.Field("token").(string))
			cart := bob.Do("POST", "/api/v1/carts", nil)
			cart.WantStatus(t, http.StatusCreated)
			cartID := cart.Field("id").(string)
			bob.Do("POST", "/api/v1/carts/"+cartID+"/items", map[string]any{"sku": "HP-1", "quantity": 2}).WantStatus(t, http.StatusOK)
			webtest.AssertProblem(t, bob.Do("POST", "/api/v1/carts/"+cartID+"/checkout", map[string]any{"shipping_address": address()}), http.StatusConflict, "out_of_stock")
			if r := admin.Do("GET", "/api/v1/admin/inventory/HP-1", nil); r.Field("reserved") != float64(0) {
				t.Fatalf("a refused checkout reserved stock: %s", r.Body)
			}

			// Bob takes the last one, then cancels: it comes back.
			second := checkout(t, bob, "HP-1", 1)
			bob.Do("POST", "/api/v1/orders/"+second.Field("id").(string)+"/cancel", nil).WantStatus(t, http.StatusOK)
			eventually(t, "stock released on order.cancelled", func() *webtest.Response {
				return admin.Do("GET", "/api/v1/admin/inventory/HP-1", nil)
			}, func(r *webtest.Response) bool {
				return r.Field("on_hand") == float64(1) && r.Field("reserved") == float64(0) && r.Field("available") == float64(1)
			})

			// Ann cancels her paid order before it ships: its units come
			// back on hand (and the payment is refunded).
			ann.Do("POST", "/api/v1/orders/"+orderID+"/cancel", nil).WantStatus(t, http.StatusOK)
			eventually(t, "a paid order's units back on order.cancelled", func() *webtest.Response {
				return admin.Do("GET", "/api/v1/admin/inventory/HP-1", nil)
			}, func(r *webtest.Response) bool {
				return r.Field("on_hand") == float64(3) && r.Field("reserved") == float64(0)
			})

			// Ann's order is hers: Bob gets 404.
			webtest.AssertProblem(t, bob.Do("GET", "/api/v1/orders/"+orderID, nil), http.StatusNotFound, "not_found")
			events := ann.Do("GET", "/api/v1/orders/"+orderID+"/events", nil)
			events.WantStatus(t, http.StatusOK)
			if events.Field("items.0.type") != "order.placed" || events.Field("items.1.type") != "order.paid" ||
				events.Field("items.2.type") != "order.cancelled" {
				t.Errorf("timeline: %s", events.Body)
			}
		})
	}
}

// checkout puts quantity of sku in a new cart of c and checks it out.
func checkout(t *testing.T, c *webtest.Client, sku string, quantity int) *webtest.Response {
	t.Helper()
	cart := c.Do("POST", "/api/v1/carts", nil)
	cart.WantStatus(t, http.StatusCreated)
	id := cart.Field("id").(string)
	c.Do("POST", "/api/v1/carts/"+id+"/items", map[string]any{"sku": sku, "quantity": quantity}).WantStatus(t, http.StatusOK)
	r := c.Do("POST", "/api/v1/carts/"+id+"/checkout", map[string]any{"shipping_address": address()}, fmt.Sprintf("Idempotency-Key: checkout-%s", id))
	r.WantStatus(t, http.StatusCreated)
	return r
}

func address() map[string]any {
	return map[string]any{"name": "Ann Lee", "line1": "1 Main St", "city": "Springfield", "region": "IL", "postal_code": "62701", "country": "US"}
}

// TestSearchReindex: `mercato search reindex` rebuilds the embedded index
// of a stopped server's data directory (the demo catalogue) and is refused
// beside a running server, whose index it cannot open.
func TestSearchReindex(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"MERCATO_DATA_DIR": dir}
	getenv := func(k string) string { return env[k] }
	ctx, stop := context.WithCancel(context.Background())
	var out, logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--log-level", "error", "--demo"}, getenv, &out, &logs)
	}()
	for !listenRE.MatchString(out.String()) {
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s%s", err, out.String(), logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	m := regexp.MustCompile(`demo catalogue: (\d+) products`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no demo catalogue line:\n%s", out.String())
	}
	if !regexp.MustCompile(`demo stock: [1-9]\d* SKUs stocked`).MatchString(out.String()) {
		t.Errorf("no demo stock line:\n%s", out.String())
	}
	var beside, besideErr syncBuffer
	if err := run(context.Background(), []string{"search", "reindex"}, getenv, &beside, &besideErr); !errors.Is(err, errDataDirInUse) {
		t.Errorf("reindex beside a running server: %v, want the data directory refused", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	var rout, rerr syncBuffer
	if err := run(context.Background(), []string{"search", "reindex"}, getenv, &rout, &rerr); err != nil {
		t.Fatalf("reindex: %v\n%s", err, rerr.String())
	}
	if want := "rebuilt: " + m[1] + " products"; !strings.Contains(rout.String(), want) {
		t.Errorf("reindex said %q, want %q", rout.String(), want)
	}
	if !strings.Contains(rerr.String(), "reindex: "+m[1]+"/"+m[1]+" products") {
		t.Errorf("no final progress line: %q", rerr.String())
	}
}
