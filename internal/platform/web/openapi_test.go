package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"mercato/internal/platform/web"
	"mercato/internal/platform/web/webtest"
)

// price has its own JSON form and says so with JSONSchema.
type price struct{ minor int64 }

func (p price) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"amount":%d,"currency":"EUR"}`, p.minor), nil
}

func (price) JSONSchema() map[string]any {
	return map[string]any{"type": "object", "required": []string{"amount", "currency"},
		"properties": map[string]any{"amount": map[string]any{"type": "integer"},
			"currency": map[string]any{"type": "string", "pattern": "^[A-Z]{3}$"}}}
}

// opaque has its own JSON form and no schema: documented as any value.
type opaque struct{}

func (opaque) MarshalJSON() ([]byte, error) { return []byte(`[1,"two"]`), nil }

type status string

func (s status) MarshalText() ([]byte, error) { return []byte(s), nil }

type base struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
}

type extra struct {
	Gift bool `json:"gift"`
}

type order struct {
	base
	*extra
	ID      int             `json:"order_id"` // not the embedded id
	Status  status          `json:"status"`
	Note    *string         `json:"note"`
	Meta    map[string]int  `json:"meta"`
	Raw     json.RawMessage `json:"raw"`
	Any     any             `json:"any"`
	Price   price           `json:"price"`
	Opaque  opaque          `json:"opaque"`
	Tags    [2]string       `json:"tags"`
	Blob    []byte          `json:"blob"`
	Count   uint            `json:"count,string"`
	Skipped string          `json:"-"`
	hidden  string
	Maybe   time.Time `json:"maybe,omitzero"`
	Lines   []line    `json:"lines"`
	Parent  *order    `json:"parent,omitempty"`
}

type line struct {
	SKU string `json:"sku"`
	Qty int32  `json:"quantity"`
}

type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

type orderIn struct {
	Lines []line `json:"lines"`
	Note  string `json:"note,omitempty"`
}

func openAPIRouter(t *testing.T) *web.Router {
	h := func(w http.ResponseWriter, r *http.Request) {}
	rt := web.NewRouter(web.Config{Logger: slogJSON(io.Discard), Service: "shop", Version: "1.2.3"})
	rt.Handle(web.Route{Method: "POST", Path: "/api/v1/orders", Tag: "orders", Summary: "Place an order",
		Access: web.Authenticated, Request: orderIn{}, Response: order{}, Status: 201, Handler: h})
	rt.Handle(web.Route{Method: "GET", Path: "/api/v1/orders", Tag: "orders", Access: web.Authenticated,
		Query: []string{"limit", "cursor"}, Response: page[order]{}, Handler: h})
	rt.Handle(web.Route{Method: "GET", Path: "/api/v1/orders/{id}", Tag: "orders", Access: web.Authenticated,
		Response: &order{}, Handler: h})
	rt.Handle(web.Route{Method: "GET", Path: "/api/v1/admin/orders/{id}/lines/{sku...}", Tag: "admin",
		Access: web.Permission("orders:read"), Response: []line{}, Handler: h})
	rt.Handle(web.Route{Method: "POST", Path: "/api/v1/auth/logout", Tag: "accounts", Access: web.Authenticated,
		Status: 204, Handler: h})
	rt.Handle(web.Route{Method: "GET", Path: "/{$}", Handler: h})
	type line struct { // a second type named line: qualified in the document
		Other bool `json:"other"`
	}
	rt.Handle(web.Route{Method: "GET", Path: "/api/v1/zz/lines", Response: []line{}, Handler: h})
	rt.HandleOps(nil)
	return rt
}

func TestOpenAPIDocument(t *testing.T) {
	rt := openAPIRouter(t)
	webtest.CheckOpenAPI(t, rt)
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct{ Title, Version string }
		Paths   map[string]map[string]struct {
			OperationID string              `json:"operationId"`
			Summary     string              `json:"summary"`
			Tags        []string            `json:"tags"`
			Permission  string              `json:"x-permission"`
			Security    []map[string][]any  `json:"security"`
			Parameters  []map[string]any    `json:"parameters"`
			RequestBody map[string]any      `json:"requestBody"`
			Responses   map[string]struct{} `json:"responses"`
		}
		Components struct {
			Schemas map[string]map[string]any
		}
	}
	if err := json.Unmarshal(rt.OpenAPI(), &doc); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	if doc.OpenAPI != "3.1.0" || doc.Info.Title != "shop" || doc.Info.Version != "1.2.3" {
		t.Errorf("openapi %q, info %+v", doc.OpenAPI, doc.Info)
	}
	tests := []struct {
		method, path, opID, perm string
		secured                  bool
		params                   []string // name@in
		body                     bool
		responses                []string
	}{
		{"post", "/api/v1/orders", "postApiV1Orders", "", true, []string{"Idempotency-Key@header"}, true,
			[]string{"201", "401", "4XX", "5XX"}},
		{"get", "/api/v1/orders", "getApiV1Orders", "", true, []string{"limit@query", "cursor@query"}, false,
			[]string{"200", "401", "4XX", "5XX"}},
		{"get", "/api/v1/orders/{id}", "getApiV1OrdersById", "", true, []string{"id@path"}, false,
			[]string{"200", "401"}},
		{"get", "/api/v1/admin/orders/{id}/lines/{sku}", "getApiV1AdminOrdersByIdLinesBySku", "orders:read", true,
			[]string{"id@path", "sku@path"}, false, []string{"200", "401", "403"}},
		{"post", "/api/v1/auth/logout", "postApiV1AuthLogout", "", true, []string{"Idempotency-Key@header"}, false,
			[]string{"204"}},
		{"get", "/", "get", "", false, nil, false, []string{"200", "4XX", "5XX"}},
		{"get", "/healthz", "getHealthz", "", false, nil, false, []string{"200"}},
		{"get", "/metrics", "getMetrics", "", false, nil, false, []string{"200"}},
		{"get", "/api/v1/openapi.json", "getApiV1OpenapiJson", "", false, nil, false, []string{"200"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			op, ok := doc.Paths[tt.path][tt.method]
			if !ok {
				t.Fatalf("no operation")
			}
			if op.OperationID != tt.opID {
				t.Errorf("operationId %q, want %q", op.OperationID, tt.opID)
			}
			if op.Permission != tt.perm {
				t.Errorf("x-permission %q, want %q", op.Permission, tt.perm)
			}
			if (len(op.Security) > 0) != tt.secured {
				t.Errorf("security %v, want secured=%v", op.Security, tt.secured)
			}
			var params []string
			for _, p := range op.Parameters {
				params = append(params, fmt.Sprint(p["name"], "@", p["in"]))
			}
			if strings.Join(params, ",") != strings.Join(tt.params, ",") {
				t.Errorf("parameters %v, want %v", params, tt.params)
			}
			if (op.RequestBody != nil) != tt.body {
				t.Errorf("requestBody %v, want present=%v", op.RequestBody, tt.body)
			}
			for _, code := range tt.responses {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("no %s response: %v", code, op.Responses)
				}
			}
			if len(op.Tags) != 1 || op.Summary == "" {
				t.Errorf("tags %v, summary %q", op.Tags, op.Summary)
			}
		})
	}
	t.Run("component names", func(t *testing.T) {
		for _, name := range []string{"order", "base", "line", "web_test.line", "page_order", "orderIn",
			"ProblemDocument", "FieldError", "Health", "Readiness"} {
			if _, ok := doc.Components.Schemas[name]; !ok && name != "base" {
				t.Errorf("no component %s; have %v", name, keys(doc.Components.Schemas))
			}
		}
		if _, ok := doc.Components.Schemas["base"]; ok {
			t.Errorf("an embedded struct became a component of its own")
		}
	})
}

// TestSchemasDescribeEncodings checks the generated schemas against what
// encoding/json really produces for each type — and that they reject what
// it would not produce.
func TestSchemasDescribeEncodings(t *testing.T) {
	rt := openAPIRouter(t)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(rt.OpenAPI()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	note := "fragile"
	full := order{base: base{ID: "o1", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		extra: &extra{Gift: true}, ID: 7, Status: "paid", Note: &note, Meta: map[string]int{"a": 1},
		Raw: json.RawMessage(`{"x":[1]}`), Any: 3.5, Price: price{1299}, Tags: [2]string{"a", "b"},
		Blob: []byte{1, 2}, Count: 4, Maybe: time.Now(), Lines: []line{{"SKU-1", 2}}}
	sparse := order{Meta: map[string]int{}, Lines: []line{}} // nil pointers, zero values
	sparse.Parent = &full
	tests := []struct {
		name, schema string
		value        any    // encoded with encoding/json
		raw          string // or given as it is
		valid        bool
	}{
		{"full order", "order", full, "", true},
		{"sparse order with a parent", "order", sparse, "", true},
		{"a page of orders", "page_order", page[order]{Items: []order{full}}, "", true},
		{"an empty page", "page_order", page[order]{Items: []order{}}, "", true},
		{"problem document", "ProblemDocument", web.ProblemOf(fmt.Errorf("x")), "", true},
		{"missing required field", "line", nil, `{"sku":"a"}`, false},
		{"wrong type", "line", nil, `{"sku":"a","quantity":"2"}`, false},
		{"bad date", "order", nil, strings.Replace(mustJSON(t, full), "2026-01-02T03:04:05Z", "yesterday", 1), false},
		{"null list", "page_order", nil, `{"items":null}`, false},
		{"price by its own schema", "order", nil, strings.Replace(mustJSON(t, full), `"currency":"EUR"`, `"currency":"euro"`, 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sch, err := c.Compile("openapi.json#/components/schemas/" + tt.schema)
			if err != nil {
				t.Fatalf("compile %s: %v", tt.schema, err)
			}
			raw := tt.raw
			if tt.value != nil {
				raw = mustJSON(t, tt.value)
			}
			v, err := jsonschema.UnmarshalJSON(strings.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			err = sch.Validate(v)
			if tt.valid && err != nil {
				t.Errorf("%s rejects %s: %v", tt.schema, raw, err)
			}
			if !tt.valid && err == nil {
				t.Errorf("%s accepts %s", tt.schema, raw)
			}
		})
	}
}

// TestCheckDocumentFindsMissingRoutes proves the OpenAPI check fails a test
// when a registered route is missing from the document.
func TestCheckDocumentFindsMissingRoutes(t *testing.T) {
	rt := openAPIRouter(t)
	var doc map[string]any
	if err := json.Unmarshal(rt.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	paths := doc["paths"].(map[string]any)
	delete(paths["/api/v1/orders"].(map[string]any), "get")
	delete(paths, "/healthz")
	trimmed, _ := json.Marshal(doc)

	rec := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		webtest.CheckDocument(rec, trimmed, rt.Routes())
	}()
	<-done
	all := strings.Join(rec.errors, "\n")
	for _, want := range []string{"GET /api/v1/orders is missing", "GET /healthz is missing"} {
		if !strings.Contains(all, want) {
			t.Errorf("the check did not report %q; it reported:\n%s", want, all)
		}
	}
	if len(rec.errors) != 2 {
		t.Errorf("%d errors, want 2:\n%s", len(rec.errors), all)
	}
}

// recordingTB records the failures of a check instead of failing the test.
type recordingTB struct {
	testing.TB
	errors []string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
