// Package plan is what both search indexes share of a search.Query: the
// checks that refuse a bad query (wrapping search.ErrInvalidQuery), the
// split of the user's text into words, the opaque cursor and the empty
// facets. An index turns a Plan into its own query language; the user's
// text never reaches a query parser.
//
// # Words
//
// The text is NFKC-normalised (full-width letters become ASCII), lowercased
// and cut into words: runs of letters and digits (an apostrophe between
// letters stays inside a word: "men's"). A run of CJK characters (Han, kana,
// Hangul) is a word of its own, even inside a Latin run ("T恤" is "t" and
// "恤"), and carries its bigrams ("蓝牙耳机" → 蓝牙 牙耳 耳机; one character
// is its own gram), the units the indexes match Chinese by. Everything else
// — punctuation, query-language operators, emoji — separates words. At most
// MaxWords words are kept.
package plan

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"mercato/internal/catalog/search"
	"mercato/internal/platform/errs"
)

// MaxWords is the number of words of a query's text that are matched; the
// rest are ignored (a 200-rune text can hold 100 one-letter words).
const MaxWords = 12

// maxFilterLen caps CategoryID and Channel.
const maxFilterLen = 200

// maxCursorLen caps a cursor before it is decoded.
const maxCursorLen = 2048

// Word is one word of the text.
type Word struct {
	Text string
	// CJK words match by Grams; the others by Text (analysed, fuzzy).
	CJK   bool
	Grams []string
}

// Fuzziness is the edit distance a Latin word is matched with: 0 up to 4
// runes, 1 up to 8, 2 beyond.
func (w Word) Fuzziness() int {
	n := utf8.RuneCountInString(w.Text)
	switch {
	case w.CJK || n <= 4:
		return 0
	case n <= 8:
		return 1
	}
	return 2
}

// MinGrams is how many of a CJK word's grams a document must hold: at
// least half (so one wrong or swapped character still matches).
func (w Word) MinGrams() int { return (len(w.Grams) + 1) / 2 }

// Plan is a checked query.
type Plan struct {
	search.Query
	// Text is the normalised words joined by a space ("" lists every
	// document); Raw the whole text normalised (NFKC, lowercase, trimmed), as
	// a SKU is matched.
	Text  string
	Raw   string
	Words []Word
	// After are the sort values of the last hit of the previous page (nil on
	// the first page), as the index wrote them into the cursor.
	After []string
	hash  string
}

// Relevance reports whether hits are ordered by score (SortRelevance with
// some text); SortRelevance without text is SortNewest.
func (p Plan) Relevance() bool { return p.Sort == search.SortRelevance && len(p.Words) > 0 }

// Make checks q for the index named impl (cursors of one index are refused
// by another). A refused query's error wraps search.ErrInvalidQuery and is
// an errs.Invalid naming the field.
func Make(impl string, q search.Query) (Plan, error) {
	p := Plan{Query: q}
	switch q.Sort {
	case "":
		p.Sort = search.SortRelevance
	case search.SortRelevance, search.SortPriceAsc, search.SortPriceDesc, search.SortNewest, search.SortRating:
	default:
		return Plan{}, invalid("sort", "unknown sort order")
	}
	switch {
	case q.Limit == 0:
		p.Limit = search.DefaultLimit
	case q.Limit < 0 || q.Limit > search.MaxLimit:
		return Plan{}, invalid("limit", fmt.Sprintf("must be between 1 and %d", search.MaxLimit))
	}
	if err := checkString("q", q.Text, search.MaxTextLen); err != nil {
		return Plan{}, err
	}
	if err := checkString("category", q.CategoryID, maxFilterLen); err != nil {
		return Plan{}, err
	}
	if err := checkString("channel", q.Channel, maxFilterLen); err != nil {
		return Plan{}, err
	}
	if q.MinPrice != nil && q.MaxPrice != nil && *q.MinPrice > *q.MaxPrice {
		return Plan{}, invalid("min_price", "must not exceed max_price")
	}
	if math.IsNaN(q.MinRating) || q.MinRating < 0 || q.MinRating > 5 {
		return Plan{}, invalid("min_rating", "must be between 0 and 5")
	}
	p.Words = Split(q.Text)
	texts := make([]string, len(p.Words))
	for i, w := range p.Words {
		texts[i] = w.Text
	}
	p.Text = strings.Join(texts, " ")
	p.Raw = strings.TrimSpace(strings.ToLower(norm.NFKC.String(q.Text)))
	p.hash = p.digest(impl)
	if q.Cursor != "" {
		after, err := p.decode(q.Cursor)
		if err != nil {
			return Plan{}, err
		}
		p.After = after
	}
	return p, nil
}

func checkString(field, s string, max int) error {
	switch {
	case !utf8.ValidString(s):
		return invalid(field, "is not valid UTF-8")
	case strings.ContainsRune(s, 0):
		return invalid(field, "must not contain NUL")
	case utf8.RuneCountInString(s) > max:
		return invalid(field, fmt.Sprintf("is longer than %d characters", max))
	}
	return nil
}

