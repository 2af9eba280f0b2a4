package audit

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
)

// tokens is a fake Authenticator: the bearer token names the user, and only
// "auditor" holds audit.read.
type tokens struct{}

func (tokens) Authenticate(r *http.Request) (web.Principal, bool, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return web.Principal{}, false, nil
	}
	if tok != "auditor" && tok != "clerk" {
		return web.Principal{}, false, errs.E("test", errs.Unauthorized, "bad token")
	}
	return web.Principal{UserID: tok, Roles: []string{tok}}, true, nil
}

func (tokens) Allowed(p web.Principal, perm string) bool {
	return perm == PermRead && p.HasRole("auditor")
}

// server serves the audit routes through the real router, plus a test-only
// route that records an entry inside a request (to see the request id).
func server(t *testing.T, db *sqldb.DB) *httptest.Server {
	t.Helper()
	rt := web.NewRouter(web.Config{Auth: tokens{}, Logger: slog.New(slog.DiscardHandler)})
	for _, r := range Routes(NewLog(db)) {
		rt.Handle(r)
	}
	rt.Handle(web.Route{Method: http.MethodGet, Path: "/test/record", Access: web.Authenticated,
		Handler: func(w http.ResponseWriter, r *http.Request) {
			err := db.InTx(r.Context(), func(tx *sqldb.Tx) error {
				p, _ := web.PrincipalFrom(r.Context())
				return Record(r.Context(), tx, Entry{ActorID: p.UserID, Action: "test.recorded",
					TargetType: "test", TargetID: r.URL.Query().Get("id"), IP: "198.51.100.7"})
			})
			if err != nil {
				web.Error(w, r, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}})
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path, token string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestHTTPList(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		srv := server(t, db)
		for _, id := range []string{"a", "b", "c"} {
			resp, body := get(t, srv, "/test/record?id="+id, "clerk", web.HeaderRequestID, "req-"+id)
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("record: %d %s", resp.StatusCode, body)
			}
		}

		resp, body := get(t, srv, "/api/v1/admin/audit?limit=2", "auditor")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("list: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var page Page
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 2 || page.NextCursor == "" {
			t.Fatalf("page = %s", body)
		}
		first := page.Items[0]
		if first.TargetID != "c" || first.RequestID != "req-c" || first.ActorID != "clerk" || first.IP != "198.51.100.7" {
			t.Fatalf("newest entry = %+v; want target c, request id req-c from the request", first)
		}
		if time.Since(first.CreatedAt) > time.Minute || first.CreatedAt.Location() != time.UTC {
			t.Fatalf("created_at = %v", first.CreatedAt)
		}

		resp, body = get(t, srv, "/api/v1/admin/audit?limit=2&cursor="+url.QueryEscape(page.NextCursor), "auditor")
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"target_id":"a"`) ||
			strings.Contains(string(body), "next_cursor") {
			t.Fatalf("second page: %d %s", resp.StatusCode, body)
		}

		since := url.QueryEscape(first.CreatedAt.Add(-time.Hour).Format(time.RFC3339))
		resp, body = get(t, srv, "/api/v1/admin/audit?actor=clerk&action=test.recorded&target_type=test&target_id=b&since="+since+"&limit=", "auditor")
		if resp.StatusCode != http.StatusOK || strings.Count(string(body), `"id":`) != 1 || !strings.Contains(string(body), `"request_id":"req-b"`) {
			t.Fatalf("filtered: %d %s", resp.StatusCode, body)
		}
		resp, body = get(t, srv, "/api/v1/admin/audit?actor=nobody", "auditor")
		if resp.StatusCode != http.StatusOK || string(body) != `{"items":[]}` {
			t.Fatalf("empty: %d %s", resp.StatusCode, body)
		}
		resp, body = get(t, srv, "/api/v1/admin/audit?limit=99999999999999999999999", "auditor")
		if resp.StatusCode != http.StatusOK || strings.Count(string(body), `"id":`) != 3 {
			t.Fatalf("a huge limit is capped, not refused: %d %s", resp.StatusCode, body)
		}
	}, Migrations())
}

func TestHTTPRefusals(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite, Migrations())
	srv := server(t, db)
	tests := []struct {
		name, query, token string
		status             int
		code               string
		fields             []string
	}{
		{"no token", "", "", 401, "unauthorized", nil},
		{"bad token", "", "forged", 401, "unauthorized", nil},
		{"role without audit.read", "", "clerk", 403, "forbidden", nil},
		{"limit not a number", "limit=ten", "auditor", 422, "validation_failed", []string{"limit"}},
		{"limit zero", "limit=0", "auditor", 422, "validation_failed", []string{"limit"}},
		{"limit negative", "limit=-5", "auditor", 422, "validation_failed", []string{"limit"}},
		{"limit fractional", "limit=1.5", "auditor", 422, "validation_failed", []string{"limit"}},
		{"since not RFC 3339", "since=yesterday", "auditor", 422, "validation_failed", []string{"since"}},
		{"until a date only", "until=2026-03-01", "auditor", 422, "validation_failed", []string{"until"}},
		{"two bad times", "since=x&until=y&limit=z", "auditor", 422, "validation_failed", []string{"limit", "since", "until"}},
		{"until before since", "since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "auditor", 422, "validation_failed", []string{"until"}},
		{"forged cursor", "cursor=not-a-cursor", "auditor", 422, "validation_failed", []string{"cursor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, srv, "/api/v1/admin/audit?"+tt.query, tt.token)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d %s, want %d problem: %s", resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, body)
			}
			var p web.Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			if p.Code != tt.code || p.Status != tt.status {
				t.Fatalf("problem = %+v, want code %s", p, tt.code)
			}
			var fields []string
			for _, f := range p.Errors {
				fields = append(fields, f.Field)
			}
			if strings.Join(fields, ",") != strings.Join(tt.fields, ",") {
				t.Fatalf("fields = %v, want %v", fields, tt.fields)
			}
		})
	}
	t.Run("other methods", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodDelete, srv.URL+"/api/v1/admin/audit", nil)
		req.Header.Set("Authorization", "Bearer auditor")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("DELETE = %d, want 405: the log has no delete", resp.StatusCode)
		}
	})
}

func TestRouteDeclaration(t *testing.T) {
	rs := Routes(NewLog(nil))
	if len(rs) != 1 {
		t.Fatalf("%d routes", len(rs))
	}
	r := rs[0]
	if r.Pattern() != "GET /api/v1/admin/audit" || r.Access.Perm() != "audit.read" || r.Tag != "audit" {
		t.Fatalf("route = %s, perm %q, tag %q", r.Pattern(), r.Access.Perm(), r.Tag)
	}
	if _, ok := r.Response.(Page); !ok {
		t.Fatalf("Response is %T, want Page", r.Response)
	}
	rt := web.NewRouter(web.Config{Logger: slog.New(slog.DiscardHandler)})
	rt.Handle(r)
	doc := string(rt.OpenAPI())
	for _, want := range []string{`"/api/v1/admin/audit"`, `"next_cursor"`, `"request_id"`, `"target_type"`, `"audit"`} {
		if !strings.Contains(doc, want) {
			t.Errorf("OpenAPI document lacks %s", want)
		}
	}
}
