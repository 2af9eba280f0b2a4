// Package web is mercato's HTTP edge: the router with its middleware (request
// id, access log, recovery, authentication, body limits, metrics), problem
// documents (RFC 9457) as the one error format, strict JSON decoding, health
// and metrics endpoints, the OpenAPI 3.1 document generated from the
// registered routes, and idempotent POSTs whose recorded answer commits in
// the same transaction as their effect.
//
// A module describes each endpoint as a Route and registers it with
// Router.Handle; it never writes an error body itself but returns an
// *errs.Error to Error. Everything the router answers on its own (unknown
// path, wrong method, oversized body, missing credentials, a panic) is a
// problem document too, on every path including /healthz and /metrics.
package web
