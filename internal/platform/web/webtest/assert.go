package webtest

import (
	"bytes"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"mercato/internal/platform/web"
)

// internalText are fragments that betray internals: SQL, Go runtime and
// source detail. None may appear in what a client sees.
var internalText = []string{"sql", "panic", "goroutine", ".go:", "runtime error", "nil pointer", "pgx", "pq:"}

// AssertNoInternalText fails the test when body holds a fragment of
// internal detail (case-insensitive).
func AssertNoInternalText(t testing.TB, body []byte) {
	t.Helper()
	lower := bytes.ToLower(body)
	for _, frag := range internalText {
		if bytes.Contains(lower, []byte(strings.ToLower(frag))) {
			t.Errorf("the answer reveals internal detail (%q): %s", frag, body)
		}
	}
}

// AssertProblem fails the test unless r is a problem document (RFC 9457,
// application/problem+json) with HTTP status and body status equal to
// status, the stable code, a type and title, an errors array (never null),
// and no internal text. It returns the problem for further checks.
func AssertProblem(t testing.TB, r *Response, status int, code string) *web.Problem {
	t.Helper()
	if r.Status != status {
		t.Errorf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("content type %q, want application/problem+json; body: %s", ct, r.Body)
	}
	p := r.Problem
	if p == nil {
		t.Fatalf("no problem document: %s", r.Body)
	}
	if p.Status != status {
		t.Errorf("problem status %d, want %d", p.Status, status)
	}
	if p.Code != code {
		t.Errorf("problem code %q, want %q; body: %s", p.Code, code, r.Body)
	}
	if p.Type == "" || p.Title == "" {
		t.Errorf("problem without type or title: %s", r.Body)
	}
	if !bytes.Contains(r.Body, []byte(`"errors":[`)) {
		t.Errorf("problem errors is not an array: %s", r.Body)
	}
	AssertNoInternalText(t, r.Body)
	return p
}

// AssertFieldError fails the test unless p names field among its errors.
func AssertFieldError(t testing.TB, p *web.Problem, field string) {
	t.Helper()
	for _, fe := range p.Errors {
		if fe.Field == field {
			return
		}
	}
	t.Errorf("the problem does not name field %q: %+v", field, p.Errors)
}

// Spec is a router's OpenAPI document with its schemas compiled.
type Spec struct {
	doc      any
	compiler *jsonschema.Compiler
}

// CheckOpenAPI checks rt's OpenAPI document: it is JSON, every registered
// route is an operation of it (with path parameters declared and bearer
// security, or security: [] when Public), and every schema under
// components/schemas compiles as JSON Schema 2020-12. The returned Spec
// validates answers.
func CheckOpenAPI(t testing.TB, rt *web.Router) *Spec {
	t.Helper()
	return CheckDocument(t, rt.OpenAPI(), rt.Routes())
}

// CheckDocument is CheckOpenAPI for a document and the routes it must describe.
func CheckDocument(t testing.TB, openapi []byte, routes []web.Route) *Spec {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openapi))
	if err != nil {
		t.Fatalf("the OpenAPI document is not JSON: %v", err)
	}
	root, _ := doc.(map[string]any)
	if root["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", root["openapi"])
	}
	paths, _ := root["paths"].(map[string]any)
	for _, r := range routes {
		path := openAPIPath(r.Path)
		item, _ := paths[path].(map[string]any)
		op, ok := item[strings.ToLower(r.Method)].(map[string]any)
		if !ok {
			t.Errorf("route %s is missing from the OpenAPI document (as %s %s)", r.Pattern(), r.Method, path)
			continue
		}
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, "{") && !hasParam(op, strings.Trim(seg, "{}")) {
				t.Errorf("%s %s: path parameter %s is not declared", r.Method, path, seg)
			}
		}
		sec, declared := op["security"].([]any)
		switch {
		case !declared:
			t.Errorf("%s %s: no security declared (a Public route declares security: [])", r.Method, path)
		case (len(sec) == 0) != r.Access.IsPublic():
			t.Errorf("%s %s: security %v, but public = %v", r.Method, path, sec, r.Access.IsPublic())
		}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat() // date-time and friends are checked, not only annotated
	if err := c.AddResource("openapi.json", doc); err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	schemas, _ := root["components"].(map[string]any)["schemas"].(map[string]any)
	if len(schemas) == 0 {
		t.Errorf("the OpenAPI document has no components/schemas")
	}
	for name := range schemas {
		if _, err := c.Compile("openapi.json#/components/schemas/" + pointerEscape(name)); err != nil {
			t.Errorf("schema %s does not compile: %v", name, err)
		}
	}
	return &Spec{doc: doc, compiler: c}
}

// ValidateResponse fails the test unless r's body matches the schema the
// document gives for method and OpenAPI path (e.g. "/api/v1/orders/{id}")
// and r's status: the success schema, or ProblemDocument for 4xx and 5xx.
func (s *Spec) ValidateResponse(t testing.TB, method, path string, r *Response) {
	t.Helper()
	status := strconv.Itoa(r.Status)
	loc := "openapi.json#/components/schemas/ProblemDocument"
	if r.Status < 400 {
		loc = "openapi.json#/paths/" + pointerEscape(path) + "/" + strings.ToLower(method) +
			"/responses/" + status + "/content/application~1json/schema"
	}
	sch, err := s.compiler.Compile(loc)
	if err != nil {
		t.Fatalf("no schema for %s %s %s: %v", method, path, status, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("%s %s: the body is not JSON: %v", method, path, err)
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("%s %s %s: the body does not match the documented schema: %v\n%s", method, path, status, err, r.Body)
	}
}

func hasParam(op map[string]any, name string) bool {
	params, _ := op["parameters"].([]any)
	for _, p := range params {
		if pm, _ := p.(map[string]any); pm["name"] == name && pm["in"] == "path" {
			return true
		}
	}
	return false
}

// openAPIPath mirrors the router: {name...} is {name}, {$} is dropped.
func openAPIPath(pattern string) string {
	segs := strings.Split(pattern, "/")
	for i, s := range segs {
		if s == "{$}" {
			segs[i] = ""
		} else if strings.HasPrefix(s, "{") {
			segs[i] = strings.Replace(s, "...}", "}", 1)
		}
	}
	return strings.Join(segs, "/")
}

// pointerEscape escapes a JSON Pointer token and makes it safe in a URL fragment.
func pointerEscape(tok string) string {
	tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
	return (&url.URL{Fragment: tok}).EscapedFragment()
}
