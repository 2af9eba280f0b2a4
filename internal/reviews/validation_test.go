package reviews

import (
	"net/http"
	"strings"
	"testing"

	"mercato/internal/platform/web/webtest"
)

// Bad review bodies: each is refused with its status and code, naming the
// field, on both engines, and leaves nothing behind.
func TestCreateRefusesBadInput(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
		code   string
		field  string // named in errors, when set
	}{
		{"rating zero", `{"rating":0,"title":"t","body":""}`, 422, "validation_failed", "rating"},
		{"rating six", `{"rating":6,"title":"t","body":""}`, 422, "validation_failed", "rating"},
		{"rating negative", `{"rating":-1,"title":"t","body":""}`, 422, "validation_failed", "rating"},
		{"rating missing", `{"title":"t","body":""}`, 422, "validation_failed", "rating"},
		{"rating fraction", `{"rating":4.5,"title":"t","body":""}`, 422, "validation_failed", "rating"},
		{"rating exponent", `{"rating":5e0,"title":"t","body":""}`, 422, "validation_failed", "rating"},
		{"rating string", `{"rating":"5","title":"t","body":""}`, 422, "validation_failed", "rating"},
		{"rating beyond int64", `{"rating":99999999999999999999,"title":"t","body":""}`, 422, "validation_failed", "rating"},
		{"title missing", `{"rating":4,"body":"b"}`, 422, "validation_failed", "title"},
		{"title blank", `{"rating":4,"title":"   ","body":"b"}`, 422, "validation_failed", "title"},
		{"title 121 characters", `{"rating":4,"title":"` + strings.Repeat("é", 121) + `","body":""}`, 422, "validation_failed", "title"},
		{"title with a line break", `{"rating":4,"title":"two\nlines","body":""}`, 422, "validation_failed", "title"},
		{"title with a bell", `{"rating":4,"title":"ding\u0007","body":""}`, 422, "validation_failed", "title"},
		{"title with a bidi override", `{"rating":4,"title":"good\u202Edab","body":""}`, 422, "validation_failed", "title"},
		{"title with NUL", `{"rating":4,"title":"a\u0000b","body":""}`, 422, "validation_failed", "title"},
		{"body 5001 characters", `{"rating":4,"title":"t","body":"` + strings.Repeat("ü", 5001) + `"}`, 422, "validation_failed", "body"},
		{"body with an escape", `{"rating":4,"title":"t","body":"red \u001b[31m"}`, 422, "validation_failed", "body"},
		{"body with C1 control", `{"rating":4,"title":"t","body":"a\u0085b"}`, 422, "validation_failed", "body"},
		{"unknown field", `{"rating":4,"title":"t","body":"","stars":5}`, 400, "malformed_request", "stars"},
		{"field in another case", `{"Rating":4,"title":"t","body":""}`, 400, "malformed_request", ""},
		{"duplicated key", `{"rating":4,"rating":5,"title":"t","body":""}`, 400, "malformed_request", ""},
		{"null", `null`, 400, "malformed_request", ""},
		{"array", `[]`, 400, "malformed_request", ""},
		{"not JSON", `{"rating":`, 400, "malformed_request", ""},
		{"invalid UTF-8", "{\"rating\":4,\"title\":\"\xff\",\"body\":\"\"}", 400, "malformed_request", ""},
	}
	forEachEngine(t, func(t *testing.T, e *env) {
		_, c := e.customer("val@example.com")
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := c.Do("POST", "/api/v1/products/p-1/reviews", tc.body)
				p := webtest.AssertProblem(t, r, tc.status, tc.code)
				if tc.field != "" {
					webtest.AssertFieldError(t, p, tc.field)
				}
			})
		}
		if n := e.count("reviews_reviews", ""); n != 0 {
			t.Errorf("%d reviews stored after refused requests", n)
		}
		if n := e.count("outbox", "aggregate_type = 'review'"); n != 0 {
			t.Errorf("%d review events after refused requests", n)
		}
		if r := e.rating("p-1"); r != (Rating{}) {
			t.Errorf("rating %+v after refused requests", r)
		}

		// The limits themselves are accepted, line breaks and tabs kept
		// inside the body, surrounding white space trimmed.
		title, body := strings.Repeat("é", MaxTitle), strings.Repeat("ü\n\t", MaxBody/3)+"üü"
		r := c.Do("POST", "/api/v1/products/p-1/reviews", map[string]any{"rating": 1, "title": title, "body": body})
		r.WantStatus(t, http.StatusCreated)
		if r.Field("title") != title || r.Field("body") != body {
			t.Errorf("stored title/body differ from what was sent")
		}
		r = c.Do("POST", "/api/v1/products/p-2/reviews", map[string]any{"rating": 1, "title": "  Nice ", "body": "\n fine \n"})
		r.WantStatus(t, http.StatusCreated)
		if r.Field("title") != "Nice" || r.Field("body") != "fine" {
			t.Errorf("title %q body %q, want them trimmed", r.Field("title"), r.Field("body"))
		}
		var stored string
		if err := e.db.Reader().QueryRow(`SELECT body FROM reviews_reviews WHERE product_id = 'p-1'`).Scan(&stored); err != nil || stored != body {
			t.Errorf("stored body differs (%v)", err)
		}
	})
}

// CreateTx validates on its own: a Go caller gets the same 422s as HTTP.
func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		in    CreateRequest
		field string // "" when valid
	}{
		{"valid", CreateRequest{Rating: 3, Title: "ok", Body: ""}, ""},
		{"title at limit", CreateRequest{Rating: 3, Title: strings.Repeat("界", MaxTitle)}, ""},
		{"title over", CreateRequest{Rating: 3, Title: strings.Repeat("界", MaxTitle+1)}, "title"},
		{"body over", CreateRequest{Rating: 3, Title: "t", Body: strings.Repeat("x", MaxBody+1)}, "body"},
		{"body with CR LF", CreateRequest{Rating: 3, Title: "t", Body: "a\r\nb"}, ""},
		{"body with DEL", CreateRequest{Rating: 3, Title: "t", Body: "a\x7fb"}, "body"},
		{"body invalid UTF-8", CreateRequest{Rating: 3, Title: "t", Body: "a\xffb"}, "body"},
		{"title isolate", CreateRequest{Rating: 3, Title: "a\u2066b"}, "title"},
		{"emoji sequence", CreateRequest{Rating: 3, Title: "👩\u200d🍳 great"}, ""},
		{"rating low", CreateRequest{Rating: 0, Title: "t"}, "rating"},
		{"rating high", CreateRequest{Rating: 6, Title: "t"}, "rating"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.in.validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "validation_failed") {
				t.Fatalf("validate = %v, want validation_failed", err)
			}
			found := false
			for _, f := range fieldsOf(err) {
				found = found || f == tc.field
			}
			if !found {
				t.Errorf("validate = %v, want it to name %s", err, tc.field)
			}
		})
	}
}
