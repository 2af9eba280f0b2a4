package web

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// HeaderIdempotencyKey names the header that makes a POST idempotent.
const HeaderIdempotencyKey = "Idempotency-Key"

// OpenAPI returns the OpenAPI 3.1 document (JSON) of the registered routes.
// It is built on first use after the last Handle and then kept.
func (rt *Router) OpenAPI() []byte {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.openapi == nil {
		routes := make([]Route, 0, len(rt.routes))
		for _, r := range rt.routes {
			routes = append(routes, *r)
		}
		sort.Slice(routes, func(i, j int) bool { return routes[i].Pattern() < routes[j].Pattern() })
		b, err := json.Marshal(buildOpenAPI(rt.doc, routes))
		if err != nil {
			panic("web: OpenAPI document: " + err.Error()) // only maps, slices and strings: cannot fail
		}
		rt.openapi = b
	}
	return rt.openapi
}

// docInfo is what the OpenAPI document says beyond the routes.
type docInfo struct {
	service, version, contact, license string
	tags                               map[string]string // tag → description
}

// buildOpenAPI describes routes: one operation per route, with its path,
// query and (for POST) Idempotency-Key parameters, its request and success
// bodies as JSON Schemas derived from Route.Request and Route.Response,
// problem documents for 4xx and 5xx, bearer security with x-permission on
// every route that is not Public and an explicitly empty security on every
// Public one. The document passes Redocly's recommended rules and
// Spectral's oas ruleset (TestOpenAPILint checks the rules they enforce):
// every operation has a summary and a description, every tag a
// description, info a contact and a licence, servers one relative entry
// (the server the document came from; it names no host or file).
func buildOpenAPI(info docInfo, routes []Route) map[string]any {
	g := newSchemaGen()
	problem := map[string]any{"$ref": "#/components/responses/Problem"}
	paths := map[string]any{}
	tagSet := map[string]bool{}
	opIDs := map[string]bool{}
	for _, r := range routes {
		path, pathParams := openAPIPath(r.Path)
		tag := r.Tag
		if tag == "" {
			tag = "default"
		}
		tagSet[tag] = true
		summary := r.Summary
		if summary == "" {
			summary = r.Pattern()
		}
		id := operationID(r.Method, r.Path)
		for i := 2; opIDs[id]; i++ {
			id = operationID(r.Method, r.Path) + strconv.Itoa(i)
		}
		opIDs[id] = true

		params := []any{}
		for _, name := range pathParams {
			params = append(params, map[string]any{"name": name, "in": "path", "required": true,
				"description": "At most " + strconv.Itoa(MaxPathValue) + " bytes of UTF-8, without NUL.",
				"schema":      map[string]any{"type": "string", "minLength": 1}})
		}
		for _, name := range r.Query {
			params = append(params, map[string]any{"name": name, "in": "query", "required": false,
				"schema": querySchema(name)})
		}
		if r.Method == http.MethodPost {
			params = append(params, map[string]any{"name": HeaderIdempotencyKey, "in": "header", "required": false,
				"description": "Makes the request idempotent for the caller (API.md, Idempotency).",
				"schema":      map[string]any{"type": "string", "minLength": 1, "maxLength": MaxIdempotencyKey}})
		}

		status := r.Status
		if status == 0 {
			status = http.StatusOK
		}
		success := map[string]any{"description": http.StatusText(status)}
		if r.Response != nil {
			success["content"] = jsonContent(g.schemaOf(reflect.TypeOf(r.Response)))
		}
		responses := map[string]any{strconv.Itoa(status): success, "4XX": problem, "5XX": problem}
		op := map[string]any{"operationId": id, "summary": summary, "description": description(r),
			"tags": []string{tag}, "responses": responses}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if r.Request != nil {
			op["requestBody"] = map[string]any{"required": true,
				"content": jsonContent(g.schemaOf(reflect.TypeOf(r.Request)))}
		}
		op["security"] = []any{} // Public: explicitly none
		if !r.Access.IsPublic() {
			op["security"] = []any{map[string]any{"bearerAuth": []string{}}}
			responses["401"] = problem
			if perm := r.Access.Perm(); perm != "" {
				op["x-permission"] = perm
				responses["403"] = problem
			}
		}
		item, _ := paths[path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[path] = item
		}
		item[strings.ToLower(r.Method)] = op
	}
	tags := []any{}
	for _, t := range sortedKeys(tagSet) {
		d := info.tags[t]
		if d == "" {
			d = "Operations of " + t + "."
		}
		tags = append(tags, map[string]any{"name": t, "description": d})
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": info.service, "version": info.version,
			"description": "The " + info.service + " HTTP API. Errors are RFC 9457 problem documents.",
			"contact":     map[string]any{"name": info.contact},
			"license": map[string]any{"name": strings.TrimPrefix(info.license, "LicenseRef-"),
				"identifier": info.license}},
		"servers": []any{map[string]any{"url": "/", "description": "The server that serves this document"}},
		"tags":    tags,
		"paths":   paths,
		"components": map[string]any{
			"schemas": g.schemas,
			"responses": map[string]any{"Problem": map[string]any{
				"description": "A problem document (RFC 9457) with a stable code",
				"content": map[string]any{contentTypeProblem: map[string]any{
					"schema": map[string]any{"$ref": "#/components/schemas/ProblemDocument"}}},
			}},
			"securitySchemes": map[string]any{"bearerAuth": map[string]any{
				"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <token>"}},
		},
	}
}

