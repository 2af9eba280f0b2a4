package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"mercato/internal/platform/errs"
)

// Problem is an RFC 9457 problem document with mercato's stable code.
type Problem struct {
	Type   string            `json:"type"`
	Title  string            `json:"title"`
	Status int               `json:"status"`
	Detail string            `json:"detail,omitempty"`
	Code   string            `json:"code"`
	Errors []errs.FieldError `json:"errors"`
	// Instance is the request id, so a client can quote it to support.
	Instance string `json:"instance,omitempty"`
}

// StatusOf is the one place that maps error kinds to HTTP statuses.
func StatusOf(k errs.Kind) int {
	switch k {
	case errs.Malformed:
		return http.StatusBadRequest
	case errs.Unauthorized:
		return http.StatusUnauthorized
	case errs.PaymentDeclined:
		return http.StatusPaymentRequired
	case errs.Forbidden:
		return http.StatusForbidden
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict:
		return http.StatusConflict
	case errs.TooLarge:
		return http.StatusRequestEntityTooLarge
	case errs.Invalid:
		return http.StatusUnprocessableEntity
	case errs.RateLimited:
		return http.StatusTooManyRequests
	case errs.Unavailable:
		return http.StatusServiceUnavailable
	case errs.UnsupportedMedia:
		return http.StatusUnsupportedMediaType
	}
	return http.StatusInternalServerError
}

// ProblemOf turns err into the problem document a client may see. Internal
// errors become a bare 500 whose detail says nothing of the cause.
func ProblemOf(err error) Problem {
	var e *errs.Error
	if !errors.As(err, &e) || e.Kind == errs.Internal {
		return Problem{Type: "about:blank", Title: http.StatusText(500), Status: 500,
			Detail: "an internal error occurred; it has been logged", Code: string(errs.CodeInternal),
			Errors: []errs.FieldError{}}
	}
	status := StatusOf(e.Kind)
	code := string(errs.CodeOf(e))
	p := Problem{Type: "about:blank", Title: http.StatusText(status), Status: status,
		Detail: e.Msg, Code: code, Errors: e.Fields}
	if p.Errors == nil {
		p.Errors = []errs.FieldError{}
	}
	return p
}

// Error writes err as a problem document. Errors of kind Internal (and
// errors that are not *errs.Error) are logged with the request id; their
// text never reaches the client.
func Error(w http.ResponseWriter, r *http.Request, err error) {
	p := ProblemOf(err)
	p.Instance = RequestID(r.Context())
	if p.Status >= 500 {
		loggerFrom(r.Context()).ErrorContext(r.Context(), "request failed", "err", err, "request_id", p.Instance,
			"method", r.Method, "path", r.URL.Path)
	}
	var e *errs.Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	WriteProblem(w, p)
}

// WriteProblem writes p with its status and the problem+json content type.
func WriteProblem(w http.ResponseWriter, p Problem) {
	b, _ := json.Marshal(p)
	writeBody(w, p.Status, contentTypeProblem, b)
}
