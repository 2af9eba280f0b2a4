package web_test

import (
	"io"
	"log/slog"
	"net/http"
	"testing"

	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

// TestBodyType: a route that declares a BodyType reads that media type and
// refuses any other (JSON too) with 415; other routes still read JSON only.
func TestBodyType(t *testing.T) {
	rt := web.NewRouter(web.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	echo := func(w http.ResponseWriter, r *http.Request) {
		b, err := web.Body(r)
		if err != nil {
			web.Error(w, r, err)
			return
		}
		web.JSON(w, http.StatusOK, map[string]int{"bytes": len(b)})
	}
	rt.Handle(web.Route{Method: "POST", Path: "/csv", BodyType: "text/csv", Handler: echo})
	rt.Handle(web.Route{Method: "POST", Path: "/json", Handler: echo})
	c := webtest.Start(t, rt)
	tests := []struct {
		path, contentType string
		status            int
	}{
		{"/csv", "text/csv", 200},
		{"/csv", "text/csv; charset=utf-8", 200},
		{"/csv", "text/csv; charset=latin1", 415},
		{"/csv", "application/json", 415},
		{"/csv", "text/plain", 415},
		{"/json", "text/csv", 415},
		{"/json", "application/json", 200},
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+tc.contentType, func(t *testing.T) {
			r := c.Do("POST", tc.path, `{"a":1}`, "Content-Type: "+tc.contentType)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if tc.status == 415 {
				webtest.AssertProblem(t, r, 415, "unsupported_media_type")
			}
		})
	}
}
