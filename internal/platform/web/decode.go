package web

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"mercato/internal/platform/errs"
)

// maxDepth bounds the nesting of objects and arrays in a request body.
const maxDepth = 64

// maxFieldErrors bounds the field errors one 422 answer lists.
const maxFieldErrors = 20

var (
	typeUnmarshaler     = reflect.TypeFor[json.Unmarshaler]()
	typeTextUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// decodeJSON checks body against the type v points to and then decodes it
// into v with encoding/json (which therefore never sees a body the walk
// refused). The rules, each naming the field (a dotted path with array
// indices: "lines.0.sku"):
//   - 400 Malformed: not JSON text (syntax, invalid UTF-8, an escaped lone
//     surrogate — all of which encoding/json would silently turn into
//     U+FFFD), a field name that is not exactly one of the struct's (names
//     are case-sensitive), a key given twice in one object, nesting deeper
//     than maxDepth, data after the value, and a top-level value of the
//     wrong kind (null or an array where an object is expected);
//   - 422 Invalid: a value of the wrong type, a number out of its type's
//     range, a string holding NUL (no store keeps it), a string longer than
//     its maximum (TagMaxLen, DefaultMaxLen), a value a custom
//     UnmarshalJSON or UnmarshalText refuses. Up to maxFieldErrors fields
//     are reported at once.
//
// A 400 wins over any 422 found in the same body.
func decodeJSON(op string, body []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errs.E(op, errs.Internal, errors.New("web: decode target must be a non-nil pointer"))
	}
	w := &walker{op: op, body: body, dec: json.NewDecoder(bytes.NewReader(body)), badUTF8: !utf8.Valid(body)}
	w.dec.UseNumber()
	if err := w.value(rv.Type().Elem(), "", DefaultMaxLen, false); err != nil {
		return err
	}
	if _, err := w.dec.Token(); err != io.EOF {
		return errs.E(op, errs.Malformed, "the request body holds data after the JSON value")
	}
	if len(w.invalid) > 0 {
		return errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields", w.invalid)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(op, err) // a case the walk does not know; encoding/json's word
	}
	return nil
}

// walker reads a body token by token against a Go type.
type walker struct {
	op      string
	body    []byte
	dec     *json.Decoder
	badUTF8 bool // the body holds invalid UTF-8: check the bytes of each string
	depth   int
	invalid []errs.FieldError // the 422s found so far
}

// next reads the next token. bad reports a string whose bytes are not
// valid UTF-8 or that escapes a lone surrogate.
func (w *walker) next() (tok json.Token, bad bool, err error) {
	start := w.dec.InputOffset()
	tok, err = w.dec.Token()
	if err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, false, errs.E(w.op, errs.Malformed, "malformed JSON at byte "+strconv.FormatInt(syn.Offset, 10))
		}
		return nil, false, errs.E(w.op, errs.Malformed, "malformed JSON: the body ends early")
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' || v == '[' {
			if w.depth++; w.depth > maxDepth {
				return nil, false, errs.E(w.op, errs.Malformed, "the request body nests deeper than "+strconv.Itoa(maxDepth)+" levels")
			}
		} else {
			w.depth--
		}
	case string:
		raw := w.body[start:w.dec.InputOffset()]
		bad = w.badUTF8 && !utf8.Valid(raw) || strings.ContainsRune(v, utf8.RuneError) && hidesSurrogate(v, raw)
	}
	return tok, bad, nil
}

// hidesSurrogate reports whether decoded string s holds more U+FFFD than its
// JSON literal raw spells (literally or as \ufffd): the rest came from
// escaped lone surrogates (raw is valid UTF-8 here).
func hidesSurrogate(s string, raw []byte) bool {
	spelled := bytes.Count(raw, []byte("\uFFFD"))
	for i := 0; i+1 < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] == 'u' && i+6 <= len(raw) && strings.EqualFold(string(raw[i+2:i+6]), "fffd") {
			spelled++
		}
		i++ // skip the escaped character
	}
	return strings.Count(s, "\uFFFD") > spelled
}

