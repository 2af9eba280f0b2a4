package channels

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"mercato/internal/platform/web/webtest"
)

func TestRegistry(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		op := e.c.WithToken(e.op)
		r := op.Do("POST", "/api/v1/admin/channels", map[string]string{"code": "amazon-eu", "name": "Amazon EU", "kind": "marketplace"})
		r.WantStatus(t, http.StatusCreated)
		if r.Field("code") != "amazon-eu" || r.Field("kind") != "marketplace" || r.Field("name") != "Amazon EU" {
			t.Fatalf("created %s", r.Body)
		}
		if evs := e.events("channel.created"); len(evs) != 1 || evs[0].AggregateID != "amazon-eu" || evs[0].Data["kind"] != "marketplace" {
			t.Fatalf("channel.created events %+v", evs)
		}
		webtest.AssertProblem(t, op.Do("POST", "/api/v1/admin/channels", map[string]string{"code": "amazon-eu", "name": "Again", "kind": "app"}),
			http.StatusConflict, "channel_exists")
		for _, tc := range []struct {
			name, field string
			body        map[string]string
		}{
			{"bad kind", "kind", map[string]string{"code": "x", "name": "X", "kind": "shop"}},
			{"bad code", "code", map[string]string{"code": "Has Space", "name": "X", "kind": "app"}},
			{"no name", "name", map[string]string{"code": "y", "name": " ", "kind": "app"}},
		} {
			p := webtest.AssertProblem(t, op.Do("POST", "/api/v1/admin/channels", tc.body), http.StatusUnprocessableEntity, "validation_failed")
			webtest.AssertFieldError(t, p, tc.field)
		}
		webtest.AssertProblem(t, op.Do("POST", "/api/v1/admin/channels", map[string]any{"code": "z", "name": "Z", "kind": "app", "extra": 1}),
			http.StatusBadRequest, "malformed_request")
		r = op.Do("GET", "/api/v1/admin/channels", nil)
		r.WantStatus(t, http.StatusOK)
		var page struct{ Items []Channel }
		r.Decode(t, &page)
		if len(page.Items) != 2 || page.Items[0].Code != "amazon-eu" || page.Items[1].Code != "web" {
			t.Fatalf("list %+v", page.Items)
		}
		webtest.AssertProblem(t, op.Do("POST", "/api/v1/admin/channels/nope/tokens", nil), http.StatusNotFound, "not_found")
		// A channel token holds no staff permission.
		tok := op.Do("POST", "/api/v1/admin/channels/amazon-eu/tokens", nil)
		tok.WantStatus(t, http.StatusCreated)
		webtest.AssertProblem(t, e.c.WithToken(tok.Field("token").(string)).Do("GET", "/api/v1/admin/channels", nil), http.StatusForbidden, "forbidden")
		if n := e.count("accounts_tokens", "channel = $1", "amazon-eu"); n != 1 {
			t.Fatalf("%d stored tokens, want 1", n)
		}
		if n := e.count("accounts_tokens", "token_hash = $1", tok.Field("token")); n != 0 {
			t.Fatal("the token is stored in clear")
		}
	})
}

func TestImport(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		tok := e.channel("amazon", "marketplace")
		ch := e.c.WithToken(tok)
		body := importBody("AMZ-1", line("TEE-M", 2, 1299), line("MUG", 1, 0))
		r := ch.Do("POST", "/api/v1/channels/amazon/orders", body)
		r.WantStatus(t, http.StatusCreated)
		if r.Field("channel") != "amazon" || r.Field("status") != "paid" || r.Field("payment_status") != "paid" {
			t.Fatalf("order %s", r.Body)
		}
		if r.Field("total.amount") != 2598.0 || r.Field("lines.0.unit_price.amount") != 1299.0 || r.Field("lines.1.unit_price.amount") != 0.0 {
			t.Fatalf("the channel's prices are not recorded as given: %s", r.Body)
		}
		id := r.Field("id").(string)
		if lv := e.level("TEE-M"); lv.Reserved != 2 || lv.Available != 8 {
			t.Fatalf("TEE-M %+v", lv)
		}
		placed := e.events("order.placed")
		if len(placed) != 1 || placed[0].AggregateID != id || placed[0].Data["channel"] != "amazon" || placed[0].Data["total"] != 2598.0 {
			t.Fatalf("order.placed %+v", placed)
		}
		if res := e.events("inventory.reserved"); len(res) != 1 || res[0].AggregateID != id {
			t.Fatalf("inventory.reserved %+v", res)
		}
		if paid := e.events("order.paid"); len(paid) != 1 || paid[0].Data["method"] != "channel:amazon" {
			t.Fatalf("order.paid %+v", paid)
		}

		// The same external_id again, even with other lines: 200, the same order, nothing reserved twice.
		for _, again := range []map[string]any{body, importBody("AMZ-1", line("MUG", 3, 1))} {
			r2 := ch.Do("POST", "/api/v1/channels/amazon/orders", again)
			r2.WantStatus(t, http.StatusOK)
			if r2.Field("id") != id || r2.Field("number") != r.Field("number") {
				t.Fatalf("repeat answered another order: %s", r2.Body)
			}
		}
		if lv := e.level("TEE-M"); lv.Reserved != 2 {
			t.Fatalf("reserved twice: %+v", lv)
		}
		if lv := e.level("MUG"); lv.Reserved != 1 {
			t.Fatalf("MUG %+v", lv)
		}
		if n := len(e.events("order.placed")); n != 1 {
			t.Fatalf("%d order.placed, want 1", n)
		}
		if n := e.count("orders_orders", "channel = $1", "amazon"); n != 1 {
			t.Fatalf("%d orders, want 1", n)
		}
		// The same external_id on another channel is another order.
		ebay := e.c.WithToken(e.channel("ebay", "marketplace"))
		ebay.Do("POST", "/api/v1/channels/ebay/orders", importBody("AMZ-1", line("TEE-M", 1, 1000))).WantStatus(t, http.StatusCreated)
	})
}

