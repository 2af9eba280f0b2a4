package webhooks

import (
	"context"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
)

// Deliveries recorded before the successful try moved into the delivery
// row keep their log: after the migration a delivered delivery lists its
// failed tries from attempt rows and its successful one from its row, as
// many tries as before, the last with its status, latency and response.
func TestMigratedDeliveryKeepsItsLog(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		old := fstest.MapFS{}
		fs.WalkDir(migrations, "migrations", func(path string, d fs.DirEntry, err error) error {
			name := path[strings.LastIndex(path, "/")+1:]
			if err == nil && !d.IsDir() && name < "004" {
				b, _ := fs.ReadFile(migrations, path)
				old[strings.TrimPrefix(path, "migrations/")] = &fstest.MapFile{Data: b}
			}
			return nil
		})
		if _, err := migrate.Up(ctx, db, migrate.Source{Module: "webhooks", FS: old}); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			`INSERT INTO webhooks_deliveries (id, endpoint_id, event_id, event_type, aggregate_type, aggregate_id, sequence,
				envelope, status, attempts, next_at, last_status, created_at, updated_at)
				VALUES ('d1', 'ep1', 'ev1', 'order.placed', 'order', 'o1', 1, '{}', 'delivered', 2, 0, 200, 10, 30)`,
			`INSERT INTO webhooks_attempts (id, delivery_id, endpoint_id, attempt, attempted_at, status_code, latency_us, response, error)
				VALUES ('a1', 'd1', 'ep1', 1, 20, 500, 1000, 'boom', 'HTTP 500'), ('a2', 'd1', 'ep1', 2, 30, 200, 2500, 'ok', '')`,
		} {
			if _, err := db.Writer().Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := migrate.Up(ctx, db, sources()...); err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, db, Config{AllowPrivate: true})
		if _, err := db.Writer().Exec(`INSERT INTO webhooks_endpoints (id, url, events, secret_sealed, created_by, created_at, updated_at)
			VALUES ('ep1', 'http://127.0.0.1/hook', '["*"]', 'x', 'u', 1, 1)`); err != nil {
			t.Fatal(err)
		}
		page, err := e.svc.Deliveries(ctx, "ep1", "", web.PageRequest{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 {
			t.Fatalf("%d deliveries", len(page.Items))
		}
		log := page.Items[0].Log
		if len(log) != 2 || log[0].StatusCode != 500 || log[0].Error != "HTTP 500" ||
			log[1].Attempt != 2 || log[1].StatusCode != 200 || log[1].LatencyMS != 2.5 || log[1].Response != "ok" {
			t.Fatalf("log after the migration: %+v", log)
		}
	}, sources()[1:]...)
}

// Deliveries recorded before the envelope moved into webhooks_events (007)
// keep it: one row per event, filed under the customer its data names, and
// a pending delivery sends it as it was.
func TestMigratedDeliveriesKeepTheirEnvelope(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		old := fstest.MapFS{}
		fs.WalkDir(migrations, "migrations", func(path string, d fs.DirEntry, err error) error {
			name := path[strings.LastIndex(path, "/")+1:]
			if err == nil && !d.IsDir() && name < "007" {
				b, _ := fs.ReadFile(migrations, path)
				old[strings.TrimPrefix(path, "migrations/")] = &fstest.MapFile{Data: b}
			}
			return nil
		})
		if _, err := migrate.Up(ctx, db, append([]migrate.Source{{Module: "webhooks", FS: old}}, sources()[1:]...)...); err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, db, Config{AllowPrivate: true})
		rc := newReceiver(t, e.clock.Now)
		a := e.register(rc.URL(), []string{"order.*"}, false)
		b := e.register(rc.URL(), []string{"order.*"}, false)
		const envelope = `{"id":"ev1","type":"order.placed","schema_version":1,"aggregate_type":"order","aggregate_id":"o1",` +
			`"sequence":1,"occurred_at":"2030-01-02T03:04:05Z","data":{"order_id":"o1","customer_id":"c1"}}`
		for i, ep := range []string{a.ID, b.ID} {
			status := []string{"delivered", "pending"}[i]
			if _, err := db.Writer().Exec(`INSERT INTO webhooks_deliveries (id, endpoint_id, event_id, event_type, aggregate_type,
					aggregate_id, sequence, envelope, status, attempts, next_at, created_at, updated_at)
				VALUES ($1, $2, 'ev1', 'order.placed', 'order', 'o1', 1, $3, $4, 0, 0, 10, 10)`,
				"d"+strconv.Itoa(i), ep, envelope, status); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := migrate.Up(ctx, db, Migrations()); err != nil {
			t.Fatal(err)
		}
		if n := sqldbtest.Count(t, db, `SELECT count(*) FROM webhooks_events WHERE event_id = 'ev1' AND customer_id = 'c1'`); n != 1 {
			t.Fatalf("%d envelopes of ev1 filed under c1, want 1", n)
		}
		e.flush()
		got := rc.requests()
		if len(got) != 1 || string(got[0].body) != envelope {
			t.Fatalf("after the migration the pending delivery sent %d requests: %+v", len(got), got)
		}
	}, sources()[1:]...)
}
