// Package web is mercato's HTTP edge: the router with its middleware (request
// id, access log, recovery, authentication, body limits, metrics), problem
// documents (RFC 9457) as the one error format, strict JSON decoding, health
// and metrics endpoints, pagination, the OpenAPI 3.1 document generated from
// the registered routes, and idempotent POSTs whose recorded answer commits
// in the same transaction as their effect.
//
// A module describes each endpoint as a Route and registers it with
// Router.Handle; it never writes an error body itself but returns an
// *errs.Error to Error. Everything the router answers on its own (unknown
// path, wrong method, oversized body, missing credentials, a panic) is a
// problem document too, on every path including /healthz and /metrics.
//
// # What the edge refuses, and with which answer
//
// The router checks every request before its handler runs, in this order,
// so that no store ever sees a NUL (PostgreSQL cannot store one), invalid
// UTF-8 or an unbounded string, and both engines answer alike:
//
//	unclean path (//, /./, /../)               404 not_found (never a redirect)
//	no credentials / role lacks permission     401 unauthorized / 403 forbidden
//	path value with NUL, bad UTF-8, > 1 KiB    404 not_found
//	query that does not parse (%zz, ;)         400 malformed_request
//	query name or value with NUL, bad UTF-8,
//	  or over DefaultMaxLen characters         422 validation_failed naming it
//	body over the route's limit                413 payload_too_large
//	body that is not JSON by Content-Type      415 unsupported_media_type
//
// Decode then reads the body strictly (see Decode): invalid UTF-8 is not
// JSON text (400 naming the field), an escaped NUL (\u0000) is valid JSON
// but a value no store keeps (422 naming the field); a field name in
// another case, a duplicated key, null or an array for an object are 400;
// a string over its maxlen tag (TagMaxLen) or DefaultMaxLen is 422. The
// OpenAPI document states the same maxima as maxLength.
//
// # Lists
//
// PageParams reads ?limit= and ?cursor= (limit 20 by default, capped at
// 100, 0 or not digits 422); NewPage builds a Page[T] (items never null)
// from limit+1 rows of a keyset query, with EncodeCursor's opaque,
// checksummed cursor; PageRequest.After decodes it (422 naming cursor when
// it is not one the list made).
//
// # Logs
//
// Every request gets one access log line at INFO (ERROR from 500 up); the
// probes /healthz, /readyz and /metrics are logged at DEBUG.
package web
