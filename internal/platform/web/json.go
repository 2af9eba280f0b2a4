package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"mercato/internal/platform/errs"
)

// DefaultMaxBody is the request body limit unless a route sets its own.
const DefaultMaxBody = 1 << 20

// Decode reads r's JSON body into v, which must be a non-nil pointer,
// strictly: field names match the json tags exactly (encoding/json alone
// would take "PASSWORD" for "password"), a key given twice, invalid UTF-8
// (also an escaped lone surrogate), an unknown field, trailing data, an
// empty body or a top-level value of the wrong kind (null or an array for
// an object) is a Malformed error (400 malformed_request) naming the field
// where there is one; a value of the wrong type or out of range, a string
// holding NUL or longer than its maximum (TagMaxLen, DefaultMaxLen) is an
// Invalid error (422 validation_failed) naming every such field; a body
// over the route's limit is TooLarge. v is left untouched unless the body
// passes. The router has already refused a body that is not JSON by its
// Content-Type (415); Decode does not look at headers, so that a handler
// called directly in a test decodes as it does behind the router.
func Decode(r *http.Request, v any) error {
	const op = "web.Decode"
	body, err := Body(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return errs.E(op, errs.Malformed, "the request body is empty; a JSON value is expected")
	}
	return decodeJSON(op, body, v)
}

// decodeError reports an encoding/json error (a case the strict walk let
// through) as a client error.
func decodeError(op string, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return errs.E(op, errs.Malformed, fmt.Sprintf("malformed JSON at byte %d", syn.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errs.E(op, errs.Malformed, "malformed JSON: the body ends early")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errs.E(op, errs.Malformed, "the request body must be a JSON "+goKind(typ.Type))
		}
		return errs.E(op, errs.Invalid, "a field has the wrong type",
			[]errs.FieldError{{Field: typ.Field, Message: "must be " + article(goKind(typ.Type))}})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return errs.E(op, errs.Malformed, fmt.Sprintf("unknown field %q", clip(name)),
			[]errs.FieldError{{Field: join("", name), Message: "unknown field"}})
	}
	return errs.E(op, errs.Malformed, "malformed JSON body")
}

// JSON writes v as a JSON response with status. A nil v writes no body.
func JSON(w http.ResponseWriter, status int, v any) {
	if v == nil {
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		WriteProblem(w, ProblemOf(err))
		return
	}
	writeBody(w, status, contentTypeJSON, b)
}

// The content types mercato answers with.
const (
	contentTypeJSON    = "application/json"
	contentTypeProblem = "application/problem+json"
)

// writeBody writes b with status, content type ct (none when empty) and its length.
func writeBody(w http.ResponseWriter, status int, ct string, b []byte) {
	if ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
