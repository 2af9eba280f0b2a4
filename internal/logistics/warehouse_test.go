package logistics

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

// warehouse registers warehouse code at location and returns its secret.
func (e *env) warehouse(code, location string) string {
	e.t.Helper()
	r := e.op.Do("POST", "/api/v1/admin/warehouses", map[string]any{"code": code, "name": "Warehouse " + code, "location": location})
	r.WantStatus(e.t, http.StatusCreated)
	s, _ := r.Field("secret").(string)
	if !strings.HasPrefix(s, WarehouseSecretPrefix) {
		e.t.Fatalf("registration: %s", r.Body)
	}
	return s
}

// signed is a warehouse update as the warehouse sends it.
type signed struct {
	id   string
	ts   int64
	body []byte
	sig  string
}

// sign signs body (JSON-encoded unless []byte) as update id at the test
// clock's now, under secret.
func (e *env) sign(secret, id string, body any) signed {
	e.t.Helper()
	b, ok := body.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(body); err != nil {
			e.t.Fatal(err)
		}
	}
	ts := e.clock.Now().Unix()
	sig, err := SignWarehouseUpdate(secret, id, ts, b)
	if err != nil {
		e.t.Fatal(err)
	}
	return signed{id: id, ts: ts, body: b, sig: sig}
}

// post sends a signed update of warehouse code.
func (e *env) post(code string, u signed) *webtest.Response {
	e.t.Helper()
	return e.c.Do("POST", "/api/v1/logistics/warehouses/"+code+"/updates", u.body,
		HeaderWebhookID+": "+u.id, HeaderWebhookTimestamp+": "+strconv.FormatInt(u.ts, 10), HeaderWebhookSignature+": "+u.sig)
}

// update signs and posts an update of warehouse code.
func (e *env) update(code, secret, id string, body any) *webtest.Response {
	e.t.Helper()
	return e.post(code, e.sign(secret, id, body))
}

// state is what a refused update must not change.
func (e *env) state() string {
	e.t.Helper()
	return fmt.Sprint(e.count(`SELECT count(*) FROM outbox`), e.count(`SELECT count(*) FROM logistics_shipments`),
		e.count(`SELECT count(*) FROM logistics_warehouse_updates`), e.count(`SELECT count(*) FROM inventory_ledger`),
		e.count(`SELECT count(*) FROM logistics_fulfilments WHERE picked_at IS NOT NULL OR packed_at IS NOT NULL`),
		e.count(`SELECT COALESCE(SUM(on_hand), 0) FROM inventory_stock`))
}

