// Package errs is mercato's one error type: an operation, a kind that decides
// how the error is reported, a stable machine-readable code, field errors for
// validation, and the wrapped cause. Only web maps kinds to HTTP statuses.
//
// The message of an Error is safe to show to a client; the wrapped cause is not
// (it may hold SQL or internal detail) and is only logged.
package errs

import (
	"errors"
	"fmt"
	"strings"
)

// Kind classifies an error by how a caller should react to it.
type Kind uint8

// The kinds. Their HTTP statuses live in web (one place).
const (
	Internal         Kind = iota // a fault of ours: 500, logged, never detailed
	Malformed                    // unreadable request: 400
	Unauthorized                 // no or bad credentials: 401
	PaymentDeclined              // 402
	Forbidden                    // role lacks permission: 403
	NotFound                     // missing or not yours: 404
	Conflict                     // state conflict (stock, transition, uniqueness): 409
	TooLarge                     // body over the limit: 413
	Invalid                      // validation failed: 422
	RateLimited                  // 429
	Unavailable                  // a dependency is down: 503
	UnsupportedMedia             // a body in a media type the route does not read: 415
)

var kindNames = [...]string{"internal", "malformed", "unauthorized", "payment_declined",
	"forbidden", "not_found", "conflict", "too_large", "invalid", "rate_limited", "unavailable",
	"unsupported_media"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// FieldError names one invalid input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is the error type of every mercato package.
type Error struct {
	Op     string       // the operation, e.g. "accounts.Register"
	Kind   Kind         // how to react
	Code   string       // stable code (API.md); defaults per kind when empty
	Msg    string       // safe, human-readable detail for the client
	Fields []FieldError // per-field problems (validation)
	Err    error        // the cause; logged, never shown to a client

	// RetryAfter, when positive, is the number of seconds a client should wait (429).
	RetryAfter int
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		b.WriteString(e.Kind.String())
	}
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an *Error from its arguments, taken by type: a string is the Op
// (the first) or the Msg (the second), a Kind the kind, a Code the code,
// []FieldError the fields, an error the cause. When the cause is itself an
// *Error and no kind is given, its kind, code, message and fields carry over.
func E(args ...any) error {
	e := &Error{}
	kindSet := false
	strs := 0
	for _, a := range args {
		switch v := a.(type) {
		case string:
			if strs == 0 {
				e.Op = v
			} else {
				e.Msg = v
			}
			strs++
		case Kind:
			e.Kind, kindSet = v, true
		case Code:
			e.Code = string(v)
		case []FieldError:
			e.Fields = v
		case error:
			e.Err = v
		default:
			panic(fmt.Sprintf("errs.E: bad argument %T", a))
		}
	}
	var inner *Error
	if !kindSet && errors.As(e.Err, &inner) {
		e.Kind, e.Code, e.RetryAfter = inner.Kind, inner.Code, inner.RetryAfter
		if e.Msg == "" {
			e.Msg = inner.Msg
		}
		if e.Fields == nil {
			e.Fields = inner.Fields
		}
	}
	return e
}

// Code is a stable machine-readable error code (API.md).
type Code string

// The stable codes of API.md.
const (
	CodeOutOfStock        Code = "out_of_stock"
	CodePaymentDeclined   Code = "payment_declined"
	CodeInvalidTransition Code = "invalid_transition"
	CodeValidation        Code = "validation_failed"
	CodeNotFound          Code = "not_found"
	CodeUnauthorized      Code = "unauthorized"
	CodeForbidden         Code = "forbidden"
	CodeIdemReused        Code = "idempotency_key_reused"
	CodeIdemInUse         Code = "idempotency_key_in_use"
	CodeRateLimited       Code = "rate_limited"
	CodeRegionRestricted  Code = "region_restricted"
	CodeLimitExceeded     Code = "limit_exceeded"
	CodeEmailTaken        Code = "email_taken"
	CodeSKUTaken          Code = "sku_taken"
	CodePayloadTooLarge   Code = "payload_too_large"
	CodeUnsupportedMedia  Code = "unsupported_media_type"
	CodeMethodNotAllowed  Code = "method_not_allowed"
	CodeMalformed         Code = "malformed_request"
	CodeInternal          Code = "internal_error"
	CodeUnavailable       Code = "unavailable"
	CodeConflict          Code = "conflict"
)

// DefaultCode is the code reported for a kind when an error names none.
func DefaultCode(k Kind) Code {
	switch k {
	case Malformed:
		return CodeMalformed
	case Unauthorized:
		return CodeUnauthorized
	case PaymentDeclined:
		return CodePaymentDeclined
	case Forbidden:
		return CodeForbidden
	case NotFound:
		return CodeNotFound
	case Conflict:
		return CodeConflict
	case TooLarge:
		return CodePayloadTooLarge
	case Invalid:
		return CodeValidation
	case RateLimited:
		return CodeRateLimited
	case Unavailable:
		return CodeUnavailable
	case UnsupportedMedia:
		return CodeUnsupportedMedia
	}
	return CodeInternal
}

// KindOf reports the kind of err: the kind of the outermost *Error in its
// chain, or Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// CodeOf reports the stable code of err (its own or its kind's default).
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		if e.Code != "" {
			return Code(e.Code)
		}
		return DefaultCode(e.Kind)
	}
	return CodeInternal
}

// Is reports whether err is an *Error of kind k.
func Is(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// Validation collects field errors; Err returns nil when there are none.
type Validation struct{ Fields []FieldError }

// Add records a problem with field.
func (v *Validation) Add(field, msg string) { v.Fields = append(v.Fields, FieldError{field, msg}) }

// Check records msg for field when ok is false.
func (v *Validation) Check(ok bool, field, msg string) {
	if !ok {
		v.Add(field, msg)
	}
}

// Err returns an Invalid *Error holding the fields, or nil.
func (v *Validation) Err(op string) error {
	if len(v.Fields) == 0 {
		return nil
	}
	return &Error{Op: op, Kind: Invalid, Code: string(CodeValidation), Msg: "the request has invalid fields", Fields: v.Fields}
}
