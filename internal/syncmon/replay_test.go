package syncmon

import (
	"context"
	"net/http"
	"testing"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/accounts/accountstest"
	"mercato/internal/audit"
	"mercato/internal/platform/event"
	"mercato/internal/platform/idem"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/module"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

var orderPaid = event.Define[struct{}]("order.paid", 1, "test: an order was paid")

// TestReplayHTTP: staff with sync.replay replay one replayable consumer
// since a point in time: 202 with the events queued, recorded and audited
// once whatever the retries with its Idempotency-Key, shown in the sync
// status while it runs; the job runs the handler once per event; refusals
// name their reason and change nothing.
func TestReplayHTTP(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		if _, err := db.Writer().Exec(`CREATE TABLE replayed (event_id TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		indexer := inbox.Consumer{Name: "indexer", Events: []string{"order.*"}, Replayable: true,
			Handle: func(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO replayed (event_id) VALUES ($1)`, e.ID)
				return err
			}}
		stock := inbox.Consumer{Name: "stock", Events: []string{"order.paid"}, Handle: indexer.Handle}
		var rp *inbox.Replays
		shop := accountstest.New(t, db, func(p module.Platform) []module.Module {
			rp = inbox.NewReplays(p.DB, p.Write, inbox.ReplayConfig{}, func() []inbox.Consumer { return []inbox.Consumer{indexer, stock} })
			return []module.Module{audit.NewLog(p.DB).Module(), New(inbox.NewMonitor(p.DB, nil)).WithReplays(p, rp).Module()}
		})
		for _, ago := range []time.Duration{3 * time.Hour, 50 * time.Minute, 40 * time.Minute, 30 * time.Minute} {
			e, _ := orderPaid.New("o-"+ago.String(), accountstest.T0.Add(-ago), struct{}{})
			if err := db.InTx(ctx, func(tx *sqldb.Tx) error { return outbox.Append(ctx, tx, &e) }); err != nil {
				t.Fatal(err)
			}
		}
		_, op := shop.Staff("op@example.com", accounts.RoleOperator)
		_, cs := shop.Staff("cs@example.com", accounts.RoleCustomerService)
		since := map[string]any{"since": accountstest.T0.Add(-time.Hour).Format(time.RFC3339)}
		path := "/api/v1/admin/sync/consumers/indexer/replay"

		first := op.Do("POST", path, since, web.HeaderIdempotencyKey+": k1")
		first.WantStatus(t, http.StatusAccepted)
		if first.Field("queued") != float64(3) || first.Field("status") != "running" || first.Field("consumer") != "indexer" {
			t.Fatalf("replay: %s", first.Body)
		}
		again := op.Do("POST", path, since, web.HeaderIdempotencyKey+": k1")
		if again.Status != http.StatusAccepted || string(again.Body) != string(first.Body) || again.Header.Get(web.HeaderReplayed) != "true" {
			t.Fatalf("retry with the key: %d %s", again.Status, again.Body)
		}
		st := op.Do("GET", "/api/v1/admin/sync", nil)
		st.WantStatus(t, http.StatusOK)
		if st.Field("replays.0.id") != first.Field("id") {
			t.Fatalf("the sync status does not show the running replay: %s", st.Body)
		}
		count := func(q string) int {
			t.Helper()
			var n int
			if err := db.Reader().QueryRow(q).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		for _, c := range []struct {
			name   string
			c      *webtest.Client
			path   string
			body   any
			status int
			code   string
		}{
			{"running already", op, path, since, http.StatusConflict, "replay_running"},
			{"not replayable", op, "/api/v1/admin/sync/consumers/stock/replay", since, http.StatusConflict, "consumer_not_replayable"},
			{"unknown consumer", op, "/api/v1/admin/sync/consumers/nope/replay", since, http.StatusNotFound, "not_found"},
			{"since in the future", op, path, map[string]any{"since": accountstest.T0.Add(time.Hour)}, http.StatusUnprocessableEntity, "validation_failed"},
			{"since too old", op, path, map[string]any{"since": accountstest.T0.Add(-8 * 24 * time.Hour)}, http.StatusUnprocessableEntity, "validation_failed"},
			{"no since", op, path, map[string]any{}, http.StatusUnprocessableEntity, "validation_failed"},
			{"not a time", op, path, map[string]any{"since": "yesterday"}, http.StatusUnprocessableEntity, "validation_failed"},
			{"no permission", cs, path, since, http.StatusForbidden, "forbidden"},
		} {
			t.Run(c.name, func(t *testing.T) {
				webtest.AssertProblem(t, c.c.Do("POST", c.path, c.body), c.status, c.code)
			})
		}
		if n := count(`SELECT count(*) FROM consumer_replays`); n != 1 {
			t.Fatalf("%d replays recorded, want 1", n)
		}
		if n := count(`SELECT count(*) FROM audit_log WHERE action = 'consumer.replay_requested' AND target_id = 'indexer'`); n != 1 {
			t.Fatalf("%d audit entries, want 1", n)
		}

		jobs := rp.Jobs("indexer", "stock")
		if len(jobs) != 1 {
			t.Fatalf("%d replay jobs, want the indexer's", len(jobs))
		}
		if n, err := jobs[0].Run(ctx); err != nil || n != 3 {
			t.Fatalf("the job ran %d events, %v; want 3", n, err)
		}
		if n := count(`SELECT count(*) FROM replayed`); n != 3 {
			t.Fatalf("the handler ran %d times, want 3", n)
		}
		id := first.Field("id").(string)
		done := op.Do("GET", "/api/v1/admin/sync/replays/"+id, nil)
		if done.Field("status") != "done" || done.Field("replayed") != float64(3) || done.Field("requested_by") == "" {
			t.Fatalf("replay after the job: %s", done.Body)
		}
		if st := op.Do("GET", "/api/v1/admin/sync", nil); st.Field("replays.0") != nil {
			t.Fatalf("a finished replay is still listed as running: %s", st.Body)
		}
		list := op.Do("GET", "/api/v1/admin/sync/replays", nil)
		if list.Field("items.0.id") != id || list.Field("next_cursor") != nil {
			t.Fatalf("replays: %s", list.Body)
		}
		webtest.AssertProblem(t, op.Do("GET", "/api/v1/admin/sync/replays/nope", nil), http.StatusNotFound, "not_found")
		// The first request's key still answers the first replay: nothing runs twice.
		late := op.Do("POST", path, since, web.HeaderIdempotencyKey+": k1")
		if string(late.Body) != string(first.Body) || count(`SELECT count(*) FROM consumer_replays`) != 1 {
			t.Fatalf("a late retry: %s", late.Body)
		}
		if n, _ := jobs[0].Run(ctx); n != 0 || count(`SELECT count(*) FROM replayed`) != 3 {
			t.Fatalf("a job run after the end ran %d events", n)
		}
	}, accounts.Migrations(), audit.Migrations(), inbox.Migrations(), outbox.Migrations(), web.Migrations(), idem.Migrations())
}
