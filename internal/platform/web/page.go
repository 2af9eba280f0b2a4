package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"

	"mercato/internal/platform/errs"
)

// The page size rules of every list (API.md, Lists).
const (
	DefaultPageLimit = 20
	MaxPageLimit     = 100
	// MaxCursorLen bounds a cursor's text; a longer one is refused (422)
	// before it is decoded, and EncodeCursor never makes one.
	MaxCursorLen = 512
)

// PageRequest is what a list request asks for: a page size and where to
// start.
type PageRequest struct {
	// Limit is the page size, 1 to MaxPageLimit.
	Limit int
	// Cursor is the NextCursor of the previous page as the client sent it,
	// "" for the first page. Decode it with After (or DecodeCursor).
	Cursor string
}

// PageParams reads ?limit= and ?cursor= by API.md's rules:
//   - limit absent or empty is DefaultPageLimit; 1 to MaxPageLimit is taken
//     as it is; a larger number (any run of digits) is MaxPageLimit;
//   - limit=0, a negative number, a sign, a fraction or anything that is not
//     digits is 422 validation_failed naming limit;
//   - a cursor longer than MaxCursorLen is 422 naming cursor (its content is
//     checked by After, which knows the key's type).
func PageParams(r *http.Request) (PageRequest, error) {
	q := r.URL.Query()
	p := PageRequest{Limit: DefaultPageLimit, Cursor: q.Get("cursor")}
	var v errs.Validation
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case !allDigits(s) || err == nil && n < 1:
			v.Add("limit", "must be an integer from 1 to "+strconv.Itoa(MaxPageLimit))
		case err != nil || n > MaxPageLimit: // digits beyond int are over the cap too
			p.Limit = MaxPageLimit
		default:
			p.Limit = n
		}
	}
	if len(p.Cursor) > MaxCursorLen {
		v.Add("cursor", "is not a cursor this list returned")
	}
	return p, v.Err("web.PageParams")
}

// After decodes p's cursor into key (a pointer to the keyset type the list
// encoded) and reports whether there was one. A cursor that is not one
// EncodeCursor made for that type is 422 naming cursor.
func (p PageRequest) After(key any) (bool, error) {
	if p.Cursor == "" {
		return false, nil
	}
	return true, DecodeCursor(p.Cursor, key)
}

// Page is one page of a list: {"items": [...], "next_cursor": "..."} with
// next_cursor absent on the last page. Items is never encoded as null: a
// nil slice is written as [].
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// pageJSON is Page without its MarshalJSON.
type pageJSON[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// MarshalJSON writes p with nil Items as [].
func (p Page[T]) MarshalJSON() ([]byte, error) {
	if p.Items == nil {
		p.Items = []T{}
	}
	return json.Marshal(pageJSON[T](p))
}

func (Page[T]) isPage() {}

// pager is implemented by every Page type; the schema generator documents
// them as the plain structs they encode as.
type pager interface{ isPage() }

var typePager = reflect.TypeFor[pager]()

func isPage(t reflect.Type) bool { return t.Implements(typePager) }

// NewPage makes the page of a keyset query that fetched up to limit+1 rows
// (one more than the page, to learn whether another page follows): the
// first limit rows are the items, and when there were more, NextCursor
// encodes key(the last item) with EncodeCursor. Items is never nil.
func NewPage[T any](rows []T, limit int, key func(last T) any) Page[T] {
	p := Page[T]{Items: rows}
	if p.Items == nil {
		p.Items = []T{}
	}
	if limit > 0 && len(rows) > limit {
		p.Items = rows[:limit]
		p.NextCursor = EncodeCursor(key(p.Items[limit-1]))
	}
	return p
}

// cursorSum is how many bytes of checksum a cursor carries.
const cursorSum = 4

// EncodeCursor returns an opaque cursor for key (a keyset position: ids,
// timestamps): base64url, without padding, of key's JSON followed by a
// checksum. The checksum catches a cursor that was edited or cut; it is not
// a signature (a cursor grants nothing: the list's own filters and access
// rules still apply). It panics when key does not encode as JSON or its
// cursor would exceed MaxCursorLen — a key of unbounded text is a
// programming error, not a client's.
func EncodeCursor(key any) string {
	b, err := json.Marshal(key)
	if err != nil {
		panic(fmt.Sprintf("web: EncodeCursor(%T): %v", key, err))
	}
	sum := cursorChecksum(b)
	s := base64.RawURLEncoding.EncodeToString(append(b, sum[:]...))
	if len(s) > MaxCursorLen {
		panic(fmt.Sprintf("web: EncodeCursor(%T): %d characters, over MaxCursorLen", key, len(s)))
	}
	return s
}

// DecodeCursor decodes a cursor made by EncodeCursor into key, a pointer to
// the same type, with Decode's strict rules. Anything else — empty, too
// long, not base64url, a wrong checksum, JSON that does not fit key — is an
// Invalid error (422 validation_failed) naming cursor; key is then left
// untouched.
func DecodeCursor(s string, key any) error {
	bad := errs.E("web.DecodeCursor", errs.Invalid, errs.CodeValidation, "the cursor is not valid",
		[]errs.FieldError{{Field: "cursor", Message: "is not a cursor this list returned"}})
	if s == "" || len(s) > MaxCursorLen {
		return bad
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) <= cursorSum {
		return bad
	}
	body, sum := b[:len(b)-cursorSum], b[len(b)-cursorSum:]
	if want := cursorChecksum(body); !bytes.Equal(sum, want[:]) {
		return bad
	}
	if err := decodeJSON("web.DecodeCursor", body, key); err != nil {
		if errs.KindOf(err) == errs.Internal {
			return err // key is not a pointer: the caller's bug
		}
		return bad
	}
	return nil
}

func cursorChecksum(b []byte) [cursorSum]byte {
	h := sha256.New()
	h.Write([]byte("mercato cursor\x00"))
	h.Write(b)
	var sum [cursorSum]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// allDigits reports whether s is a non-empty run of ASCII digits.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
