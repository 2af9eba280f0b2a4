package errs

import (
	"errors"
	"fmt"
	"testing"
)

func TestE(t *testing.T) {
	cause := errors.New("disk on fire")
	inner := E("store.Get", NotFound, "no such order")
	tests := []struct {
		name     string
		err      error
		kind     Kind
		code     Code
		msg      string
		wrapsCau bool
	}{
		{"kind default code", E("op", Invalid), Invalid, CodeValidation, "", false},
		{"explicit code", E("op", Conflict, CodeOutOfStock, "sold out"), Conflict, CodeOutOfStock, "sold out", false},
		{"internal cause", E("op", cause), Internal, CodeInternal, "", true},
		{"carries inner kind and message", E("svc.Pay", inner), NotFound, CodeNotFound, "no such order", false},
		{"outer kind wins", E("svc.Pay", Forbidden, inner), Forbidden, CodeForbidden, "", false},
		{"plain error", fmt.Errorf("wrapped: %w", cause), Internal, CodeInternal, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := KindOf(tc.err); got != tc.kind {
				t.Errorf("kind = %v, want %v", got, tc.kind)
			}
			if got := CodeOf(tc.err); got != tc.code {
				t.Errorf("code = %v, want %v", got, tc.code)
			}
			var e *Error
			if errors.As(tc.err, &e) && e.Msg != tc.msg {
				t.Errorf("msg = %q, want %q", e.Msg, tc.msg)
			}
			if errors.Is(tc.err, cause) != tc.wrapsCau {
				t.Errorf("errors.Is(cause) = %v", !tc.wrapsCau)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	var v Validation
	if v.Err("op") != nil {
		t.Fatal("empty validation is an error")
	}
	v.Check(true, "ok", "never")
	v.Check(false, "email", "must be an e-mail address")
	v.Add("password", "too short")
	err := v.Err("accounts.Register")
	var e *Error
	if !errors.As(err, &e) || e.Kind != Invalid || len(e.Fields) != 2 || e.Fields[0].Field != "email" {
		t.Fatalf("got %#v", err)
	}
}

func TestEPanicsOnBadArgument(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("E accepted an int")
		}
	}()
	E("op", 42)
}

// TestEveryKindHasANameAndCode: a kind added without its name or default
// code would report "kind(n)" or internal_error to clients.
func TestEveryKindHasANameAndCode(t *testing.T) {
	tests := []struct {
		kind Kind
		name string
		code Code
	}{
		{Internal, "internal", CodeInternal},
		{Malformed, "malformed", CodeMalformed},
		{Unauthorized, "unauthorized", CodeUnauthorized},
		{PaymentDeclined, "payment_declined", CodePaymentDeclined},
		{Forbidden, "forbidden", CodeForbidden},
		{NotFound, "not_found", CodeNotFound},
		{Conflict, "conflict", CodeConflict},
		{TooLarge, "too_large", CodePayloadTooLarge},
		{Invalid, "invalid", CodeValidation},
		{RateLimited, "rate_limited", CodeRateLimited},
		{Unavailable, "unavailable", CodeUnavailable},
		{UnsupportedMedia, "unsupported_media", CodeUnsupportedMedia},
	}
	if len(tests) != len(kindNames) {
		t.Fatalf("%d kinds tested, %d defined", len(tests), len(kindNames))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.kind.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if got := DefaultCode(tt.kind); got != tt.code {
				t.Errorf("DefaultCode = %q, want %q", got, tt.code)
			}
		})
	}
}
