package channels

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"mercato/internal/money"
	"mercato/internal/orders"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web/webtest"
)

// TestImportKeyAloneDeduplicates races 10 imports of one external_id
// through the Go API, without the idempotency store: channels_imports'
// key alone lets one order through, and every other call answers with it.
// Half the calls share group-commit batches, half run each in a
// transaction of its own (on PostgreSQL their claims wait on each other).
func TestImportKeyAloneDeduplicates(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		e.channel("amazon", "marketplace")
		in := ImportRequest{ExternalID: "KEY-1",
			Lines:    []orders.ImportLine{{SKU: "TEE-M", Quantity: 2, UnitPrice: money.MustNew(1100, "USD")}},
			Customer: orders.ImportCustomer{Email: "bea@example.com", Name: "Bea"},
			ShippingAddress: &orders.Address{Name: "Bea", Line1: "1 Quay St", City: "Leith", Region: "Edinburgh",
				PostalCode: "EH6 6AA", Country: "GB"}}
		const n = 10
		out := make([]Imported, n)
		errsOut := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				svc := e.svc
				if i%2 == 1 {
					own := *e.svc
					own.write = e.db // one transaction per call
					svc = &own
				}
				out[i], errsOut[i] = svc.Import(context.Background(), "amazon", in)
			}()
		}
		close(start)
		wg.Wait()
		created := 0
		for i := range n {
			if errsOut[i] != nil {
				t.Fatalf("import %d: %v", i, errsOut[i])
			}
			if out[i].Created {
				created++
			}
			if out[i].Order.ID != out[0].Order.ID {
				t.Fatalf("import %d answered order %s, import 0 %s", i, out[i].Order.ID, out[0].Order.ID)
			}
		}
		if created != 1 {
			t.Fatalf("%d imports created an order, want 1", created)
		}
		if lv := e.level("TEE-M"); lv.Reserved != 2 {
			t.Fatalf("TEE-M %+v, want 2 reserved", lv)
		}
		var email, name string
		if err := e.db.Reader().QueryRow(`SELECT customer_email, customer_name FROM channels_imports WHERE order_id = $1`,
			out[0].Order.ID).Scan(&email, &name); err != nil || email != "bea@example.com" || name != "Bea" {
			t.Fatalf("customer %q %q (%v)", email, name, err)
		}
	})
}

// TestRoutesInOpenAPI checks the module's routes against the OpenAPI
// document and the answers against their documented schemas.
func TestRoutesInOpenAPI(t *testing.T) {
	e := newEnv(t, sqldbtest.Open(t, sqldb.SQLite, sources()...))
	spec := webtest.CheckOpenAPI(t, e.rt)
	tok := e.channel("shop-app", "app")
	r := e.c.WithToken(tok).Do("POST", "/api/v1/channels/shop-app/orders", importBody("APP-1", line("MUG", 1, 850)))
	r.WantStatus(t, http.StatusCreated)
	spec.ValidateResponse(t, "POST", "/api/v1/channels/{code}/orders", r)
	l := e.c.WithToken(e.op).Do("GET", "/api/v1/admin/channels", nil)
	l.WantStatus(t, http.StatusOK)
	spec.ValidateResponse(t, "GET", "/api/v1/admin/channels", l)
	bad := e.c.WithToken(tok).Do("POST", "/api/v1/channels/shop-app/orders", importBody("APP-2", line("MUG", 1, -1)))
	spec.ValidateResponse(t, "POST", "/api/v1/channels/{code}/orders", bad)
	webtest.AssertNoInternalText(t, bad.Body)
}

func TestImportCSV(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		e.channel("pos-1", "pos")
		const head = "external_id,sku,quantity,unit_price,currency,customer_email,customer_name,ship_name,ship_line1,ship_line2,ship_city,ship_region,ship_postal_code,ship_country\n"
		addr := ",bea@example.com,Bea,Bea,1 Quay St,,Leith,Edinburgh,EH6 6AA,GB\n"
		file := head +
			"P-1,TEE-M,2,1200,USD" + addr +
			"P-1,MUG,1,800,USD" + addr +
			"P-2,NOPE,1,100,USD" + addr +
			"P-3,TEE-M,1,-5,USD" + addr +
			"P-4,TEE-M,x,100,USD" + addr
		op := e.c.WithToken(e.op)
		r := op.Do("POST", "/api/v1/admin/channels/pos-1/orders/import", file, "Content-Type: text/csv")
		r.WantStatus(t, http.StatusOK)
		var rep CSVReport
		r.Decode(t, &rep)
		if rep.Imported != 1 || rep.Failed != 3 || rep.Duplicates != 0 || len(rep.Errors) != 3 {
			t.Fatalf("report %+v", rep)
		}
		want := map[string]string{"P-2": "unknown_sku", "P-3": "validation_failed", "P-4": "validation_failed"}
		for _, er := range rep.Errors {
			if want[er.ExternalID] != er.Code {
				t.Errorf("%s: code %q, want %q (%s)", er.ExternalID, er.Code, want[er.ExternalID], er.Message)
			}
		}
		if lv := e.level("TEE-M"); lv.Reserved != 2 {
			t.Fatalf("TEE-M %+v", lv)
		}
		if evs := e.events("order.placed"); len(evs) != 1 || evs[0].Data["channel"] != "pos-1" || evs[0].Data["total"] != 3200.0 {
			t.Fatalf("order.placed %+v", evs)
		}
		// The same file again: a duplicate, nothing reserved twice.
		r = op.Do("POST", "/api/v1/admin/channels/pos-1/orders/import", file, "Content-Type: text/csv")
		r.WantStatus(t, http.StatusOK)
		r.Decode(t, &rep)
		if rep.Imported != 0 || rep.Duplicates != 1 || rep.Failed != 3 || e.level("TEE-M").Reserved != 2 {
			t.Fatalf("report %+v, TEE-M %+v", rep, e.level("TEE-M"))
		}
		webtest.AssertProblem(t, op.Do("POST", "/api/v1/admin/channels/pos-1/orders/import", "sku,quantity\nA,1\n", "Content-Type: text/csv"),
			http.StatusBadRequest, "malformed_request")
		webtest.AssertProblem(t, op.Do("POST", "/api/v1/admin/channels/nope/orders/import", file, "Content-Type: text/csv"),
			http.StatusNotFound, "not_found")
		webtest.AssertProblem(t, op.Do("POST", "/api/v1/admin/channels/pos-1/orders/import", map[string]string{"a": "b"}),
			http.StatusUnsupportedMediaType, "unsupported_media_type")
	})
}