// TestWarehouseRegistration: staff with warehouses.manage register a
// warehouse at a known location and get its secret once; it is sealed at
// rest; a rotation's new secret verifies at once and the old one until the
// window closes.
func TestWarehouseRegistration(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		sec := e.warehouse("east", "default")
		var sealed string
		if err := e.db.Reader().QueryRow(`SELECT secret_sealed FROM logistics_warehouses WHERE code = 'east'`).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(sealed, strings.TrimPrefix(sec, WarehouseSecretPrefix)) {
			t.Fatal("the secret is stored in plain text")
		}
		for name, c := range map[string]struct {
			body   map[string]any
			status int
			code   string
		}{
			"taken code":       {map[string]any{"code": "east", "name": "E", "location": "default"}, http.StatusConflict, "warehouse_exists"},
			"bad code":         {map[string]any{"code": "East!", "name": "E", "location": "default"}, http.StatusUnprocessableEntity, "validation_failed"},
			"unknown location": {map[string]any{"code": "west", "name": "W", "location": "nowhere"}, http.StatusUnprocessableEntity, "validation_failed"},
			"no name":          {map[string]any{"code": "west", "name": "", "location": "default"}, http.StatusUnprocessableEntity, "validation_failed"},
		} {
			t.Run(name, func(t *testing.T) {
				webtest.AssertProblem(t, e.op.Do("POST", "/api/v1/admin/warehouses", c.body), c.status, c.code)
			})
		}
		webtest.AssertProblem(t, e.cs.Do("POST", "/api/v1/admin/warehouses", map[string]any{"code": "x", "name": "X", "location": "default"}),
			http.StatusForbidden, "forbidden")
		r := e.op.Do("GET", "/api/v1/admin/warehouses", nil)
		r.WantStatus(t, http.StatusOK)
		if r.Field("items.0.code") != "east" || r.Field("items.0.secret") != nil || strings.Contains(string(r.Body), sec) {
			t.Fatalf("list: %s", r.Body)
		}
		if r := e.op.Do("GET", "/api/v1/admin/warehouses/east", nil); r.Field("location") != "default" || r.Field("secret") != nil {
			t.Fatalf("get: %s", r.Body)
		}
		webtest.AssertProblem(t, e.op.Do("GET", "/api/v1/admin/warehouses/nope", nil), http.StatusNotFound, "not_found")

		id := e.paid(e.alice, "TEE", 1)
		rot := e.op.Do("POST", "/api/v1/admin/warehouses/east/rotate-secret", nil)
		rot.WantStatus(t, http.StatusOK)
		fresh, _ := rot.Field("secret").(string)
		if fresh == sec || !strings.HasPrefix(fresh, WarehouseSecretPrefix) {
			t.Fatalf("rotation: %s", rot.Body)
		}
		e.update("east", fresh, "u-new", map[string]any{"type": "picked", "order_id": id}).WantStatus(t, http.StatusOK)
		e.update("east", sec, "u-old", map[string]any{"type": "packed", "order_id": id}).WantStatus(t, http.StatusOK)
		e.clock.Advance(25 * time.Hour)
		webtest.AssertProblem(t, e.update("east", sec, "u-late", map[string]any{"type": "packed", "order_id": id}),
			http.StatusBadRequest, "invalid_signature")
		if n := e.count(`SELECT count(*) FROM audit_log WHERE action IN ('warehouse.created', 'warehouse.secret_rotated')`); n != 2 {
			t.Errorf("%d audit entries, want 2", n)
		}
	})
}

