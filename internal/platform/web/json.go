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

// Decode reads r's JSON body into v strictly: an unknown field or trailing
// data is a Malformed error naming it, a value of the wrong type is an
// Invalid error naming the field, a body over the route's limit is TooLarge.
// An empty body is Malformed.
func Decode(r *http.Request, v any) error {
	const op = "web.Decode"
	body, err := Body(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return errs.E(op, errs.Malformed, "the request body is empty; a JSON object is expected")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(op, err)
	}
	if dec.More() {
		return errs.E(op, errs.Malformed, "the request body holds data after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errs.E(op, errs.Malformed, "the request body holds data after the JSON value")
	}
	return nil
}

func decodeError(op string, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return errs.E(op, errs.Malformed, fmt.Sprintf("malformed JSON at byte %d", syn.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errs.E(op, errs.Malformed, "malformed JSON: the body ends early")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return errs.E(op, errs.Malformed, "the request body must be a JSON "+jsonKind(typ.Type.Kind().String()))
		}
		return errs.E(op, errs.Invalid, "a field has the wrong type",
			[]errs.FieldError{{Field: field, Message: "must be " + jsonKind(typ.Type.Kind().String())}})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return errs.E(op, errs.Malformed, fmt.Sprintf("unknown field %q", name),
			[]errs.FieldError{{Field: name, Message: "unknown field"}})
	}
	return errs.E(op, errs.Malformed, "malformed JSON body")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	if strings.HasPrefix(goKind, "int") || strings.HasPrefix(goKind, "uint") || strings.HasPrefix(goKind, "float") {
		return "a number"
	}
	return "a " + goKind
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
