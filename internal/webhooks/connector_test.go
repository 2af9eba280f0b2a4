package webhooks

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
)

// connector registers a connector through the API.
func (e *env) connector(body map[string]any) ConnectorCreated {
	e.t.Helper()
	r := e.op.Do("POST", "/api/v1/admin/connectors", body)
	r.WantStatus(e.t, http.StatusCreated)
	var c ConnectorCreated
	r.Decode(e.t, &c)
	return c
}

// An http_json connector POSTs the mapped body (members in template order)
// with its static header and the Standard Webhooks signature over that body
// (checked independently); its header value and secret are sealed at rest,
// and the webhooks API never sees it.
func TestHTTPJSONConnector(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		rc := newReceiver(t, e.clock.Now)
		var mu sync.Mutex
		var auth []string
		rc.answer = func(int, received) (int, http.Header) { return http.StatusOK, nil }
		rc.srv.Config.Handler = withHeaderLog(rc.srv.Config.Handler, &mu, &auth)
		c := e.connector(map[string]any{"name": "ERP", "kind": "http_json", "url": rc.URL(), "events": []string{"order.*"},
			"headers": map[string]string{"Authorization": "Bearer erp-token-123"},
			// Raw JSON: the members' order is the template's.
			"template": json.RawMessage(`{"order": "ORD-{{.aggregate_id}}", "status": "{{upper .type}}", "n": "$.data.n",
				"meta": {"seq": "$.sequence", "source": "mercato"}}`)})
		if !strings.HasPrefix(c.Secret, "whsec_") || c.Kind != KindHTTPJSON || !slices.Equal(c.Headers, []string{"Authorization"}) {
			t.Fatalf("created %+v", c)
		}
		rc.secrets = []string{c.Secret}
		sqldbtest.AssertNoSecret(t, e.db, "webhooks_endpoints", []string{c.Secret, "erp-token-123"}, nil)
		if r := e.op.Do("GET", "/api/v1/admin/connectors/"+c.ID, nil); r.Field("secret") != nil || strings.Contains(string(r.Body), "erp-token") {
			t.Fatalf("GET connector shows a secret: %s", r.Body)
		}
		e.op.Do("GET", "/api/v1/admin/webhooks/"+c.ID, nil).WantStatus(t, http.StatusNotFound)
		if r := e.op.Do("GET", "/api/v1/admin/webhooks", nil); r.Field("items.0") != nil {
			t.Fatalf("the webhooks list shows a connector: %s", r.Body)
		}
		evs := e.emit("order.paid", "o1")
		e.emit("product.created", "p1") // not selected
		e.flush()
		got := rc.requests()
		if len(got) != 1 {
			t.Fatalf("receiver got %d requests, want 1", len(got))
		}
		want := `{"order":"ORD-o1","status":"ORDER.PAID","n":1,"meta":{"seq":1,"source":"mercato"}}`
		if string(got[0].body) != want || got[0].valid != 1 || got[0].id != evs[0].ID {
			t.Fatalf("body %s (signature valid %d, id %s); want %s signed, id %s", got[0].body, got[0].valid, got[0].id, want, evs[0].ID)
		}
		mu.Lock()
		if !slices.Equal(auth, []string{"Bearer erp-token-123"}) {
			t.Errorf("Authorization headers %q", auth)
		}
		mu.Unlock()
		var page web.Page[Delivery]
		e.op.Do("GET", "/api/v1/admin/connectors/"+c.ID+"/deliveries", nil).Decode(t, &page)
		if len(page.Items) != 1 || page.Items[0].Status != "delivered" || page.Items[0].Log[0].StatusCode != 200 {
			t.Fatalf("deliveries %+v", page.Items)
		}
		var st SyncStatus
		e.op.Do("GET", "/api/v1/admin/sync/webhooks", nil).Decode(t, &st)
		if len(st.Endpoints) != 1 || st.Endpoints[0].Kind != KindHTTPJSON || st.Endpoints[0].Name != "ERP" {
			t.Fatalf("sync status %+v", st.Endpoints)
		}
		// A rotation signs with both secrets; a patched template applies to
		// the next delivery.
		r := e.op.Do("POST", "/api/v1/admin/connectors/"+c.ID+"/rotate-secret", nil)
		r.WantStatus(t, http.StatusOK)
		rc.secrets = []string{r.Field("secret").(string), c.Secret}
		e.op.Do("PATCH", "/api/v1/admin/connectors/"+c.ID, map[string]any{"template": map[string]any{"id": "$.id"}}).
			WantStatus(t, http.StatusOK)
		ev := e.emit("order.cancelled", "o1")[0]
		e.flush()
		got = rc.requests()
		if len(got) != 2 || string(got[1].body) != `{"id":"`+ev.ID+`"}` || got[1].valid != 2 {
			t.Fatalf("after rotate and patch: %d requests, last %s valid %d", len(got), got[len(got)-1].body, got[len(got)-1].valid)
		}
	})
}

