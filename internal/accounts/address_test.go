package accounts

import (
	"net/http"
	"sync"
	"testing"

	"mercato/internal/platform/web/webtest"
)

func sampleAddress() map[string]any {
	return map[string]any{"name": "Ana Lima", "line1": "3 rue de la Paix", "city": "Lyon", "region": "ARA",
		"postal_code": "69002", "country": "fr", "phone": "+33 4 12 34 56 78"}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func TestAddressBook(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		_, tok := e.register("ana@example.com")
		_, otherTok := e.register("ben@example.com")
		ana, ben := e.as(tok), e.as(otherTok)

		t.Run("empty book is an empty list", func(t *testing.T) {
			r := ana.Do("GET", "/api/v1/me/addresses", nil)
			r.WantStatus(t, http.StatusOK)
			if string(r.Body) != `{"items":[]}` {
				t.Errorf("empty book = %s", r.Body)
			}
		})
		var first, second Address
		t.Run("the first address becomes the default", func(t *testing.T) {
			r := ana.Do("POST", "/api/v1/me/addresses", sampleAddress())
			r.WantStatus(t, http.StatusCreated)
			r.Decode(t, &first)
			if !first.IsDefault || first.Country != "FR" || first.Line2 != "" {
				t.Errorf("first address = %+v", first)
			}
			r = ana.Do("POST", "/api/v1/me/addresses", with(sampleAddress(), "city", "Paris", "phone", nil, "line2", "Bât. B"))
			r.WantStatus(t, http.StatusCreated)
			r.Decode(t, &second)
			if second.IsDefault {
				t.Errorf("the second address took the default")
			}
		})
		t.Run("a new default replaces the old one", func(t *testing.T) {
			r := ana.Do("PATCH", "/api/v1/me/addresses/"+second.ID, map[string]any{"is_default": true, "postal_code": "75001"})
			r.WantStatus(t, http.StatusOK)
			var a Address
			r.Decode(t, &a)
			if !a.IsDefault || a.PostalCode != "75001" || a.City != "Paris" {
				t.Errorf("patched = %+v", a)
			}
			var p Page[Address]
			ana.Do("GET", "/api/v1/me/addresses", nil).Decode(t, &p)
			if len(p.Items) != 2 || p.Items[0].ID != second.ID || !p.Items[0].IsDefault || p.Items[1].IsDefault {
				t.Errorf("book = %+v", p.Items)
			}
			if n := e.count("accounts_addresses", "is_default = 1"); n != 1 {
				t.Errorf("%d defaults", n)
			}
		})
		t.Run("deleting the default promotes another", func(t *testing.T) {
			ana.Do("DELETE", "/api/v1/me/addresses/"+second.ID, nil).WantStatus(t, http.StatusNoContent)
			var p Page[Address]
			ana.Do("GET", "/api/v1/me/addresses", nil).Decode(t, &p)
			if len(p.Items) != 1 || p.Items[0].ID != first.ID || !p.Items[0].IsDefault {
				t.Errorf("book after delete = %+v", p.Items)
			}
		})

		failures := []struct {
			name, method, path string
			c                  *webtest.Client
			body               any
			status             int
			code, field        string
		}{
			{"another's address (patch)", "PATCH", "/api/v1/me/addresses/" + first.ID, ben, map[string]any{"city": "X"}, 404, "not_found", ""},
			{"another's address (delete)", "DELETE", "/api/v1/me/addresses/" + first.ID, ben, nil, 404, "not_found", ""},
			{"unknown address", "PATCH", "/api/v1/me/addresses/nope", ana, map[string]any{"city": "X"}, 404, "not_found", ""},
			{"missing fields", "POST", "/api/v1/me/addresses", ana, map[string]any{"name": "Ana"}, 422, "validation_failed", "line1"},
			{"unknown country", "POST", "/api/v1/me/addresses", ana, with(sampleAddress(), "country", "XX"), 422, "validation_failed", "country"},
			{"alpha-3 country", "POST", "/api/v1/me/addresses", ana, with(sampleAddress(), "country", "FRA"), 422, "validation_failed", "country"},
			{"bad phone", "POST", "/api/v1/me/addresses", ana, with(sampleAddress(), "phone", "call me"), 422, "validation_failed", "phone"},
			{"long postal code", "POST", "/api/v1/me/addresses", ana, with(sampleAddress(), "postal_code", "123456789012345678901"), 422, "validation_failed", "postal_code"},
			{"blank a required field", "PATCH", "/api/v1/me/addresses/" + first.ID, ana, map[string]any{"city": "  "}, 422, "validation_failed", "city"},
			{"undefault the default", "PATCH", "/api/v1/me/addresses/" + first.ID, ana, map[string]any{"is_default": false}, 422, "validation_failed", "is_default"},
			{"unknown field", "POST", "/api/v1/me/addresses", ana, with(sampleAddress(), "street", "x"), 400, "malformed_request", "street"},
			{"anonymous", "POST", "/api/v1/me/addresses", e.c, sampleAddress(), 401, "unauthorized", ""},
		}
		for _, tc := range failures {
			t.Run(tc.name, func(t *testing.T) {
				before := e.snapshot()
				p := webtest.AssertProblem(t, tc.c.Do(tc.method, tc.path, tc.body), tc.status, tc.code)
				if tc.field != "" {
					webtest.AssertFieldError(t, p, tc.field)
				}
				e.assertUnchanged(before)
			})
		}
		t.Run("the book holds at most 50", func(t *testing.T) {
			for range maxAddresses - 1 {
				ben.Do("POST", "/api/v1/me/addresses", sampleAddress()).WantStatus(t, http.StatusCreated)
			}
			ben.Do("POST", "/api/v1/me/addresses", sampleAddress()).WantStatus(t, http.StatusCreated)
			webtest.AssertProblem(t, ben.Do("POST", "/api/v1/me/addresses", sampleAddress()), 422, "limit_exceeded")
		})
	})
}

// Parallel adds to one address book, on both engines (and on PostgreSQL
// across group-commit workers): the book never exceeds its cap, exactly one
// address is the default, and no request fails with a server error.
func TestAddressBookRace(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		id, tok := e.register("racer@example.com")
		c := e.as(tok)
		const n = maxAddresses + 10
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				statuses[i] = c.Do("POST", "/api/v1/me/addresses", with(sampleAddress(), "is_default", i%7 == 0)).Status
			})
		}
		wg.Wait()
		created := 0
		for i, st := range statuses {
			switch st {
			case http.StatusCreated:
				created++
			case http.StatusUnprocessableEntity: // the book is full
			default:
				t.Errorf("request %d: status %d", i, st)
			}
		}
		if created != maxAddresses {
			t.Errorf("%d addresses created by %d parallel adds, want the cap %d", created, n, maxAddresses)
		}
		if got := e.count("accounts_addresses", "user_id = $1", id); got != maxAddresses {
			t.Errorf("the book holds %d addresses, want %d", got, maxAddresses)
		}
		if got := e.count("accounts_addresses", "user_id = $1 AND is_default = 1", id); got != 1 {
			t.Errorf("%d default addresses, want 1", got)
		}
	})
}
