package plan

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"mercato/internal/catalog/search"
	"mercato/internal/platform/errs"
)

// MaxIDLen caps a document id.
const MaxIDLen = 200

// CleanDocs checks the documents of a Put and returns them with their
// strings made storable on both indexes (invalid UTF-8 replaced, NUL
// dropped). An empty or over-long id, a negative price or a rating outside
// 0..5 is refused (errs.Invalid): the catalog builds documents, so such a
// document is a bug upstream, not a shopper's mistake. Of documents sharing
// an id, the last is kept.
func CleanDocs(docs []search.Document) ([]search.Document, error) {
	out := make([]search.Document, 0, len(docs))
	pos := make(map[string]int, len(docs))
	for _, d := range docs {
		if d.ID == "" || len(d.ID) > MaxIDLen || !utf8.ValidString(d.ID) || strings.ContainsRune(d.ID, 0) {
			return nil, errs.E("search.Put", errs.Invalid, fmt.Sprintf("bad document id %q", d.ID))
		}
		if d.PriceMin < 0 || d.PriceMax < 0 {
			return nil, errs.E("search.Put", errs.Invalid, "document "+d.ID+": negative price")
		}
		if math.IsNaN(d.Rating) || d.Rating < 0 || d.Rating > 5 || d.RatingCount < 0 {
			return nil, errs.E("search.Put", errs.Invalid, "document "+d.ID+": rating out of range")
		}
		d.Title = clean(d.Title)
		d.Description = clean(d.Description)
		d.Currency = clean(d.Currency)
		d.CategoryIDs = distinct(cleanAll(d.CategoryIDs))
		d.CategoryNames = cleanAll(d.CategoryNames)
		d.Attributes = cleanAll(d.Attributes)
		d.SKUs = cleanAll(d.SKUs)
		d.Channels = distinct(cleanAll(d.Channels))
		if i, ok := pos[d.ID]; ok {
			out[i] = d
			continue
		}
		pos[d.ID] = len(out)
		out = append(out, d)
	}
	return out, nil
}

// CleanIDs drops the ids no document can have (so Delete of them is a
// no-op) and duplicates.
func CleanIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id == "" || len(id) > MaxIDLen || !utf8.ValidString(id) || strings.ContainsRune(id, 0) || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	return out
}

func clean(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

func cleanAll(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s = clean(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// distinct drops repeated values (a category listed twice counts once).
func distinct(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	out := ss[:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
