package web

import (
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"mercato/internal/platform/errs"
)

// MaxPathValue bounds a path wildcard's value in bytes; a longer one names
// no resource (404), so it never reaches a store's index.
const MaxPathValue = 1024

// The edge's checks of what a request carries besides its body. They run
// in the router before the handler, on every route, so that a store never
// sees a NUL (PostgreSQL cannot store one), invalid UTF-8 or an unbounded
// string, and every engine gives the same answer:
//   - an unclean path (//, /./, /../, a trailing /. or /..) is 404
//     not_found: no resource lives there, and the router never redirects;
//   - a path value holding NUL, invalid UTF-8 or more than MaxPathValue
//     bytes is 404 not_found: no resource has such a name;
//   - a query string that does not parse (bad %-escapes, ';') is 400
//     malformed_request; a query parameter whose name or value holds NUL or
//     invalid UTF-8, or whose value is longer than DefaultMaxLen characters,
//     is 422 validation_failed naming the parameter;
//   - a body (POST, PUT, PATCH, DELETE with at least one byte) whose
//     Content-Type is not JSON (application/json or application/*+json,
//     parameters allowed, charset utf-8 if any) is 415
//     unsupported_media_type;
//   - inside a JSON body, Decode's rules: invalid UTF-8 is not JSON text
//     (400), a NUL escape (\u0000) is valid JSON but a value no store keeps
//     (422 naming the field).

// isCleanPath reports whether p is in the form ServeMux would not redirect:
// rooted, without empty, "." or ".." segments (a trailing slash is fine).
func isCleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean == p
}

// wildcards returns the names of the wildcards in a ServeMux path pattern
// ({id}, {path...}; not {$}).
func wildcards(pattern string) []string {
	var names []string
	for _, seg := range strings.Split(pattern, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			name := strings.TrimSuffix(seg[1:len(seg)-1], "...")
			if name != "$" {
				names = append(names, name)
			}
		}
	}
	return names
}

// checkPathValues returns a NotFound error when a wildcard's value is not
// a name any resource can have.
func checkPathValues(r *http.Request, names []string) error {
	for _, n := range names {
		v := r.PathValue(n)
		if len(v) > MaxPathValue || strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v) {
			return errs.E("web.Router", errs.NotFound, "no resource at this path")
		}
	}
	return nil
}

// checkQuery returns a Malformed error for a query string that does not
// parse and an Invalid error naming every parameter that holds NUL or
// invalid UTF-8 or is too long.
func checkQuery(r *http.Request) error {
	const op = "web.Router"
	if r.URL.RawQuery == "" {
		return nil
	}
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errs.E(op, errs.Malformed, "the query string is malformed (bad %-escape or a ';')")
	}
	names := make([]string, 0, len(vals))
	for k := range vals {
		names = append(names, k)
	}
	sort.Strings(names)
	var v errs.Validation
	for _, k := range names {
		field := join("", strings.ToValidUTF8(k, "\uFFFD"))
		if msg := badText(k, DefaultMaxLen); msg != "" {
			v.Add(field, "the parameter name "+msg)
			continue
		}
		for _, val := range vals[k] {
			if msg := badText(val, DefaultMaxLen); msg != "" {
				v.Add(field, msg)
				break
			}
		}
		if len(v.Fields) >= maxFieldErrors {
			break
		}
	}
	return v.Err(op)
}

// badText says what is wrong with s as request text, or "".
func badText(s string, maxLen int) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain NUL characters"
	case len(s) > maxLen && utf8.RuneCountInString(s) > maxLen:
		return "must be at most " + strconv.Itoa(maxLen) + " characters"
	}
	return ""
}

// isJSONMediaType reports whether a Content-Type names JSON:
// application/json or application/<something>+json, with any parameters,
// and a charset, when given, of utf-8.
func isJSONMediaType(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	sub, ok := strings.CutPrefix(mt, "application/")
	return ok && (sub == "json" || len(sub) > len("+json") && strings.HasSuffix(sub, "+json"))
}

// checkContentType returns an UnsupportedMedia error when r carries a body
// that is not JSON by its Content-Type — or, for a route that declares a
// BodyType, not of that media type (with any parameters, a charset, when
// given, of utf-8).
func checkContentType(r *http.Request, body []byte, bodyType string) error {
	if len(body) == 0 {
		return nil
	}
	ct := r.Header.Get("Content-Type")
	if bodyType == "" {
		if isJSONMediaType(ct) {
			return nil
		}
		return errs.E("web.Router", errs.UnsupportedMedia,
			"the request body must be JSON, sent with Content-Type: application/json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if cs, ok := params["charset"]; err == nil && mt == bodyType && (!ok || strings.EqualFold(cs, "utf-8")) {
		return nil
	}
	return errs.E("web.Router", errs.UnsupportedMedia, "the request body must be sent with Content-Type: "+bodyType)
}