// withHeaderLog records each request's Authorization header.
func withHeaderLog(h http.Handler, mu *sync.Mutex, into *[]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		*into = append(*into, r.Header.Get("Authorization"))
		mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// A file_drop connector appends one CSV row per event, event id first, to
// a file that appears under its final name once closed; the attempt log
// names the file.
func TestFileDropConnector(t *testing.T) {
	dir := t.TempDir()
	forEachEngine(t, Config{ConnectorDir: dir}, func(t *testing.T, e *env) {
		file := "wms" + strings.ToLower(string(e.db.Engine()))
		c := e.connector(map[string]any{"name": "WMS", "kind": "file_drop", "file": file, "format": "csv",
			"events": []string{"order.*"}, "template": json.RawMessage(`{"order": "$.aggregate_id", "type": "{{.type}}", "n": "$.data.n"}`)})
		if c.Secret != "" || c.File != file || c.Format != "csv" || c.RotateBytes != 16<<20 || c.RotateSeconds != 3600 {
			t.Fatalf("created %+v", c)
		}
		evs := e.emit("order.placed", "o1", "o2")
		evs = append(evs, e.emit("order.paid", "o1")...)
		e.flush()
		if err := e.svc.CloseFiles(); err != nil {
			t.Fatal(err)
		}
		files, err := filepath.Glob(filepath.Join(dir, file, file+"-*.csv"))
		if err != nil || len(files) != 1 {
			t.Fatalf("files %v, %v", files, err)
		}
		f, _ := os.Open(files[0])
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{{"event_id", "order", "type", "n"}}
		for _, ev := range evs {
			want = append(want, []string{ev.ID, ev.AggregateID, ev.Type, "1"})
		}
		// Deliveries run in parallel (the connector is not fifo): any order.
		sortRows := func(rs [][]string) {
			slices.SortFunc(rs[1:], func(a, b []string) int { return strings.Compare(a[0], b[0]) })
		}
		sortRows(rows)
		sortRows(want)
		if !slices.EqualFunc(rows, want, slices.Equal) {
			t.Fatalf("rows %q, want %q", rows, want)
		}
		var page web.Page[Delivery]
		e.op.Do("GET", "/api/v1/admin/connectors/"+c.ID+"/deliveries", nil).Decode(t, &page)
		if len(page.Items) != 3 || page.Items[0].Log[0].Response != "appended to "+filepath.Base(files[0]) {
			t.Fatalf("deliveries %+v", page.Items)
		}
		// Another connector may not write the same file.
		r := e.op.Do("POST", "/api/v1/admin/connectors", map[string]any{"name": "WMS 2", "kind": "file_drop", "file": file,
			"events": []string{"order.*"}, "template": map[string]any{"a": "$.id"}})
		r.WantStatus(t, http.StatusConflict)
		if r.Problem.Code != "file_taken" {
			t.Fatalf("code %s", r.Problem.Code)
		}
	})
}

// Both kinds go through the webhooks' retry schedule on the fake clock,
// then the dead letters, from which a replay delivers: the same
// conformance as a webhook endpoint's.
func TestConnectorRetryDeadReplay(t *testing.T) {
	schedule := []time.Duration{5 * time.Second, 5 * time.Minute}
	for _, kind := range []string{KindHTTPJSON, KindFileDrop} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			forEachEngine(t, Config{Schedule: schedule, ConnectorDir: dir}, func(t *testing.T, e *env) {
				var mu sync.Mutex
				failing := true
				body := map[string]any{"name": "C", "kind": kind, "events": []string{"order.*"}, "template": map[string]any{"id": "$.id"}}
				var blocked string
				rc := newReceiver(t, e.clock.Now)
				switch kind {
				case KindHTTPJSON:
					rc.answer = func(int, received) (int, http.Header) {
						mu.Lock()
						defer mu.Unlock()
						if failing {
							return http.StatusBadGateway, nil
						}
						return http.StatusOK, nil
					}
					body["url"] = rc.URL()
				case KindFileDrop:
					// A plain file where the connector's directory should be.
					file := "f" + strings.ToLower(string(e.db.Engine()))
					blocked = filepath.Join(dir, file)
					if err := os.WriteFile(blocked, []byte("in the way"), 0o600); err != nil {
						t.Fatal(err)
					}
					body["file"] = file
				}
				c := e.connector(body)
				ev := e.emit("order.placed", "o1")[0]
				e.flush()
				for i, d := range schedule {
					st, n, next := e.delivery(c.ID, ev.ID)
					wait := next.Sub(e.clock.Now())
					if st != "pending" || n != i+1 || wait < d*9/10 || wait > d*11/10 {
						t.Fatalf("after try %d: %s, %d tries, next in %v; want pending, ~%v", i+1, st, n, wait, d)
					}
					e.clock.Advance(wait)
					e.flush()
				}
				if st, n, _ := e.delivery(c.ID, ev.ID); st != "dead" || n != 3 {
					t.Fatalf("after the last try: %s after %d, want dead after 3", st, n)
				}
				var page web.Page[Delivery]
				e.op.Do("GET", "/api/v1/admin/connectors/"+c.ID+"/dead-letters", nil).Decode(t, &page)
				if len(page.Items) != 1 || len(page.Items[0].Log) != 3 || page.Items[0].LastError == "" {
					t.Fatalf("dead letters %+v", page.Items)
				}
				mu.Lock()
				failing = false
				mu.Unlock()
				if blocked != "" {
					os.Remove(blocked)
				}
				// The webhooks' replay route does not see a connector.
				e.op.Do("POST", "/api/v1/admin/webhooks/"+c.ID+"/deliveries/"+page.Items[0].ID+"/replay", nil).WantStatus(t, http.StatusNotFound)
				r := e.op.Do("POST", "/api/v1/admin/connectors/"+c.ID+"/deliveries/"+page.Items[0].ID+"/replay", nil)
				r.WantStatus(t, http.StatusOK)
				e.flush()
				if st, _, _ := e.delivery(c.ID, ev.ID); st != "delivered" {
					t.Fatalf("after replay: %s", st)
				}
			})
		})
	}
}