func invalid(field, msg string) error {
	return errs.E("search.Search", errs.Invalid, errs.CodeValidation, field+" "+msg,
		[]errs.FieldError{{Field: field, Message: msg}},
		fmt.Errorf("%w: %s %s", search.ErrInvalidQuery, field, msg))
}

// Split cuts text into words (see the package comment).
func Split(text string) []Word { return split(text, MaxWords) }

// Grams are the distinct CJK grams of texts (a document's), as Split makes
// them of a query: what the PostgreSQL index stores to match CJK words by.
func Grams(texts ...string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, t := range texts {
		for _, w := range split(t, -1) {
			for _, g := range w.Grams {
				if !seen[g] {
					seen[g] = true
					out = append(out, g)
				}
			}
		}
	}
	return out
}

// split is Split keeping at most max words (all when max < 0).
func split(text string, max int) []Word {
	text = strings.ToLower(norm.NFKC.String(text))
	var words []Word
	var cur []rune
	curCJK := false
	flush := func() {
		// an apostrophe may end a run ("boys'"): drop it
		for len(cur) > 0 && isApostrophe(cur[len(cur)-1]) {
			cur = cur[:len(cur)-1]
		}
		if len(cur) > 0 && (max < 0 || len(words) < max) {
			w := Word{Text: string(cur), CJK: curCJK}
			if curCJK {
				w.Grams = grams(cur)
			}
			words = append(words, w)
		}
		cur = cur[:0]
	}
	rs := []rune(text)
	for i, r := range rs {
		switch {
		case isCJK(r):
			if !curCJK {
				flush()
			}
			curCJK = true
			cur = append(cur, r)
		case unicode.IsLetter(r) || unicode.IsDigit(r) || (unicode.Is(unicode.Mn, r) && len(cur) > 0):
			if curCJK {
				flush()
			}
			curCJK = false
			cur = append(cur, r)
		case isApostrophe(r) && len(cur) > 0 && !curCJK && i+1 < len(rs) && unicode.IsLetter(rs[i+1]):
			cur = append(cur, '\'')
		default:
			flush()
			curCJK = false
		}
	}
	flush()
	return words
}

func isApostrophe(r rune) bool { return r == '\'' || r == '\u2019' }

// IsCJK reports whether r is matched as CJK (by bigrams).
func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

func grams(rs []rune) []string {
	if len(rs) == 1 {
		return []string{string(rs)}
	}
	out := make([]string, 0, len(rs)-1)
	seen := map[string]bool{}
	for i := 0; i+1 < len(rs); i++ {
		g := string(rs[i : i+2])
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out
}

// digest identifies the query a cursor belongs to: everything but Limit,
// Facets and Cursor.
func (p Plan) digest(impl string) string {
	h := sha256.New()
	part := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	part(impl)
	part(p.Text)
	part(p.CategoryID)
	part(p.Channel)
	part(string(p.Sort))
	for _, v := range []*int64{p.MinPrice, p.MaxPrice} {
		if v == nil {
			part("-")
		} else {
			part(strconv.FormatInt(*v, 10))
		}
	}
	if p.InStock == nil {
		part("-")
	} else {
		part(strconv.FormatBool(*p.InStock))
	}
	part(strconv.FormatFloat(p.MinRating, 'g', -1, 64))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

type cursor struct {
	H string   `json:"h"`
	A []string `json:"a"`
}

// Cursor is the opaque cursor continuing after a hit whose sort values are
// after (the index chooses their form and reads them back from Plan.After).
func (p Plan) Cursor(after []string) string {
	b, err := json.Marshal(cursor{H: p.hash, A: after})
	if err != nil {
		panic(err) // strings always marshal
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (p Plan) decode(s string) ([]string, error) {
	bad := invalid("cursor", "is not a cursor of this query")
	if len(s) > maxCursorLen {
		return nil, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.H != p.hash || len(c.A) == 0 {
		return nil, bad
	}
	for _, a := range c.A {
		if !utf8.ValidString(a) || strings.ContainsRune(a, 0) {
			return nil, bad
		}
	}
	return c.A, nil
}

// BadCursor is the error an index returns when a cursor that passed the
// hash check holds values it cannot read (a cursor of another version).
func BadCursor() error { return invalid("cursor", "is not a cursor of this query") }

// EmptyFacets are facets with every list present and every count zero.
func EmptyFacets() *search.Facets {
	f := &search.Facets{Categories: []search.Count{}}
	lo := int64(0)
	for _, b := range search.PriceBuckets {
		max := b
		f.Price = append(f.Price, search.PriceCount{Min: lo, Max: &max})
		lo = b
	}
	f.Price = append(f.Price, search.PriceCount{Min: lo})
	for _, r := range RatingThresholds {
		f.Rating = append(f.Rating, search.Count{Value: strconv.Itoa(r)})
	}
	f.InStock = []search.Count{{Value: "true"}, {Value: "false"}}
	return f
}

// RatingThresholds are the rating facet's lower bounds, in facet order.
var RatingThresholds = []int{4, 3, 2, 1}

// MaxCategoryFacets is the length cap of the category facet.
const MaxCategoryFacets = 50
