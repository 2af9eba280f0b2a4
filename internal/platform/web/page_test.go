package web_test

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/web"
)

func TestPageParams(t *testing.T) {
	tests := []struct {
		query  string
		limit  int
		cursor string
		field  string // the field of a 422
	}{
		{"", 20, "", ""},
		{"limit=", 20, "", ""},
		{"limit=1", 1, "", ""},
		{"limit=100", 100, "", ""},
		{"limit=101", 100, "", ""},
		{"limit=99999999999999999999999", 100, "", ""},
		{"limit=007", 7, "", ""},
		{"limit=0", 0, "", "limit"},
		{"limit=00", 0, "", "limit"},
		{"limit=-1", 0, "", "limit"},
		{"limit=%2B5", 0, "", "limit"},
		{"limit=1.5", 0, "", "limit"},
		{"limit=ten", 0, "", "limit"},
		{"limit=%205", 0, "", "limit"},
		{"cursor=abc&limit=5", 5, "abc", ""},
		{"cursor=" + strings.Repeat("a", web.MaxCursorLen+1), 0, "", "cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			p, err := web.PageParams(httptest.NewRequest("GET", "/x?"+tt.query, nil))
			if tt.field != "" {
				var e *errs.Error
				if !errors.As(err, &e) || e.Kind != errs.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != tt.field {
					t.Fatalf("PageParams = %+v, %v; want 422 naming %s", p, err, tt.field)
				}
				return
			}
			if err != nil || p.Limit != tt.limit || p.Cursor != tt.cursor {
				t.Errorf("PageParams = %+v, %v; want limit %d cursor %q", p, err, tt.limit, tt.cursor)
			}
		})
	}
}

type keyset struct {
	At int64  `json:"at"`
	ID string `json:"id"`
}

func TestCursor(t *testing.T) {
	key := keyset{At: 1767312000000000, ID: "0192f0c1-7b7e-7000-8000-000000000001"}
	c := web.EncodeCursor(key)
	if strings.ContainsAny(c, "+/=") || strings.Contains(c, key.ID) {
		t.Errorf("cursor %q is not opaque base64url", c)
	}
	var got keyset
	if err := web.DecodeCursor(c, &got); err != nil || got != key {
		t.Fatalf("DecodeCursor = %+v, %v; want %+v", got, err, key)
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	other := web.EncodeCursor(map[string]any{"at": 1, "id": "x", "extra": true})
	tests := []struct{ name, cursor string }{
		{"empty", ""},
		{"not base64url", "***"},
		{"padded", c + "=="},
		{"an edited first character", flip(c, 0)},
		{"an edited middle character", flip(c, len(c)/2)},
		{"an edited last character", flip(c, len(c)-1)},
		{"cut short", c[:len(c)-3]},
		{"only a checksum", "AAAAAA"},
		{"another list's cursor", other},
		{"a cursor of the wrong shape", web.EncodeCursor([]int{1, 2})},
		{"too long", strings.Repeat("A", web.MaxCursorLen+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := keyset{ID: "kept"}
			err := web.DecodeCursor(tt.cursor, &v)
			var e *errs.Error
			if !errors.As(err, &e) || e.Kind != errs.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != "cursor" {
				t.Fatalf("DecodeCursor(%q) = %v; want 422 naming cursor", tt.cursor, err)
			}
			if v.ID != "kept" {
				t.Errorf("a refused cursor changed the key to %+v", v)
			}
		})
	}
	t.Run("a key too long for a cursor is a programming error", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Errorf("EncodeCursor accepted a %d-byte key", web.MaxCursorLen)
			}
		}()
		web.EncodeCursor(strings.Repeat("x", web.MaxCursorLen))
	})
	t.Run("After", func(t *testing.T) {
		var k keyset
		if ok, err := (web.PageRequest{Limit: 5}).After(&k); ok || err != nil {
			t.Errorf("After without a cursor = %v, %v", ok, err)
		}
		if ok, err := (web.PageRequest{Limit: 5, Cursor: c}).After(&k); !ok || err != nil || k != key {
			t.Errorf("After = %v, %v, %+v", ok, err, k)
		}
		if ok, err := (web.PageRequest{Cursor: "bad"}).After(&k); !ok || errs.KindOf(err) != errs.Invalid {
			t.Errorf("After(bad) = %v, %v", ok, err)
		}
	})
}

func TestPage(t *testing.T) {
	rows := func(n int) []keyset {
		out := []keyset{}
		for i := range n {
			out = append(out, keyset{At: int64(i), ID: string(rune('a' + i))})
		}
		return out
	}
	key := func(k keyset) any { return k }
	tests := []struct {
		name  string
		rows  []keyset
		limit int
		items int
		next  *keyset // the key NextCursor decodes to; nil: the last page
	}{
		{"nil rows", nil, 3, 0, nil},
		{"fewer than the limit", rows(2), 3, 2, nil},
		{"exactly the limit", rows(3), 3, 3, nil},
		{"one more than the limit", rows(4), 3, 3, &keyset{At: 2, ID: "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := web.NewPage(tt.rows, tt.limit, key)
			if len(p.Items) != tt.items || p.Items == nil {
				t.Errorf("items %v, want %d non-nil", p.Items, tt.items)
			}
			switch {
			case tt.next == nil && p.NextCursor != "":
				t.Errorf("next_cursor %q on the last page", p.NextCursor)
			case tt.next != nil:
				var k keyset
				if err := web.DecodeCursor(p.NextCursor, &k); err != nil || k != *tt.next {
					t.Errorf("next cursor decodes to %+v, %v; want %+v", k, err, *tt.next)
				}
			}
		})
	}
	t.Run("nil items encode as []", func(t *testing.T) {
		for _, v := range []any{web.Page[keyset]{}, &web.Page[keyset]{}, []web.Page[int]{{}}} {
			b, err := json.Marshal(v)
			if err != nil || !strings.Contains(string(b), `"items":[]`) || strings.Contains(string(b), "next_cursor") {
				t.Errorf("Marshal(%T) = %s, %v", v, b, err)
			}
		}
	})
}