// TestQuotaGivenBackOnCancel: a cancelled imported order's units count no
// more against the channel's quota; another channel's order changes nothing.
func TestQuotaGivenBackOnCancel(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ch := e.c.WithToken(e.channel("pos-1", "pos"))
		e.c.WithToken(e.op).Do("PUT", "/api/v1/admin/channels/pos-1/quotas/TEE-M", map[string]any{"units": 3}).WantStatus(t, http.StatusOK)
		r := ch.Do("POST", "/api/v1/channels/pos-1/orders", importBody("P-1", line("TEE-M", 3, 1000), line("MUG", 1, 500)))
		r.WantStatus(t, http.StatusCreated)
		webtest.AssertProblem(t, ch.Do("POST", "/api/v1/channels/pos-1/orders", importBody("P-2", line("TEE-M", 1, 1000))),
			http.StatusConflict, "quota_exceeded")
		for _, id := range []string{"not-an-import", r.Field("id").(string)} {
			ev, err := orders.OrderCancelled.New(id, e.db.Now(), orders.CancelledData{OrderID: id, By: "staff", Currency: "USD"})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.db.InTx(context.Background(), func(tx *sqldb.Tx) error { return e.svc.HandleOrderCancelled(context.Background(), tx, ev) }); err != nil {
				t.Fatal(err)
			}
		}
		var reserved int
		if err := e.db.Reader().QueryRow(`SELECT reserved FROM channels_quotas WHERE channel = 'pos-1' AND sku = 'TEE-M'`).Scan(&reserved); err != nil || reserved != 0 {
			t.Fatalf("reserved %d (%v), want 0", reserved, err)
		}
		ch.Do("POST", "/api/v1/channels/pos-1/orders", importBody("P-2", line("TEE-M", 1, 1000))).WantStatus(t, http.StatusCreated)
	})
}

// TestRetention: channels.retention erases the buyer's e-mail address and
// name of imports older than the retention period (audited), keeps the
// import (a late duplicate still finds its order) and leaves newer ones.
func TestRetention(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ch := e.c.WithToken(e.channel("mkt", "marketplace"))
		old := ch.Do("POST", "/api/v1/channels/mkt/orders", importBody("OLD-1", line("MUG", 1, 500)))
		old.WantStatus(t, http.StatusCreated)
		e.clk.Advance(DefaultRetainFor + time.Hour)
		ch.Do("POST", "/api/v1/channels/mkt/orders", importBody("NEW-1", line("MUG", 1, 500))).WantStatus(t, http.StatusCreated)
		n, err := e.svc.AnonymiseDue(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("AnonymiseDue = %d, %v; want 1", n, err)
		}
		if got := e.count("channels_imports", "external_id = 'OLD-1' AND customer_email = '' AND customer_name = ''"); got != 1 {
			t.Errorf("the old import keeps its buyer (%d anonymised rows)", got)
		}
		if got := e.count("channels_imports", "external_id = 'NEW-1' AND customer_email <> ''"); got != 1 {
			t.Errorf("the new import lost its buyer")
		}
		if got := e.count("audit_log", "action = 'channel_import.anonymised'"); got != 1 {
			t.Errorf("%d audit entries, want 1", got)
		}
		again := ch.Do("POST", "/api/v1/channels/mkt/orders", importBody("OLD-1", line("MUG", 1, 500)))
		again.WantStatus(t, http.StatusOK)
		if again.Field("id") != old.Field("id") {
			t.Errorf("a late duplicate got another order")
		}
		if n, err := e.svc.AnonymiseDue(context.Background()); err != nil || n != 0 {
			t.Errorf("a second run anonymised %d (%v)", n, err)
		}
	})
}
