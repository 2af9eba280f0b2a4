package main

import (
	"maps"
	"net/http"
	"testing"

	"mercato/internal/platform/web/webtest"
)

// The set-up every journey through the real server starts with: the
// bootstrap administrator logged in, products with stock, customers.

// journeyAdmin is the bootstrap administrator of the journeys.
var journeyAdmin = map[string]string{
	"MERCATO_BOOTSTRAP_ADMIN_EMAIL":    "root@example.com",
	"MERCATO_BOOTSTRAP_ADMIN_PASSWORD": "a very long admin password",
}

// startShop starts the server in-process with the bootstrap administrator
// (and env on top) and returns an anonymous client and the administrator's.
func startShop(t *testing.T, env map[string]string, args ...string) (c, admin *webtest.Client) {
	t.Helper()
	all := maps.Clone(journeyAdmin)
	maps.Copy(all, env)
	c, _ = startInProcess(t, all, args...)
	login := c.Do("POST", "/api/v1/auth/login", map[string]string{
		"email": journeyAdmin["MERCATO_BOOTSTRAP_ADMIN_EMAIL"], "password": journeyAdmin["MERCATO_BOOTSTRAP_ADMIN_PASSWORD"]})
	login.WantStatus(t, http.StatusOK)
	return c, c.WithToken(login.Field("token").(string))
}

// stockProduct creates an active product with one variant, sku priced at
// price US cents, and puts onHand units of it in stock.
func stockProduct(t *testing.T, admin *webtest.Client, title, sku string, price, onHand int) {
	t.Helper()
	admin.Do("POST", "/api/v1/admin/products", map[string]any{
		"title": title, "description": title + ".", "status": "active",
		"variants": []map[string]any{{"sku": sku, "title": title, "price": map[string]any{"amount": price, "currency": "USD"}}},
	}).WantStatus(t, http.StatusCreated)
	admin.Do("PUT", "/api/v1/admin/inventory/"+sku, map[string]any{"on_hand": onHand}).WantStatus(t, http.StatusOK)
}

// registerCustomer registers a customer and returns the customer's client
// and user id.
func registerCustomer(t *testing.T, c *webtest.Client, email, name string) (*webtest.Client, string) {
	t.Helper()
	reg := c.Do("POST", "/api/v1/auth/register", map[string]string{"email": email, "password": "a customer's long password", "name": name})
	reg.WantStatus(t, http.StatusCreated)
	return c.WithToken(reg.Field("token").(string)), reg.Field("user.id").(string)
}