func TestImportRefusals(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		amazon := e.channel("amazon", "marketplace")
		ebay := e.channel("ebay", "marketplace")
		ch := e.c.WithToken(amazon)
		for _, tc := range []struct {
			name   string
			client *webtest.Client
			path   string
			body   any
			status int
			code   string
			field  string
		}{
			{"another channel's token", e.c.WithToken(ebay), "/api/v1/channels/amazon/orders", importBody("A", line("TEE-M", 1, 100)), 403, "forbidden", ""},
			{"a staff token", e.c.WithToken(e.admin), "/api/v1/channels/amazon/orders", importBody("A", line("TEE-M", 1, 100)), 403, "forbidden", ""},
			{"no token", e.c, "/api/v1/channels/amazon/orders", importBody("A", line("TEE-M", 1, 100)), 401, "unauthorized", ""},
			{"negative price", ch, "/api/v1/channels/amazon/orders", importBody("B", line("TEE-M", 1, -5)), 422, "validation_failed", "lines[0].unit_price"},
			{"fractional price", ch, "/api/v1/channels/amazon/orders", importBody("B", line("TEE-M", 1, 12.5)), 422, "validation_failed", ""},
			{"price as a string", ch, "/api/v1/channels/amazon/orders", importBody("B", line("TEE-M", 1, "12")), 422, "validation_failed", ""},
			{"no price", ch, "/api/v1/channels/amazon/orders", importBody("B", map[string]any{"sku": "TEE-M", "quantity": 1}), 422, "validation_failed", "lines[0].unit_price"},
			{"unknown SKU", ch, "/api/v1/channels/amazon/orders", importBody("C", line("TEE-M", 1, 100), line("NOPE", 1, 100)), 422, "unknown_sku", "lines[1].sku"},
			{"zero quantity", ch, "/api/v1/channels/amazon/orders", importBody("D", line("TEE-M", 0, 100)), 422, "validation_failed", "lines[0].quantity"},
			{"no lines", ch, "/api/v1/channels/amazon/orders", importBody("E"), 422, "validation_failed", "lines"},
			{"no external_id", ch, "/api/v1/channels/amazon/orders", importBody("", line("TEE-M", 1, 100)), 422, "validation_failed", "external_id"},
			{"shortage", ch, "/api/v1/channels/amazon/orders", importBody("F", line("MUG", 4, 100)), 409, "out_of_stock", ""},
			{"unknown field", ch, "/api/v1/channels/amazon/orders", map[string]any{"external_id": "G", "price_override": 1}, 400, "malformed_request", "price_override"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := webtest.AssertProblem(t, tc.client.Do("POST", tc.path, tc.body), tc.status, tc.code)
				if tc.field != "" {
					webtest.AssertFieldError(t, p, tc.field)
				}
			})
		}
		for _, sku := range []string{"TEE-M", "MUG"} {
			if lv := e.level(sku); lv.Reserved != 0 {
				t.Fatalf("%s reserved by a refused import: %+v", sku, lv)
			}
		}
		if n := len(e.events("order.placed")) + len(e.events("inventory.reserved")); n != 0 {
			t.Fatalf("%d events of refused imports", n)
		}
		if n := e.count("channels_imports", "1 = 1"); n != 0 {
			t.Fatalf("%d imports recorded", n)
		}
		// A refusal is not recorded: once fixed, the same external_id imports.
		ch.Do("POST", "/api/v1/channels/amazon/orders", importBody("C", line("TEE-M", 1, 100))).WantStatus(t, http.StatusCreated)
	})
}

