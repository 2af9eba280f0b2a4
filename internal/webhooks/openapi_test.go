package webhooks

import (
	"net/http"
	"testing"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web/webtest"
)

// The module's routes are in the OpenAPI document and its answers match
// the schemas the document gives.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t, sqldbtest.Open(t, sqldb.SQLite, sources()...), Config{AllowPrivate: true})
	spec := webtest.CheckOpenAPI(t, e.router)
	rc := newReceiver(t, e.clock.Now)
	r := e.op.Do("POST", "/api/v1/admin/webhooks", map[string]any{"url": rc.URL(), "events": []string{"order.*"},
		"description": "ERP", "fifo": true})
	r.WantStatus(t, http.StatusCreated)
	spec.ValidateResponse(t, "POST", "/api/v1/admin/webhooks", r)
	id := r.Field("id").(string)
	e.emit("order.placed", "o1")
	e.flush()
	r = e.op.Do("POST", "/api/v1/admin/webhooks/"+id+"/test", nil)
	r.WantStatus(t, http.StatusAccepted)
	spec.ValidateResponse(t, "POST", "/api/v1/admin/webhooks/{id}/test", r)
	r = e.op.Do("POST", "/api/v1/admin/webhooks/"+id+"/rotate-secret", nil)
	r.WantStatus(t, http.StatusOK)
	spec.ValidateResponse(t, "POST", "/api/v1/admin/webhooks/{id}/rotate-secret", r)
	r = e.op.Do("PATCH", "/api/v1/admin/webhooks/"+id, map[string]any{"enabled": false})
	r.WantStatus(t, http.StatusOK)
	spec.ValidateResponse(t, "PATCH", "/api/v1/admin/webhooks/{id}", r)
	r = e.op.Do("POST", "/api/v1/admin/webhooks/"+id+"/replay", map[string]any{})
	r.WantStatus(t, http.StatusOK)
	spec.ValidateResponse(t, "POST", "/api/v1/admin/webhooks/{id}/replay", r)
	for path, pattern := range map[string]string{
		"/api/v1/admin/webhooks":                       "/api/v1/admin/webhooks",
		"/api/v1/admin/webhooks/" + id:                 "/api/v1/admin/webhooks/{id}",
		"/api/v1/admin/webhooks/" + id + "/deliveries": "/api/v1/admin/webhooks/{id}/deliveries",
		"/api/v1/admin/sync/webhooks":                  "/api/v1/admin/sync/webhooks",
	} {
		r := e.op.Do("GET", path, nil)
		r.WantStatus(t, http.StatusOK)
		spec.ValidateResponse(t, "GET", pattern, r)
	}
}
