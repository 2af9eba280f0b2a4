package webhooks

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/accounts/accountstest"
	"mercato/internal/audit"
	"mercato/internal/channels"
	"mercato/internal/inventory"
	"mercato/internal/money"
	"mercato/internal/orders"
	"mercato/internal/platform/event"
	"mercato/internal/platform/idem"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/module"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
)

// catalogDouble is a fixed catalog: the orders module's Catalog port.
type catalogDouble map[string]orders.Variant

func (c catalogDouble) VariantsTx(_ context.Context, _ *sqldb.Tx, skus []string) (map[string]orders.Variant, error) {
	out := map[string]orders.Variant{}
	for _, s := range skus {
		if v, ok := c[s]; ok {
			out[s] = v
		}
	}
	return out, nil
}

// stockAdapter is the inventory as orders reserves (as cmd/mercato wires it).
type stockAdapter struct{ inv *inventory.Service }

func (a stockAdapter) ReserveTx(ctx context.Context, tx *sqldb.Tx, ref, customerID string, lines []orders.StockLine, ttl time.Duration) error {
	ls := make([]inventory.Line, len(lines))
	for i, l := range lines {
		ls[i] = inventory.Line{SKU: l.SKU, Quantity: int64(l.Quantity)}
	}
	_, err := a.inv.ReserveTx(ctx, tx, ref, customerID, ls, ttl)
	return err
}

// lateTokens is the accounts service as the channels module issues tokens,
// bound once the scenario shop has built it.
type lateTokens struct{ acc *accounts.Service }

func (l *lateTokens) IssueChannelToken(ctx context.Context, tx *sqldb.Tx, code string) (string, error) {
	return l.acc.IssueChannelToken(ctx, tx, code)
}