func (w *walker) malformedAt(path, msg string) error {
	return errs.E(w.op, errs.Malformed, msg+" at "+strconv.Quote(path),
		[]errs.FieldError{{Field: path, Message: msg}})
}

func (w *walker) invalidAt(path, msg string) {
	if len(w.invalid) < maxFieldErrors {
		w.invalid = append(w.invalid, errs.FieldError{Field: path, Message: msg})
	}
}

// value walks one value of type t at path; maxLen bounds its strings and
// quoted is the ,string option.
func (w *walker) value(t reflect.Type, path string, maxLen int, quoted bool) error {
	nullable := false
	for t.Kind() == reflect.Pointer {
		t, nullable = t.Elem(), true
	}
	switch {
	case t.Kind() == reflect.Interface:
		return w.anyValue(path, maxLen)
	case reflect.PointerTo(t).Implements(typeUnmarshaler):
		return w.unmarshaler(t, nullable, path, maxLen)
	case reflect.PointerTo(t).Implements(typeTextUnmarshaler):
		return w.text(t, path, maxLen)
	}
	tok, bad, err := w.next()
	switch {
	case err != nil:
		return err
	case tok == nil && path == "":
		return w.mismatch(tok, path, goKind(t)) // a null body is no request
	case tok == nil:
		return nil // null leaves the value as it is
	case bad:
		return w.malformedAt(path, "holds invalid UTF-8")
	}
	if s, ok := tok.(string); ok && quoted {
		return w.quotedValue(t, path, s, maxLen)
	}
	switch t.Kind() {
	case reflect.Struct:
		if tok != json.Delim('{') {
			return w.mismatch(tok, path, "object")
		}
		return w.object(t, path)
	case reflect.Map:
		if tok != json.Delim('{') {
			return w.mismatch(tok, path, "object")
		}
		return w.mapValue(t, path, maxLen)
	case reflect.Slice, reflect.Array:
		if s, ok := tok.(string); ok && t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				w.invalidAt(path, "must be base64 (RFC 4648, padded)")
			}
			return nil
		}
		if tok != json.Delim('[') {
			return w.mismatch(tok, path, "array")
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(t.Elem(), join(path, strconv.Itoa(i)), maxLen, false); err != nil {
				return err
			}
		}
		_, _, err := w.next() // ]
		return err
	case reflect.String:
		s, ok := tok.(string)
		if !ok {
			return w.mismatch(tok, path, "string")
		}
		w.checkString(path, s, maxLen)
		return nil
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return w.mismatch(tok, path, "boolean")
		}
		return nil
	}
	if kind := numberKind(t); kind != "" {
		n, ok := tok.(json.Number)
		if !ok {
			return w.mismatch(tok, path, kind)
		}
		w.checkNumber(t, path, string(n))
		return nil
	}
	return w.skipValue(tok, path) // chan, func, complex: encoding/json refuses them itself
}

// object walks the members of a struct's object; the '{' is read.
func (w *walker) object(t reflect.Type, path string) error {
	fs := fieldsOf(t)
	seen := make(map[string]bool, len(fs.list))
	for w.dec.More() {
		key, kp, err := w.objectKey(path, seen)
		if err != nil {
			return err
		}
		i, known := fs.byName[key]
		if !known {
			msg := "unknown field"
			if name, ok := fs.byFold[strings.ToLower(key)]; ok {
				msg += " (field names are case-sensitive: " + strconv.Quote(name) + ")"
			}
			return errs.E(w.op, errs.Malformed, "unknown field "+strconv.Quote(clip(kp)),
				[]errs.FieldError{{Field: kp, Message: msg}})
		}
		f := fs.list[i]
		if err := w.value(f.typ, kp, f.maxLen, f.quoted); err != nil {
			return err
		}
	}
	_, _, err := w.next() // }
	return err
}

