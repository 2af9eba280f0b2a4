package web

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"mercato/internal/platform/errs"
)

// Body returns r's body, read at most once and kept (the router buffers it
// so that Decode and the idempotency fingerprint see the same bytes; outside
// the router r.Body is replaced by a reader over the bytes read, so a second
// call sees them too). A body over the route's limit is a TooLarge error.
func Body(r *http.Request) ([]byte, error) {
	if b, ok := r.Context().Value(keyBody).(*[]byte); ok && *b != nil {
		return *b, nil
	}
	limit := int64(DefaultMaxBody)
	if rt, ok := r.Context().Value(keyRoute).(*Route); ok && rt.MaxBody > 0 {
		limit = rt.MaxBody
	}
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errs.E("web.Body", errs.TooLarge, "the request body is larger than the limit")
		}
		return nil, errs.E("web.Body", errs.Malformed, "the request body could not be read", err)
	}
	if p, ok := r.Context().Value(keyBody).(*[]byte); ok {
		*p = b
	} else {
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	return b, nil
}