// pump hands the outbox's events after *last to the webhooks consumer in
// outbox order, one transaction, as the inbox consumer would.
func pump(t *testing.T, db *sqldb.DB, wh *Service, last *int64) {
	t.Helper()
	rows, err := db.Reader().Query(`SELECT id, event_id, type, schema_version, aggregate_type, aggregate_id, sequence,
		occurred_at, data FROM outbox WHERE id > $1 ORDER BY id`, *last)
	if err != nil {
		t.Fatal(err)
	}
	var evs []event.Envelope
	for rows.Next() {
		var e event.Envelope
		var at int64
		var data string
		if err := rows.Scan(last, &e.ID, &e.Type, &e.SchemaVersion, &e.AggregateType, &e.AggregateID, &e.Sequence, &at, &data); err != nil {
			t.Fatal(err)
		}
		e.OccurredAt, e.Data = sqldb.FromMicros(at), json.RawMessage(data)
		evs = append(evs, e)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Do(context.Background(), func(tx *sqldb.Tx) error {
		for _, e := range evs {
			if err := wh.Consumer().Handle(context.Background(), tx, e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestChannelStatusSyncBack is the scenario of "status synced back to the
// channel through a connector", through the real HTTP server: two
// marketplaces, each naming its own http_json connector; an order imported
// through each, then paid (the import), shipped or cancelled — each
// channel's connector receives its own order's status updates, in
// sequence, and never the other's.
func TestChannelStatusSyncBack(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		tokens := &lateTokens{}
		var wh *Service
		var ord *orders.Service
		var inv *inventory.Service
		shop := accountstest.New(t, db, func(p module.Platform) []module.Module {
			inv = inventory.New(p, inventory.Config{})
			usd := money.MustNew(1500, "USD")
			ord = orders.New(p, orders.Deps{Catalog: catalogDouble{"TEE-M": {SKU: "TEE-M", ProductID: "p-tee", Title: "Tee, M",
				Price: usd, Sellable: true}}, Stock: stockAdapter{inv}}, orders.Config{})
			wh = New(p, Config{Secret: testSecret, AllowPrivate: true})
			ch := channels.New(p, channels.Deps{Orders: ord, Tokens: tokens, Connectors: wh}, channels.Config{})
			return []module.Module{inv.Module(), ord.Module(), wh.Module(), ch.Module()}
		})
		tokens.acc = shop.Accounts
		if _, err := inv.SetStock(ctx, "TEE-M", "", 10, "test"); err != nil {
			t.Fatal(err)
		}
		_, op := shop.Staff("op@example.com", accounts.RoleOperator)
		receivers := map[string]*receiver{}
		connectorOf := map[string]string{}
		channelTokens := map[string]string{}
		for _, code := range []string{"amazon", "ebay"} {
			op.Do("POST", "/api/v1/admin/channels", map[string]string{"code": code, "name": code, "kind": "marketplace"}).
				WantStatus(t, http.StatusCreated)
			r := op.Do("POST", "/api/v1/admin/channels/"+code+"/tokens", nil)
			r.WantStatus(t, http.StatusCreated)
			channelTokens[code] = r.Field("token").(string)
			rc := newReceiver(t, shop.Clock.Now)
			receivers[code] = rc
			r = op.Do("POST", "/api/v1/admin/connectors", map[string]any{"name": code + " status", "kind": "http_json",
				"url": rc.URL(), "events": []string{"order.*"}, "fifo": true,
				"template": json.RawMessage(`{"external_order": "$.aggregate_id", "status": "{{.type}}"}`)})
			r.WantStatus(t, http.StatusCreated)
			connectorOf[code] = r.Field("id").(string)
			rc.secrets = []string{r.Field("secret").(string)}
			r = op.Do("PUT", "/api/v1/admin/channels/"+code+"/connector", map[string]string{"connector_id": connectorOf[code]})
			r.WantStatus(t, http.StatusOK)
			if r.Field("connector_id") != connectorOf[code] {
				t.Fatalf("channel %s: %s", code, r.Body)
			}
		}
		// A channel can only name a connector.
		r := op.Do("PUT", "/api/v1/admin/channels/amazon/connector", map[string]string{"connector_id": "no-such"})
		r.WantStatus(t, http.StatusUnprocessableEntity)
		if r.Problem.Errors[0].Field != "connector_id" {
			t.Fatalf("problem %s", r.Body)
		}
		orderOf := map[string]string{}
		for code, tok := range channelTokens {
			r := shop.Client.WithToken(tok).Do("POST", "/api/v1/channels/"+code+"/orders", map[string]any{
				"external_id": code + "-1",
				"lines":       []map[string]any{{"sku": "TEE-M", "quantity": 1, "unit_price": map[string]any{"amount": 1200, "currency": "USD"}}},
				"customer":    map[string]any{"email": "buyer@example.com", "name": "Bea"},
				"shipping_address": map[string]any{"name": "Bea", "line1": "1 Quay St", "city": "Leith", "region": "Edinburgh",
					"postal_code": "EH6 6AA", "country": "GB"}})
			r.WantStatus(t, http.StatusCreated)
			orderOf[code] = r.Field("id").(string)
		}
		var last int64
		pump(t, db, wh, &last)
		// amazon's order ships (as the logistics module would mark it);
		// ebay's is cancelled by staff.
		if err := shop.Platform.Write.Do(ctx, func(tx *sqldb.Tx) error {
			_, err := ord.ShipTx(ctx, tx, orderOf["amazon"], "shipment-1", true)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		op.Do("POST", "/api/v1/admin/orders/"+orderOf["ebay"]+"/cancel", nil).WantStatus(t, http.StatusOK)
		pump(t, db, wh, &last)
		if err := wh.Dispatcher().Flush(ctx); err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{"amazon": {"order.placed", "order.paid", "order.shipped"},
			"ebay": {"order.placed", "order.paid", "order.cancelled"}}
		for code, rc := range receivers {
			var got []string
			for _, g := range rc.requests() {
				var b struct{ ExternalOrder, Status string }
				json.Unmarshal(g.body, &struct {
					ExternalOrder *string `json:"external_order"`
					Status        *string `json:"status"`
				}{&b.ExternalOrder, &b.Status})
				if b.ExternalOrder != orderOf[code] || g.valid != 1 {
					t.Errorf("%s's connector got %s (signature valid %d): another channel's order", code, g.body, g.valid)
				}
				got = append(got, b.Status)
			}
			if !slices.Equal(got, want[code]) {
				t.Errorf("%s's connector got %v, want %v", code, got, want[code])
			}
		}
		// Unbinding takes the channel away; a connector left with none is
		// disabled rather than sent every order's events.
		op.Do("PUT", "/api/v1/admin/channels/amazon/connector", map[string]string{"connector_id": ""}).WantStatus(t, http.StatusOK)
		r = op.Do("GET", "/api/v1/admin/connectors/"+connectorOf["amazon"], nil)
		if r.Field("enabled") != false || r.Field("disabled_reason") != "unbound" || len(r.Field("channels").([]any)) != 0 {
			t.Fatalf("after unbinding: %s", r.Body)
		}
		r = op.Do("GET", "/api/v1/admin/channels", nil)
		if r.Field("items.0.code") != "amazon" || r.Field("items.0.connector_id") != nil || r.Field("items.1.connector_id") != connectorOf["ebay"] {
			t.Fatalf("channels %s", r.Body)
		}
	}, Migrations(), accounts.Migrations(), audit.Migrations(), outbox.Migrations(), web.Migrations(), idem.Migrations(),
		inbox.Migrations(), orders.Migrations(), inventory.Migrations(), channels.Migrations())
}