// mapValue walks the members of a map's object; the '{' is read.
func (w *walker) mapValue(t reflect.Type, path string, maxLen int) error {
	seen := map[string]bool{}
	kt := t.Key()
	for w.dec.More() {
		key, kp, err := w.objectKey(path, seen)
		if err != nil {
			return err
		}
		switch {
		case reflect.PointerTo(kt).Implements(typeTextUnmarshaler):
			w.checkString(kp, key, DefaultMaxLen)
			if err := reflect.New(kt).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(key)); err != nil {
				w.invalidAt(kp, "is not a valid key")
			}
		case kt.Kind() == reflect.String:
			w.checkString(kp, key, DefaultMaxLen)
		default:
			w.checkNumber(kt, kp, key)
		}
		if err := w.value(t.Elem(), kp, maxLen, false); err != nil {
			return err
		}
	}
	_, _, err := w.next() // }
	return err
}

// objectKey reads the next member name of an object under path (seen
// holds the names read so far): a name with invalid UTF-8 or given twice is
// malformed. It returns the name and its path.
func (w *walker) objectKey(path string, seen map[string]bool) (key, kp string, err error) {
	tok, bad, err := w.next()
	if err != nil {
		return "", "", err
	}
	key = tok.(string)
	kp = join(path, key)
	switch {
	case bad:
		return "", "", w.malformedAt(kp, "the name holds invalid UTF-8")
	case seen[key]:
		return "", "", w.malformedAt(kp, "is given twice")
	}
	seen[key] = true
	return key, kp, nil
}

// anyValue walks a value of any JSON kind.
func (w *walker) anyValue(path string, maxLen int) error {
	tok, bad, err := w.next()
	if err != nil {
		return err
	}
	if bad {
		return w.malformedAt(path, "holds invalid UTF-8")
	}
	switch v := tok.(type) {
	case string:
		w.checkString(path, v, maxLen)
	case json.Delim:
		if v == '[' {
			for i := 0; w.dec.More(); i++ {
				if err := w.anyValue(join(path, strconv.Itoa(i)), maxLen); err != nil {
					return err
				}
			}
			_, _, err := w.next()
			return err
		}
		seen := map[string]bool{}
		for w.dec.More() {
			key, kp, err := w.objectKey(path, seen)
			if err != nil {
				return err
			}
			w.checkString(kp, key, DefaultMaxLen)
			if err := w.anyValue(kp, maxLen); err != nil {
				return err
			}
		}
		_, _, err := w.next()
		return err
	}
	return nil
}

// unmarshaler walks a value of a type with its own UnmarshalJSON: the
// generic checks first, then the type's own verdict on the same bytes.
func (w *walker) unmarshaler(t reflect.Type, nullable bool, path string, maxLen int) error {
	start := w.dec.InputOffset()
	before := len(w.invalid)
	if err := w.anyValue(path, maxLen); err != nil || len(w.invalid) > before {
		return err
	}
	raw := bytes.TrimLeft(w.body[start:w.dec.InputOffset()], " \t\r\n,:")
	if nullable && string(raw) == "null" {
		return nil // encoding/json sets the pointer to nil without asking
	}
	err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	var ee *errs.Error
	switch {
	case errors.As(err, &te):
		w.invalidAt(join(path, te.Field), "must be "+article(goKind(te.Type))+" (got "+clip(te.Value)+")")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		kp := join(path, name)
		return errs.E(w.op, errs.Malformed, "unknown field "+strconv.Quote(clip(kp)),
			[]errs.FieldError{{Field: kp, Message: "unknown field"}})
	case errors.As(err, &ee) && ee.Msg != "":
		w.invalidAt(path, ee.Msg)
	case t == typeTime:
		w.invalidAt(path, "must be an RFC 3339 date-time")
	default:
		w.invalidAt(path, "is not a valid value")
	}
	return nil
}

// text walks a value of a type with UnmarshalText: a string or null.
func (w *walker) text(t reflect.Type, path string, maxLen int) error {
	tok, bad, err := w.next()
	if err != nil || tok == nil {
		return err
	}
	if bad {
		return w.malformedAt(path, "holds invalid UTF-8")
	}
	s, ok := tok.(string)
	if !ok {
		return w.mismatch(tok, path, "string")
	}
	before := len(w.invalid)
	if w.checkString(path, s, maxLen); len(w.invalid) == before {
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			w.invalidAt(path, "is not a valid value")
		}
	}
	return nil
}