// TestImportRacingDuplicates sends one external_id 10 times at once: one
// order, one 201 and nine 200 with the same order, one reservation.
func TestImportRacingDuplicates(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ch := e.c.WithToken(e.channel("amazon", "marketplace"))
		const n = 10
		var wg sync.WaitGroup
		res := make([]*webtest.Response, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res[i] = ch.Do("POST", "/api/v1/channels/amazon/orders", importBody("RACE-1", line("TEE-M", 3, 700)))
			}()
		}
		close(start)
		wg.Wait()
		created, ids := 0, map[any]bool{}
		for _, r := range res {
			switch r.Status {
			case http.StatusCreated:
				created++
			case http.StatusOK:
			default:
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			ids[r.Field("id")] = true
		}
		if created != 1 || len(ids) != 1 {
			t.Fatalf("%d created, %d distinct orders; want 1 and 1", created, len(ids))
		}
		if lv := e.level("TEE-M"); lv.Reserved != 3 {
			t.Fatalf("TEE-M %+v, want 3 reserved", lv)
		}
		if got := len(e.events("order.placed")); got != 1 {
			t.Fatalf("%d order.placed", got)
		}
		if got := e.count("orders_orders", "channel = $1", "amazon"); got != 1 {
			t.Fatalf("%d orders", got)
		}
	})
}

// TestQuota caps a channel at 4 units of TEE-M out of 10 on hand and races
// 8 imports of 1 unit each: exactly 4 are imported, 4 refused 409
// quota_exceeded with nothing reserved; the shop's own pool keeps the rest
// and a raised cap lets the channel import again.
func TestQuota(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ch := e.c.WithToken(e.channel("pos-1", "pos"))
		op := e.c.WithToken(e.op)
		r := op.Do("PUT", "/api/v1/admin/channels/pos-1/quotas/TEE-M", map[string]any{"units": 4})
		r.WantStatus(t, http.StatusOK)
		if r.Field("units") != 4.0 || r.Field("reserved") != 0.0 {
			t.Fatalf("quota %s", r.Body)
		}
		webtest.AssertProblem(t, op.Do("PUT", "/api/v1/admin/channels/pos-1/quotas/TEE-M", map[string]any{"units": -1}),
			http.StatusUnprocessableEntity, "validation_failed")
		webtest.AssertProblem(t, op.Do("PUT", "/api/v1/admin/channels/nope/quotas/TEE-M", map[string]any{"units": 1}),
			http.StatusNotFound, "not_found")
		const n = 8
		var wg sync.WaitGroup
		res := make([]*webtest.Response, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res[i] = ch.Do("POST", "/api/v1/channels/pos-1/orders", importBody(fmt.Sprint("POS-", i), line("TEE-M", 1, 1500)))
			}()
		}
		close(start)
		wg.Wait()
		ok, over := 0, 0
		for _, r := range res {
			switch {
			case r.Status == http.StatusCreated:
				ok++
			case r.Status == http.StatusConflict && r.Problem != nil && r.Problem.Code == "quota_exceeded":
				over++
			default:
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
		}
		if ok != 4 || over != 4 {
			t.Fatalf("%d imported, %d over the quota; want 4 and 4", ok, over)
		}
		if lv := e.level("TEE-M"); lv.Reserved != 4 || lv.Available != 6 {
			t.Fatalf("TEE-M %+v: the refused imports reserved", lv)
		}
		if got := len(e.events("order.placed")); got != 4 {
			t.Fatalf("%d order.placed, want 4", got)
		}
		// A line over the quota refuses the whole order; other SKUs are not capped.
		p := webtest.AssertProblem(t, ch.Do("POST", "/api/v1/channels/pos-1/orders", importBody("POS-B", line("MUG", 1, 900), line("TEE-M", 1, 1500))),
			http.StatusConflict, "quota_exceeded")
		webtest.AssertFieldError(t, p, "lines")
		if lv := e.level("MUG"); lv.Reserved != 0 {
			t.Fatalf("MUG %+v", lv)
		}
		ch.Do("POST", "/api/v1/channels/pos-1/orders", importBody("POS-C", line("MUG", 3, 900))).WantStatus(t, http.StatusCreated)
		// The shop's own pool is the rest: the quota caps the channel only.
		if lv := e.level("TEE-M"); lv.Available != 6 {
			t.Fatalf("TEE-M %+v", lv)
		}
		q := op.Do("PUT", "/api/v1/admin/channels/pos-1/quotas/TEE-M", map[string]any{"units": 5})
		q.WantStatus(t, http.StatusOK)
		if q.Field("reserved") != 4.0 {
			t.Fatalf("quota %s", q.Body)
		}
		ch.Do("POST", "/api/v1/channels/pos-1/orders", importBody("POS-B", line("TEE-M", 1, 1500))).WantStatus(t, http.StatusCreated)
		webtest.AssertProblem(t, op.Do("PUT", "/api/v1/admin/channels/pos-1/quotas/TEE-M", map[string]any{"units": 4}),
			http.StatusConflict, "quota_below_reserved")
		if evs := e.events("channel.quota_set"); len(evs) != 2 || evs[0].Data["units"] != 4.0 || evs[1].Data["units"] != 5.0 {
			t.Fatalf("channel.quota_set %+v", evs)
		}
	})
}
