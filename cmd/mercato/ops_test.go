package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"mercato/internal/platform/web/webtest"
)

// logRecords decodes the JSON log lines in s (other lines are skipped).
func logRecords(t *testing.T, s string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var r map[string]any
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			recs = append(recs, r)
		}
	}
	return recs
}

// findRecord returns the first record whose msg is msg, or nil.
func findRecord(recs []map[string]any, msg string) map[string]any {
	for _, r := range recs {
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

// TestStartupLog checks what serve logs when it starts: where the data
// lives (absolute) and the "listening" record, in both log formats.
func TestStartupLog(t *testing.T) {
	t.Run("json", func(t *testing.T) {
		dir := t.TempDir()
		c, _, logs := startWithLogs(t, nil, "--data-dir", dir, "--log-level", "info", "--log-format", "json")
		recs := logRecords(t, logs.String())
		data := findRecord(recs, "data directory")
		if data == nil || data["dir"] != dir || data["holds"] != "database, bus, search index" || data["reset"] == nil {
			t.Errorf("data directory record = %v\n%s", data, logs.String())
		}
		l := findRecord(recs, "listening")
		if l == nil || l["url"] != c.URL() || l["database"] != "sqlite" || l["bus"] != "embedded NATS JetStream" {
			t.Errorf("listening record = %v, want url %s", l, c.URL())
		}
	})
	t.Run("text", func(t *testing.T) {
		c, _, logs := startWithLogs(t, nil, "--data-dir", t.TempDir(), "--log-level", "info", "--log-format", "text")
		if !strings.Contains(logs.String(), "msg=listening url="+c.URL()) {
			t.Errorf("no text listening record:\n%s", logs.String())
		}
		if len(logRecords(t, logs.String())) != 0 {
			t.Errorf("JSON records in the text log:\n%s", logs.String())
		}
	})
	t.Run("warn hides info", func(t *testing.T) {
		_, _, logs := startWithLogs(t, nil, "--data-dir", t.TempDir(), "--log-level", "warn")
		if findRecord(logRecords(t, logs.String()), "listening") != nil {
			t.Errorf("info record at level warn:\n%s", logs.String())
		}
	})
}

var metricsRE = regexp.MustCompile(`metrics on (http://\S+)`)

// TestMetricsAddr checks where GET /metrics is served: on the API listener
// by default, only on its own listener with --metrics-addr.
func TestMetricsAddr(t *testing.T) {
	get := func(t *testing.T, url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	t.Run("default: on the API listener", func(t *testing.T) {
		c, out := startInProcess(t, nil, "--data-dir", t.TempDir())
		if status, body := get(t, c.URL()+"/metrics"); status != http.StatusOK || !strings.Contains(body, "go_goroutines") {
			t.Errorf("GET /metrics = %d %.200s", status, body)
		}
		if metricsRE.MatchString(out.String()) {
			t.Errorf("a metrics listener was announced: %s", out.String())
		}
	})
	t.Run("separate listener only", func(t *testing.T) {
		c, out := startInProcess(t, nil, "--data-dir", t.TempDir(), "--metrics-addr", "127.0.0.1:0")
		m := metricsRE.FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("no metrics listener announced: %s", out.String())
		}
		c.Do("GET", "/healthz", nil).WantStatus(t, http.StatusOK)
		status, body := get(t, m[1])
		if status != http.StatusOK || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "http_") {
			t.Errorf("GET %s = %d %.300s", m[1], status, body)
		}
		webtest.AssertProblem(t, c.Do("GET", "/metrics", nil), http.StatusNotFound, "not_found")
		doc := c.Do("GET", "/api/v1/openapi.json", nil)
		doc.WantStatus(t, http.StatusOK)
		if paths, _ := doc.Field("paths").(map[string]any); paths["/metrics"] != nil || paths["/healthz"] == nil {
			t.Errorf("OpenAPI paths: /metrics %v, /healthz %v", paths["/metrics"], paths["/healthz"])
		}
	})
}
