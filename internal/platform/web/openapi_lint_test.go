package web_test

import (
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"mercato/internal/platform/web"
)

// openapiOut makes TestOpenAPILint write the document it checks, for the npm
// linters the Go rules mirror:
//
//	go test ./internal/platform/web -run TestOpenAPILint -openapi-out=FILE
//	npx @redocly/cli lint FILE
//	npx @stoplight/spectral-cli lint -r spectral:oas FILE   (a ruleset file that extends it)
var openapiOut = flag.String("openapi-out", "", "write the OpenAPI document TestOpenAPILint checks to this file")

// TestOpenAPILint checks, without npm, the rules of Redocly's "recommended"
// set and Spectral's "oas" ruleset that the generated document used to
// break, on a router with routes of every kind: security declared on every
// operation (security: [] when Public), a non-empty servers list of
// relative URLs, a description on every operation and tag, info with a
// contact and a licence that has an identifier or URL, tags defined at the
// root, unique operation ids, a 4XX response on every operation.
func TestOpenAPILint(t *testing.T) {
	rt := openAPIRouter(t)
	raw := rt.OpenAPI()
	if *openapiOut != "" {
		if err := os.WriteFile(*openapiOut, raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var doc struct {
		Info struct {
			Description string
			Contact     *struct{ Name, URL, Email string }
			License     *struct{ Name, Identifier, URL string }
		}
		Servers []struct{ URL, Description string }
		Tags    []struct{ Name, Description string }
		Paths   map[string]map[string]struct {
			OperationID string            `json:"operationId"`
			Summary     string            `json:"summary"`
			Description string            `json:"description"`
			Tags        []string          `json:"tags"`
			Security    *[]map[string]any `json:"security"`
			Responses   map[string]any    `json:"responses"`
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	t.Run("info", func(t *testing.T) {
		if doc.Info.Description == "" || doc.Info.Contact == nil || doc.Info.Contact.Name == "" {
			t.Errorf("info without a description or contact: %+v", doc.Info)
		}
		if l := doc.Info.License; l == nil || l.Name == "" || l.Identifier == "" && l.URL == "" {
			t.Errorf("info.license %+v: want a name and an identifier or url", l)
		}
	})
	t.Run("servers", func(t *testing.T) {
		if len(doc.Servers) == 0 {
			t.Fatalf("no servers")
		}
		for _, s := range doc.Servers {
			if !strings.HasPrefix(s.URL, "/") || strings.HasPrefix(s.URL, "//") || s.Description == "" {
				t.Errorf("server %+v: want a described relative URL that names no host", s)
			}
		}
	})
	tags := map[string]bool{}
	for _, tag := range doc.Tags {
		tags[tag.Name] = true
		if tag.Description == "" {
			t.Errorf("tag %s has no description", tag.Name)
		}
	}
	ids := map[string]string{}
	var ops []string
	for path, item := range doc.Paths {
		for method, op := range item {
			ops = append(ops, method+" "+path)
			where := method + " " + path
			switch {
			case op.Security == nil:
				t.Errorf("%s: no security (a public operation needs security: [])", where)
			case op.Summary == "" || op.Description == "":
				t.Errorf("%s: summary %q, description %q", where, op.Summary, op.Description)
			}
			if other, dup := ids[op.OperationID]; dup || op.OperationID == "" {
				t.Errorf("%s: operationId %q is empty or also %s's", where, op.OperationID, other)
			}
			ids[op.OperationID] = where
			for _, tag := range op.Tags {
				if !tags[tag] {
					t.Errorf("%s: tag %s is not defined at the root", where, tag)
				}
			}
			has4xx := false
			for code := range op.Responses {
				has4xx = has4xx || strings.HasPrefix(code, "4")
			}
			if !has4xx {
				t.Errorf("%s: no 4XX response", where)
			}
		}
	}
	sort.Strings(ops)
	if len(ops) < 10 {
		t.Errorf("only %d operations checked: %v", len(ops), ops)
	}
	t.Run("descriptions say who may call", func(t *testing.T) {
		for _, tt := range []struct{ method, path, want string }{
			{"get", "/healthz", "Public"},
			{"get", "/api/v1/orders/{id}", "Needs a bearer token."},
			{"get", "/api/v1/admin/orders/{id}/lines/{sku}", "`orders:read`"},
			{"post", "/api/v1/orders", "Idempotency-Key"},
			{"get", "/api/v1/orders", "next_cursor"},
		} {
			if d := doc.Paths[tt.path][tt.method].Description; !strings.Contains(d, tt.want) {
				t.Errorf("%s %s: description %q lacks %q", tt.method, tt.path, d, tt.want)
			}
		}
	})
}

// TestOpenAPIConfig: the router's Config reaches the document's info and tags.
func TestOpenAPIConfig(t *testing.T) {
	rt := web.NewRouter(web.Config{Service: "shop", Contact: "Shop team", License: "Apache-2.0",
		Tags: map[string]string{"orders": "Placing and following orders."}})
	h := func(w http.ResponseWriter, r *http.Request) {}
	rt.Handle(web.Route{Method: "GET", Path: "/o", Tag: "orders", Summary: "List", Description: "Lists orders, newest first.", Handler: h})
	rt.Handle(web.Route{Method: "GET", Path: "/c", Tag: "carts", Handler: h})
	var doc struct {
		Info struct {
			Contact struct{ Name string }
			License struct{ Name, Identifier string }
		}
		Tags  []struct{ Name, Description string }
		Paths map[string]map[string]struct{ Description string }
	}
	if err := json.Unmarshal(rt.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Info.Contact.Name != "Shop team" || doc.Info.License.Identifier != "Apache-2.0" {
		t.Errorf("info %+v", doc.Info)
	}
	want := map[string]string{"orders": "Placing and following orders.", "carts": "Operations of carts."}
	for _, tag := range doc.Tags {
		if want[tag.Name] != tag.Description {
			t.Errorf("tag %s: %q, want %q", tag.Name, tag.Description, want[tag.Name])
		}
	}
	if d := doc.Paths["/o"]["get"].Description; !strings.HasPrefix(d, "Lists orders, newest first.") {
		t.Errorf("the route's description is not used: %q", d)
	}
}

// TestSchemaMaxLength: the document states the maximum Decode enforces, from
// the same tag, for every string a request type holds.
func TestSchemaMaxLength(t *testing.T) {
	rt := web.NewRouter(web.Config{})
	rt.Handle(web.Route{Method: "POST", Path: "/signup", Request: signup{}, Response: web.Page[address]{},
		Handler: func(w http.ResponseWriter, r *http.Request) {}})
	raw := rt.OpenAPI()
	var doc struct {
		Components struct{ Schemas map[string]map[string]any }
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	props := func(name string) map[string]any {
		p, _ := doc.Components.Schemas[name]["properties"].(map[string]any)
		return p
	}
	maxOf := func(s any, path ...string) any {
		for _, k := range path {
			m, _ := s.(map[string]any)
			s = m[k]
		}
		m, _ := s.(map[string]any)
		return m["maxLength"]
	}
	tests := []struct {
		name string
		got  any
		want float64
	}{
		{"tagged field", maxOf(props("signup")["email"]), 254},
		{"untagged field", maxOf(props("signup")["name"]), web.DefaultMaxLen},
		{"list elements", maxOf(props("signup")["tags"], "items"), 8},
		{"map values", maxOf(props("signup")["attrs"], "additionalProperties"), 16},
		{"nested struct's tag", maxOf(props("address")["line1"]), 10},
		{"nested untagged list", maxOf(props("address")["notes"], "items"), web.DefaultMaxLen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("maxLength %v, want %v", tt.got, tt.want)
			}
		})
	}
	t.Run("a Page is documented as its fields", func(t *testing.T) {
		p := props("Page_address")
		if p["items"] == nil || p["next_cursor"] == nil {
			t.Errorf("Page_address properties %v", p)
		}
	})
	t.Run("the schema refuses what Decode refuses", func(t *testing.T) {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(string(raw)))
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		if err := c.AddResource("openapi.json", v); err != nil {
			t.Fatal(err)
		}
		sch, err := c.Compile("openapi.json#/components/schemas/signup")
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			body string
			ok   bool
		}{
			{`{"email":"` + strings.Repeat("é", 254) + `","password":"p","name":"n"}`, true},
			{`{"email":"` + strings.Repeat("é", 255) + `","password":"p","name":"n"}`, false},
		} {
			inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(tt.body))
			schemaOK := sch.Validate(inst) == nil
			_, decodeErr := decode(tt.body)
			if schemaOK != tt.ok || (decodeErr == nil) != tt.ok {
				t.Errorf("%.40s…: schema ok %v, Decode err %v; want ok %v", tt.body, schemaOK, decodeErr, tt.ok)
			}
		}
	})
}