func jsonContent(schema map[string]any) map[string]any {
	return map[string]any{contentTypeJSON: map[string]any{"schema": schema}}
}

// querySchema is the schema of a query parameter: limit is an integer and
// cursor an opaque string (API.md, Lists; PageParams), everything else a
// string of at most DefaultMaxLen characters.
func querySchema(name string) map[string]any {
	switch name {
	case "limit":
		return map[string]any{"type": "integer", "minimum": 1, "maximum": MaxPageLimit, "default": DefaultPageLimit}
	case "cursor":
		return map[string]any{"type": "string", "maxLength": MaxCursorLen}
	}
	return map[string]any{"type": "string", "maxLength": DefaultMaxLen}
}

// description is an operation's description: the route's own (or its
// summary), then who may call it, how a POST is made idempotent and how a
// list pages.
func description(r Route) string {
	var b strings.Builder
	switch {
	case r.Description != "":
		b.WriteString(strings.TrimSpace(r.Description))
	case r.Summary != "":
		b.WriteString(strings.TrimSuffix(r.Summary, ".") + ".")
	default:
		b.WriteString(r.Pattern() + ".")
	}
	switch {
	case r.Access.IsPublic():
		b.WriteString("\n\nPublic: no credentials are needed.")
	case r.Access.Perm() != "":
		b.WriteString("\n\nNeeds a bearer token whose roles grant `" + r.Access.Perm() + "`.")
	default:
		b.WriteString("\n\nNeeds a bearer token.")
	}
	if r.Method == http.MethodPost {
		b.WriteString(" With `" + HeaderIdempotencyKey + "`, a retry with the same key and body replays the first answer.")
	}
	if r.Request != nil {
		b.WriteString(" The body is JSON (`Content-Type: application/json`, else 415), decoded strictly (400 for an" +
			" unknown or duplicated field, 422 for a value out of bounds).")
	}
	for _, q := range r.Query {
		if q == "cursor" {
			b.WriteString(" A list: pass `next_cursor` back as `cursor` for the next page; `limit` is " +
				strconv.Itoa(DefaultPageLimit) + " by default and at most " + strconv.Itoa(MaxPageLimit) + " (larger is capped).")
			break
		}
	}
	return b.String()
}

// openAPIPath turns a ServeMux path pattern into an OpenAPI path and the
// names of its parameters: {name...} becomes {name}, {$} is dropped.
func openAPIPath(pattern string) (string, []string) {
	segs := strings.Split(pattern, "/")
	var params []string
	for i, s := range segs {
		if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
			continue
		}
		name := strings.TrimSuffix(s[1:len(s)-1], "...")
		if name == "$" {
			segs[i] = ""
			continue
		}
		segs[i] = "{" + name + "}"
		params = append(params, name)
	}
	return strings.Join(segs, "/"), params
}

// operationID derives a stable camelCase id from method and path:
// GET /api/v1/orders/{id}/events → getApiV1OrdersByIdEvents.
func operationID(method, pattern string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, seg := range strings.Split(pattern, "/") {
		if strings.HasPrefix(seg, "{") {
			seg = strings.TrimSuffix(strings.Trim(seg, "{}"), "...")
			if seg == "$" {
				continue
			}
			b.WriteString("By")
		}
		for _, word := range strings.FieldsFunc(seg, func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
		}) {
			b.WriteString(strings.ToUpper(word[:1]) + word[1:])
		}
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