// TestWarehouseUpdates: a warehouse's signed updates move an order's
// fulfilment and make its shipments, and move stock at its location
// through inventory; a redelivered update is answered the same and changes
// nothing (also once its idempotency record is gone); refused updates
// change nothing.
func TestWarehouseUpdates(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		sec := e.warehouse("east", "default")
		id := e.paid(e.alice, "TEE", 3, "MUG", 1)
		unpaid := e.placed(e.bob, "CAP", 1)

		// picked: the fulfilment records it, once.
		picked := e.sign(sec, "wh-1", map[string]any{"type": "picked", "order_id": id})
		first := e.post("east", picked)
		first.WantStatus(t, http.StatusOK)
		again := e.post("east", picked)
		again.WantStatus(t, http.StatusOK)
		if string(again.Body) != string(first.Body) || again.Header.Get(web.HeaderReplayed) != "true" {
			t.Fatalf("redelivery: %s (%v), first %s", again.Body, again.Header, first.Body)
		}
		f := e.op.Do("GET", "/api/v1/admin/orders/"+id+"/fulfilment", nil)
		if f.Field("picked_at") == nil || f.Field("packed_at") != nil || f.Field("warehouse") != "east" {
			t.Fatalf("fulfilment: %s", f.Body)
		}
		if got := e.types("fulfilment", id); !equal(got, []string{"fulfilment.updated"}) {
			t.Fatalf("fulfilment events %v", got)
		}
		e.update("east", sec, "wh-2", map[string]any{"type": "packed", "order_id": id}).WantStatus(t, http.StatusOK)
		if d := e.data(id, "fulfilment.updated"); d["stage"] != "packed" || d["warehouse"] != "east" {
			t.Fatalf("packed event %v", d)
		}

		// shipped: a shipment with the warehouse's carrier and number.
		ship := e.update("east", sec, "wh-3", map[string]any{"type": "shipped", "order_id": id, "carrier": "dhl",
			"tracking_number": "JD0001", "lines": []map[string]any{{"sku": "TEE", "quantity": 2}}})
		ship.WantStatus(t, http.StatusOK)
		sid, _ := ship.Field("shipment.id").(string)
		if sid == "" || ship.Field("shipment.tracking_number") != "JD0001" || ship.Field("shipment.carrier") != "dhl" {
			t.Fatalf("shipped: %s", ship.Body)
		}
		if o := e.order(id); o.Field("status") != "partially_shipped" {
			t.Fatalf("order after a partial shipment: %s", o.Body)
		}

		// Refused updates: nothing changes.
		before := e.state()
		refused := []struct {
			name   string
			body   any
			status int
			code   string
		}{
			{"over-ship", map[string]any{"type": "shipped", "order_id": id, "carrier": "dhl", "tracking_number": "JD0002",
				"lines": []map[string]any{{"sku": "TEE", "quantity": 2}}}, http.StatusConflict, "already_shipped"},
			{"sku not in the order", map[string]any{"type": "shipped", "order_id": id, "carrier": "dhl", "tracking_number": "JD0003",
				"lines": []map[string]any{{"sku": "CAP", "quantity": 1}}}, http.StatusUnprocessableEntity, "validation_failed"},
			{"tracking number taken", map[string]any{"type": "shipped", "order_id": id, "carrier": "dhl", "tracking_number": "JD0001"},
				http.StatusConflict, "tracking_number_taken"},
			{"unknown order", map[string]any{"type": "picked", "order_id": "nope"}, http.StatusUnprocessableEntity, "validation_failed"},
			{"unpaid order", map[string]any{"type": "picked", "order_id": unpaid}, http.StatusConflict, "invalid_transition"},
			{"unknown type", map[string]any{"type": "lost", "order_id": id}, http.StatusUnprocessableEntity, "validation_failed"},
			{"shipped without a carrier", map[string]any{"type": "shipped", "order_id": id}, http.StatusUnprocessableEntity, "validation_failed"},
			{"zero quantity", map[string]any{"type": "stock_received", "lines": []map[string]any{{"sku": "TEE", "quantity": 0}}},
				http.StatusUnprocessableEntity, "validation_failed"},
			{"count without on_hand", map[string]any{"type": "stock_adjusted", "lines": []map[string]any{{"sku": "TEE"}}},
				http.StatusUnprocessableEntity, "validation_failed"},
			{"count below reserved", map[string]any{"type": "stock_adjusted", "lines": []map[string]any{{"sku": "CAP", "on_hand": 0}}},
				http.StatusConflict, "below_reserved"},
			{"unknown field", []byte(`{"type":"picked","order_id":"` + id + `","colour":"red"}`), http.StatusBadRequest, "malformed_request"},
		}
		for i, c := range refused {
			t.Run(c.name, func(t *testing.T) {
				webtest.AssertProblem(t, e.update("east", sec, fmt.Sprintf("bad-%d", i), c.body), c.status, c.code)
			})
		}
		good := e.sign(sec, "wh-9", map[string]any{"type": "stock_received", "lines": []map[string]any{{"sku": "MUG", "quantity": 5}}})
		forged := []struct {
			name string
			u    signed
			code string // the warehouse
		}{
			{"another secret", e.sign(newWarehouseSecret(), "wh-9", good.body), "east"},
			{"changed body", signed{good.id, good.ts, []byte(strings.Replace(string(good.body), "5", "50", 1)), good.sig}, "east"},
			{"another id", signed{"wh-10", good.ts, good.body, good.sig}, "east"},
			{"no signature", signed{good.id, good.ts, good.body, ""}, "east"},
			{"stale timestamp", func() signed {
				u := good
				u.ts -= 600
				u.sig, _ = SignWarehouseUpdate(sec, u.id, u.ts, u.body)
				return u
			}(), "east"},
		}
		for _, c := range forged {
			t.Run(c.name, func(t *testing.T) {
				webtest.AssertProblem(t, e.post(c.code, c.u), http.StatusBadRequest, "invalid_signature")
			})
		}
		webtest.AssertProblem(t, e.post("west", good), http.StatusNotFound, "not_found")
		if got := e.state(); got != before {
			t.Fatalf("refused updates changed the shop: %s, before %s", got, before)
		}

		// Stock at the warehouse's location, through inventory.
		recv := e.post("east", good)
		recv.WantStatus(t, http.StatusOK)
		if recv.Field("stock.0.sku") != "MUG" || recv.Field("stock.0.on_hand") != float64(54) {
			t.Fatalf("received: %s", recv.Body)
		}
		adj := e.update("east", sec, "wh-11", map[string]any{"type": "stock_adjusted", "lines": []map[string]any{{"sku": "TEE", "on_hand": 40}}})
		adj.WantStatus(t, http.StatusOK)
		if adj.Field("stock.0.on_hand") != float64(40) {
			t.Fatalf("adjusted: %s", adj.Body)
		}
		if n := e.count(`SELECT count(*) FROM inventory_ledger WHERE reference = 'warehouse:east'`); n != 2 {
			t.Errorf("%d ledger rows of the warehouse, want 2", n)
		}

		// A redelivery after the idempotency records are gone (pruned after
		// a day) still changes nothing and gets the first answer.
		if _, err := e.db.Writer().Exec(`DELETE FROM idempotency_records`); err != nil {
			t.Fatal(err)
		}
		late := e.post("east", good)
		late.WantStatus(t, http.StatusOK)
		if string(late.Body) != string(recv.Body) {
			t.Fatalf("late redelivery: %s, first %s", late.Body, recv.Body)
		}
		if lv, err := e.inv.Stock(t.Context(), "MUG"); err != nil || lv.OnHand != 54 { // 50 - 1 sold + 5
			t.Fatalf("MUG after a late redelivery: %+v %v", lv, err)
		}
		var ids []string
		for cursor, pages := "", 0; pages == 0 || cursor != ""; pages++ {
			list := e.op.Do("GET", "/api/v1/admin/warehouses/east/updates?limit=2&cursor="+cursor, nil)
			list.WantStatus(t, http.StatusOK)
			for _, it := range list.Field("items").([]any) {
				ids = append(ids, it.(map[string]any)["update_id"].(string))
			}
			cursor, _ = list.Field("next_cursor").(string)
		}
		slices.Sort(ids)
		if !equal(ids, []string{"wh-1", "wh-11", "wh-2", "wh-3", "wh-9"}) {
			t.Fatalf("applied updates listed: %v", ids)
		}
	})
}

