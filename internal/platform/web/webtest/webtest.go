// Package webtest drives HTTP scenario tests through a real
// httptest.Server: a small JSON client, assertions for problem documents
// (status, stable code, no internal text), and checks of the OpenAPI
// document against the registered routes and the answers actually sent.
package webtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"mercato/internal/platform/web"
)

// Client sends requests to one server. A Client is safe for concurrent use
// by the goroutines of one test; With returns a copy, so a test can hold one
// client per user.
type Client struct {
	t       testing.TB
	base    string
	http    *http.Client
	headers []string // "Name: value", sent with every request
}

// Start serves h on a new httptest.Server, closed when the test ends, and
// returns a client of it.
func Start(t testing.TB, h http.Handler) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return NewClient(t, srv.URL)
}

// NewClient returns a client of the server at baseURL (scheme and host).
// It does not follow redirects: a test sees the answer the server gave.
func NewClient(t testing.TB, baseURL string) *Client {
	return &Client{t: t, base: strings.TrimSuffix(baseURL, "/"), http: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// URL is the server's base URL.
func (c *Client) URL() string { return c.base }

// With returns a copy of c that also sends headers ("Name: value") on every
// request.
func (c *Client) With(headers ...string) *Client {
	cp := *c
	cp.headers = append(append([]string(nil), c.headers...), headers...)
	return &cp
}

// WithToken returns a copy of c that sends Authorization: Bearer token.
func (c *Client) WithToken(token string) *Client { return c.With("Authorization: Bearer " + token) }

// Response is a server's answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// JSON is the decoded body when it is JSON (application/json or
	// application/problem+json), else nil.
	JSON any
	// Problem is the decoded problem document when the content type says
	// application/problem+json, else nil.
	Problem *web.Problem
}

// Do sends a request and reads the answer; a transport failure fails the
// test. body is sent as it is when it is a []byte, string or
// json.RawMessage, omitted when nil, and JSON-encoded otherwise (with
// Content-Type: application/json). headers are "Name: value" strings.
func (c *Client) Do(method, path string, body any, headers ...string) *Response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case json.RawMessage:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			c.t.Fatalf("webtest: encode %s %s body: %v", method, path, err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatalf("webtest: %s %s: %v", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range append(append([]string(nil), c.headers...), headers...) {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			c.t.Fatalf("webtest: header %q is not \"Name: value\"", h)
		}
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("webtest: %s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("webtest: %s %s: read body: %v", method, path, err)
	}
	r := &Response{Status: res.StatusCode, Header: res.Header, Body: raw}
	ct := res.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, "application/problem+json") {
		if err := json.Unmarshal(raw, &r.JSON); err != nil {
			c.t.Errorf("webtest: %s %s: the %s body is not JSON: %v\n%s", method, path, ct, err, raw)
		}
	}
	if strings.HasPrefix(ct, "application/problem+json") {
		r.Problem = &web.Problem{}
		if err := json.Unmarshal(raw, r.Problem); err != nil {
			c.t.Errorf("webtest: %s %s: the problem document does not decode: %v\n%s", method, path, err, raw)
		}
	}
	return r
}

// Decode decodes the body into v, failing the test when it does not fit.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("webtest: decode %T: %v\n%s", v, err, r.Body)
	}
}

// Field returns the value at a dotted path of the JSON body ("user.id",
// "items.0.sku"), or nil when there is none.
func (r *Response) Field(path string) any {
	v := r.JSON
	for _, part := range strings.Split(path, ".") {
		switch node := v.(type) {
		case map[string]any:
			v = node[part]
		case []any:
			i := 0
			for _, c := range part {
				if c < '0' || c > '9' {
					return nil
				}
				i = i*10 + int(c-'0')
			}
			if part == "" || i >= len(node) {
				return nil
			}
			v = node[i]
		default:
			return nil
		}
	}
	return v
}

// WantStatus fails the test unless the answer has status.
func (r *Response) WantStatus(t testing.TB, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
}