// Registration refuses what it cannot deliver: the status and code, and
// the field the problem names.
func TestConnectorValidation(t *testing.T) {
	payloads := func() []event.TypeInfo {
		return []event.TypeInfo{{Type: "order.paid", Fields: []event.Field{{Name: "order_id"}, {Name: "amount"}}}}
	}
	cfg := Config{Resolver: fakeResolver{"erp.example": {"10.1.2.3"}, "public.example": {"93.184.216.34"}},
		Payloads: payloads, Secret: testSecret}
	ok := map[string]any{"id": "$.id"}
	tests := []struct {
		name   string
		body   map[string]any
		status int
		code   string
		field  string
	}{
		{"template does not parse", map[string]any{"kind": "http_json", "url": "https://public.example/x", "template": map[string]any{"a": "{{.id"}},
			422, "invalid_template", "template"},
		{"template names an unknown data field", map[string]any{"kind": "http_json", "url": "https://public.example/x",
			"template": map[string]any{"a": "$.data.colour"}}, 422, "invalid_template", "template"},
		{"template missing", map[string]any{"kind": "http_json", "url": "https://public.example/x"}, 422, "invalid_template", "template"},
		{"private URL", map[string]any{"kind": "http_json", "url": "https://erp.example/x", "template": ok}, 422, "validation_failed", "url"},
		{"not http", map[string]any{"kind": "http_json", "url": "ftp://public.example/x", "template": ok}, 422, "validation_failed", "url"},
		{"reserved header", map[string]any{"kind": "http_json", "url": "https://public.example/x", "template": ok,
			"headers": map[string]string{"webhook-signature": "x"}}, 422, "validation_failed", "headers.webhook-signature"},
		{"header with a line break", map[string]any{"kind": "http_json", "url": "https://public.example/x", "template": ok,
			"headers": map[string]string{"X-Key": "a\r\nb"}}, 422, "validation_failed", "headers.X-Key"},
		{"unknown kind", map[string]any{"kind": "smtp", "template": ok}, 422, "validation_failed", "kind"},
		{"unknown event type", map[string]any{"kind": "http_json", "url": "https://public.example/x", "template": ok,
			"events": []string{"order.teleported"}}, 422, "validation_failed", "events.0"},
		{"file with a path", map[string]any{"kind": "file_drop", "file": "../etc", "template": ok}, 422, "validation_failed", "file"},
		{"file with a dot", map[string]any{"kind": "file_drop", "file": "a.b", "template": ok}, 422, "validation_failed", "file"},
		{"bad format", map[string]any{"kind": "file_drop", "file": "a", "format": "xml", "template": ok}, 422, "validation_failed", "format"},
		{"rotation too small", map[string]any{"kind": "file_drop", "file": "a", "rotate_bytes": 10, "template": ok}, 422, "validation_failed", "rotate_bytes"},
		{"CSV nested", map[string]any{"kind": "file_drop", "file": "a", "format": "csv", "template": map[string]any{"a": map[string]any{"b": 1}}},
			422, "invalid_template", "template"},
		{"file_drop names event_id", map[string]any{"kind": "file_drop", "file": "a", "template": map[string]any{"event_id": "$.id"}},
			422, "invalid_template", "template"},
		{"bad channel code", map[string]any{"kind": "http_json", "url": "https://public.example/x", "template": ok,
			"channels": []string{"Amazon!"}}, 422, "validation_failed", "channels.0"},
		{"unknown field", map[string]any{"kind": "http_json", "url": "https://public.example/x", "template": ok, "secret": "x"}, 400, "malformed_request", ""},
	}
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		c := cfg
		c.ConnectorDir = t.TempDir()
		e := newEnv(t, db, c)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				body := map[string]any{"name": "X", "events": []string{"order.paid"}}
				for k, v := range tc.body {
					body[k] = v
				}
				r := e.op.Do("POST", "/api/v1/admin/connectors", body)
				r.WantStatus(t, tc.status)
				if r.Problem == nil || r.Problem.Code != tc.code {
					t.Fatalf("problem %s, want code %s", r.Body, tc.code)
				}
				if tc.field != "" && !slices.ContainsFunc(r.Problem.Errors, func(f errs.FieldError) bool { return f.Field == tc.field }) {
					t.Fatalf("errors %+v, want one naming %s", r.Problem.Errors, tc.field)
				}
			})
		}
		if n := sqldbtest.Count(t, db, `SELECT count(*) FROM webhooks_endpoints`); n != 0 {
			t.Fatalf("%d endpoints recorded by refused requests", n)
		}
		// Without webhooks.manage: 403, like the webhooks' routes.
		e.cs.Do("GET", "/api/v1/admin/connectors", nil).WantStatus(t, http.StatusForbidden)
		e.cs.Do("POST", "/api/v1/admin/connectors", map[string]any{"name": "X"}).WantStatus(t, http.StatusForbidden)
		// file_drop without the operator's directory is refused.
		noDir := *e.svc
		noDir.cfg.ConnectorDir = ""
		_, err := noDir.CreateConnector(context.Background(), e.opID, ConnectorRequest{Name: "X", Kind: KindFileDrop, File: "a",
			Events: []string{"order.paid"}, Template: []byte(`{"a":"$.id"}`)})
		if err == nil || !strings.Contains(err.Error(), "validation_failed") {
			t.Fatalf("file_drop without --connector-dir: %v", err)
		}
	}, sources()...)
}
