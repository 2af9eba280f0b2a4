package web

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"mercato/internal/platform/errs"
)

// Schemer is implemented by types whose JSON form reflection cannot see (a
// custom MarshalJSON): JSONSchema returns the JSON Schema (2020-12) of that
// form. A type with MarshalJSON and no JSONSchema is documented as any value.
type Schemer interface {
	JSONSchema() map[string]any
}

var (
	typeTime      = reflect.TypeFor[time.Time]()
	typeRaw       = reflect.TypeFor[json.RawMessage]()
	typeSchemer   = reflect.TypeFor[Schemer]()
	typeMarshaler = reflect.TypeFor[json.Marshaler]()
	typeText      = reflect.TypeFor[encoding.TextMarshaler]()
)

// schemaGen derives JSON Schemas from Go types the way encoding/json encodes
// them. Named struct types become components (schemas, referenced by $ref),
// which also makes recursive types finite. Not safe for concurrent use.
type schemaGen struct {
	names   map[reflect.Type]string // component name of each named struct
	taken   map[string]bool         // component names in use
	schemas map[string]any          // the components/schemas section
}

func newSchemaGen() *schemaGen {
	g := &schemaGen{names: map[reflect.Type]string{}, taken: map[string]bool{}, schemas: map[string]any{}}
	g.component(reflect.TypeFor[errs.FieldError](), "FieldError")
	g.component(reflect.TypeFor[Problem](), "ProblemDocument")
	return g
}

// schemaOf returns the schema of values of type t; its strings are bounded
// by DefaultMaxLen.
func (g *schemaGen) schemaOf(t reflect.Type) map[string]any { return g.schemaLen(t, DefaultMaxLen) }

// schemaLen returns the schema of values of type t whose strings (t itself,
// its elements, its map values) are at most maxLen characters, the bound
// Decode enforces (TagMaxLen).
func (g *schemaGen) schemaLen(t reflect.Type, maxLen int) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == typeTime:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == typeRaw || t.Kind() == reflect.Interface:
		return map[string]any{} // any JSON value
	case t.Implements(typeSchemer):
		return reflect.Zero(t).Interface().(Schemer).JSONSchema()
	case reflect.PointerTo(t).Implements(typeSchemer):
		return reflect.New(t).Interface().(Schemer).JSONSchema()
	case isPage(t):
		return g.ref(t) // its MarshalJSON only turns nil Items into []
	case t.Implements(typeMarshaler) || reflect.PointerTo(t).Implements(typeMarshaler):
		return map[string]any{}
	case t.Implements(typeText) || reflect.PointerTo(t).Implements(typeText):
		return map[string]any{"type": "string", "maxLength": maxLen}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return map[string]any{"type": "integer", "format": "int32"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string", "maxLength": maxLen}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 { // base64; a nil []byte encodes as null
			return map[string]any{"type": []string{"string", "null"}, "contentEncoding": "base64"}
		}
		// A nil slice encodes as null; mercato never sends one (API.md: an
		// empty list is [], never null), so the schema says array.
		return map[string]any{"type": "array", "items": g.schemaLen(t.Elem(), maxLen)}
	case reflect.Array:
		return map[string]any{"type": "array", "items": g.schemaLen(t.Elem(), maxLen),
			"minItems": t.Len(), "maxItems": t.Len()}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schemaLen(t.Elem(), maxLen)}
	case reflect.Struct:
		if t.Name() == "" {
			return g.object(t)
		}
		return g.ref(t)
	}
	return map[string]any{} // chan, func, complex: encoding/json refuses them
}

// ref returns a $ref to t's component, building the component first.
func (g *schemaGen) ref(t reflect.Type) map[string]any {
	name, ok := g.names[t]
	if !ok {
		name = g.nameFor(t)
		g.component(t, name)
	}
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

func (g *schemaGen) component(t reflect.Type, name string) {
	g.names[t] = name
	g.taken[name] = true
	g.schemas[name] = map[string]any{} // placeholder while t's fields refer back to it
	g.schemas[name] = g.object(t)
}

// nameFor picks a component name for t: its Go name (a generic's type
// arguments appended, Page[orders.Order] → Page_Order), qualified by its
// package when another type took the name already.
func (g *schemaGen) nameFor(t reflect.Type) string {
	base := t.Name()
	if i := strings.IndexByte(base, '['); i >= 0 {
		args := strings.Split(strings.TrimSuffix(base[i+1:], "]"), ",")
		base = base[:i]
		for _, a := range args {
			base += "_" + a[strings.LastIndexAny(a, "./")+1:]
		}
	}
	base = strings.Map(func(r rune) rune {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '.' || r == '-') {
			return r
		}
		return '_'
	}, base)
	if !g.taken[base] {
		return base
	}
	pkg := t.PkgPath()
	pkg = pkg[strings.LastIndexByte(pkg, '/')+1:]
	name := pkg + "." + base
	for i := 2; g.taken[name]; i++ {
		name = pkg + "." + base + strconv.Itoa(i)
	}
	return name
}

// object is the schema of struct t: its JSON fields (embedded structs'
// fields promoted, as encoding/json does), required unless tagged omitempty
// or omitzero or promoted through an embedded pointer (absent when it is
// nil). A pointer field without omitempty may be null. String fields carry
// their maxlen tag as maxLength.
func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	required := []string{}
	for _, f := range fieldsOf(t).list {
		var fs map[string]any
		if f.quoted {
			fs = map[string]any{"type": "string"}
		} else {
			fs = g.schemaLen(f.typ, f.maxLen)
		}
		if f.typ.Kind() == reflect.Pointer && !f.omitEmpty {
			fs = nullable(fs)
		}
		props[f.name] = fs
		if !f.omitEmpty && !f.viaPtr {
			required = append(required, f.name)
		}
	}
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// nullable returns s widened to also accept null.
func nullable(s map[string]any) map[string]any {
	switch typ := s["type"].(type) {
	case string:
		out := make(map[string]any, len(s))
		for k, v := range s {
			out[k] = v
		}
		out["type"] = []string{typ, "null"}
		return out
	case nil:
		if len(s) == 0 {
			return s // any value already includes null
		}
	}
	return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
}