// quotedValue checks s, the string a ,string field arrived in.
func (w *walker) quotedValue(t reflect.Type, path, s string, maxLen int) error {
	switch {
	case t.Kind() == reflect.String:
		var inner string
		if err := json.Unmarshal([]byte(s), &inner); err != nil || !utf8.ValidString(inner) {
			w.invalidAt(path, "must be a JSON string inside a string")
			return nil
		}
		w.checkString(path, inner, maxLen)
	case t.Kind() == reflect.Bool:
		if s != "true" && s != "false" {
			w.invalidAt(path, "must be \"true\" or \"false\"")
		}
	case s == "" || s[0] != '-' && (s[0] < '0' || s[0] > '9') || !json.Valid([]byte(s)):
		w.invalidAt(path, "must be "+article(numberKind(t))+" inside a string")
	default:
		w.checkNumber(t, path, s)
	}
	return nil
}

// checkString records a string that holds NUL or is longer than maxLen
// characters.
func (w *walker) checkString(path, s string, maxLen int) {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		w.invalidAt(path, "must not contain NUL characters")
	case len(s) > maxLen && utf8.RuneCountInString(s) > maxLen:
		w.invalidAt(path, "must be at most "+strconv.Itoa(maxLen)+" characters")
	}
}

// checkNumber records a number literal n that does not fit t the way
// encoding/json parses it (integers without fraction or exponent).
func (w *walker) checkNumber(t reflect.Type, path, n string) {
	var err error
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		_, err = strconv.ParseInt(n, 10, t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		_, err = strconv.ParseUint(n, 10, t.Bits())
	case reflect.Float32, reflect.Float64:
		if !json.Valid([]byte(n)) {
			err = strconv.ErrSyntax
		} else {
			_, err = strconv.ParseFloat(n, t.Bits())
		}
	default:
		err = strconv.ErrSyntax
	}
	if err != nil {
		kind := numberKind(t)
		if errors.Is(err, strconv.ErrRange) {
			w.invalidAt(path, "is out of range for "+article(kind))
		} else {
			w.invalidAt(path, "must be "+article(kind))
		}
	}
}

// mismatch records a value of the wrong JSON kind and skips it; at the top
// level the whole body is of the wrong kind, which is Malformed.
func (w *walker) mismatch(tok json.Token, path, want string) error {
	if path == "" {
		return errs.E(w.op, errs.Malformed, "the request body must be a JSON "+want)
	}
	w.invalidAt(path, "must be "+article(want)+" (got "+tokenKind(tok)+")")
	return w.skipValue(tok, path)
}

// skipValue consumes the rest of the value at path whose first token was
// tok; invalid UTF-8 in it is still Malformed.
func (w *walker) skipValue(tok json.Token, path string) error {
	if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
		for depth := 1; depth > 0; {
			t, bad, err := w.next()
			if err != nil {
				return err
			}
			if bad {
				return w.malformedAt(path, "holds invalid UTF-8")
			}
			if d, ok := t.(json.Delim); ok {
				if d == '{' || d == '[' {
					depth++
				} else {
					depth--
				}
			}
		}
	}
	return nil
}

func numberKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return ""
}

// goKind names the JSON kind of Go type t.
func goKind(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	if k := numberKind(t); k != "" {
		return k
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return "object"
}

func tokenKind(tok json.Token) string {
	switch v := tok.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	}
	return "null"
}

// article prefixes a kind with its indefinite article ("an object").
func article(kind string) string {
	switch kind[0] {
	case 'a', 'e', 'i', 'o', 'u':
		return "an " + kind
	}
	return "a " + kind
}

// join appends a member name or index to a field path. Names a client made
// up are clipped and their control characters replaced, so that a problem
// document never echoes more than a short, printable name.
func join(path, name string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return utf8.RuneError
		}
		return r
	}, clip(name))
	if path == "" {
		return name
	}
	return path + "." + name
}

// clip shortens s to at most 64 characters.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	i, n := 0, 0
	for i < len(s) && n < max {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
	}
	if i == len(s) {
		return s
	}
	return s[:i] + "…"
}