// TestWarehouseUpdateRace: ten copies of one signed update arrive at once
// (a warehouse retrying over several connections): every one is answered
// 200 with the same body, and the effect happens once — one shipment, one
// shipment.created; one receipt.
func TestWarehouseUpdateRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		sec := e.warehouse("east", "default")
		id := e.paid(e.alice, "TEE", 2)
		for _, c := range []struct {
			name string
			u    signed
		}{
			{"shipped", e.sign(sec, "race-ship", map[string]any{"type": "shipped", "order_id": id, "carrier": "dhl", "tracking_number": "RACE1"})},
			{"received", e.sign(sec, "race-recv", map[string]any{"type": "stock_received", "lines": []map[string]any{{"sku": "CAP", "quantity": 4}}})},
		} {
			t.Run(c.name, func(t *testing.T) {
				out := make([]*webtest.Response, 10)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range out {
					wg.Go(func() {
						<-start
						out[i] = e.post("east", c.u)
					})
				}
				close(start)
				wg.Wait()
				for i, r := range out {
					if r.Status != http.StatusOK || string(r.Body) != string(out[0].Body) {
						t.Fatalf("copy %d: %d %s; copy 0: %s", i, r.Status, r.Body, out[0].Body)
					}
				}
			})
		}
		if n := e.count(`SELECT count(*) FROM logistics_shipments WHERE order_id = $1`, id); n != 1 {
			t.Errorf("%d shipments, want 1", n)
		}
		if n := e.count(`SELECT count(*) FROM outbox WHERE type = 'shipment.created'`); n != 1 {
			t.Errorf("%d shipment.created, want 1", n)
		}
		if o := e.order(id); o.Field("status") != "shipped" {
			t.Errorf("order: %s", o.Body)
		}
		if lv, err := e.inv.Stock(t.Context(), "CAP"); err != nil || lv.OnHand != 54 {
			t.Errorf("CAP %+v %v; want 50 + 4", lv, err)
		}
	})
}
