package web

import (
	"context"
	"net/http"
)

// Access says who may call a route.
type Access struct {
	kind access
	perm string
}

type access uint8

const (
	accessPublic access = iota
	accessAuthenticated
	accessPermission
)

// The access levels. Every route declares one; /api/v1/admin/ routes must
// declare a Permission (Router.Handle enforces it).
var (
	// Public routes need no credentials (a token, when sent, is still read).
	Public = Access{kind: accessPublic}
	// Authenticated routes need any valid token: customer, staff or channel.
	Authenticated = Access{kind: accessAuthenticated}
)

// Permission routes need a principal whose roles grant perm (Authenticator.Allowed).
func Permission(perm string) Access { return Access{kind: accessPermission, perm: perm} }

// IsPublic reports whether a needs no credentials.
func (a Access) IsPublic() bool { return a.kind == accessPublic }

// Perm is the permission a route needs ("" when it needs none).
func (a Access) Perm() string { return a.perm }

// Route describes one endpoint: what the router serves, what the OpenAPI
// document says, and who may call it.
type Route struct {
	Method  string // GET, POST, PUT, PATCH, DELETE
	Path    string // a ServeMux path pattern, e.g. /api/v1/orders/{id}
	Summary string // one line: what the operation does
	// Description says more (CommonMark): rules, errors worth knowing. The
	// OpenAPI document appends who may call the route and, for a POST, how
	// Idempotency-Key works, so it is never empty.
	Description string
	Tag         string // OpenAPI tag (the module)
	Access      Access
	// Request is a value of the JSON request body's type (nil: no body);
	// Response a value of the success body's type (nil: no body).
	Request  any
	Response any
	// Status is the success status (200 when zero).
	Status int
	// Query lists the query parameters the route reads (for OpenAPI).
	Query []string
	// MaxBody overrides DefaultMaxBody.
	MaxBody int64
	// BodyType, when set, is the media type the route's body is read in
	// instead of JSON ("text/csv"): the router refuses any other with 415.
	BodyType string
	Handler  http.HandlerFunc

	wildcards []string // the path pattern's wildcard names, set by Handle
	quiet     bool     // access-logged at DEBUG (the probes HandleOps registers)
}

// Pattern is the ServeMux pattern of r ("POST /api/v1/carts").
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// Principal is the authenticated caller of a request.
type Principal struct {
	UserID    string
	Roles     []string
	Channel   string // the channel code a channel token is bound to
	SessionID string // the token's id (for logout)
}

// HasRole reports whether p has role.
func (p Principal) HasRole(role string) bool {
	for _, r := range p.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Authenticator reads credentials and decides permissions; the accounts
// module implements it, so web knows nothing of users.
type Authenticator interface {
	// Authenticate returns the principal behind r's credentials (bearer token
	// or session cookie). ok is false when r carries none; err is an
	// Unauthorized error when they are invalid, expired or revoked.
	Authenticate(r *http.Request) (p Principal, ok bool, err error)
	// Allowed reports whether p's roles grant perm.
	Allowed(p Principal, perm string) bool
}

type ctxKey int

const (
	keyPrincipal ctxKey = iota
	keyRequestID
	keyBody
	keyRoute
	keyInfo   // *requestInfo, shared with the outer middleware
	keyLogger // the router's *slog.Logger
)

// WithPrincipal returns ctx carrying p (the router does this after
// authentication; tests and background jobs may too).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, keyPrincipal, p)
}

// PrincipalFrom returns the request's authenticated caller.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(keyPrincipal).(Principal)
	return p, ok
}

// RequestID returns the request's id ("" outside a request).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}
