package event

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"mercato/internal/platform/errs"
)

// Kind is one event type with its payload struct T and schema version,
// made by Define. The zero Kind is not usable.
type Kind[T any] struct{ info TypeInfo }

// TypeInfo describes an event type for the events catalogue.
type TypeInfo struct {
	Type      string  // noun.verb
	Aggregate string  // the noun: the aggregate type the event is about
	Version   int     // schema version of the payload
	Doc       string  // when the event is emitted and what it means
	Fields    []Field // the payload's JSON fields, in declaration order
}

// Field is one JSON field of a payload.
type Field struct {
	Name     string // JSON name
	Type     string // JSON type: string, integer, number, boolean, array of …, object, any
	Optional bool   // omitempty or a pointer: may be absent
	Doc      string // the struct field's `doc:"…"` tag
}

// Define declares an event type name ("noun.verb") whose payload is the
// struct T, at schema version version (1 or more), documented by doc. A
// module declares its kinds once, as package variables. Define panics on a
// malformed name, a version below 1, an empty doc or a T that is not a
// struct: those are programming mistakes.
//
// T's exported fields are its JSON payload (encoding/json rules); a field's
// `doc:"…"` tag documents it in the catalogue.
func Define[T any](name string, version int, doc string) Kind[T] {
	if err := CheckType(name); err != nil {
		panic("event.Define: " + err.Error())
	}
	if version < 1 || strings.TrimSpace(doc) == "" {
		panic(fmt.Sprintf("event.Define(%q): needs a version >= 1 and a doc", name))
	}
	rt := reflect.TypeFor[T]()
	if rt.Kind() != reflect.Struct {
		panic(fmt.Sprintf("event.Define(%q): payload %s is not a struct", name, rt))
	}
	return Kind[T]{TypeInfo{Type: name, Aggregate: Noun(name), Version: version,
		Doc: strings.TrimSpace(doc), Fields: fields(rt)}}
}

// Type returns the kind's event type (noun.verb).
func (k Kind[T]) Type() string { return k.info.Type }

// Info describes the kind for the events catalogue.
func (k Kind[T]) Info() TypeInfo {
	info := k.info
	info.Fields = append([]Field(nil), k.info.Fields...)
	return info
}

// New builds an envelope of this kind about the aggregate aggregateID
// (whose type is the kind's noun) at time at, with data as its payload.
// Sequence is left zero: the outbox assigns it when the event is appended.
// It fails (Internal) only when data cannot be marshalled.
func (k Kind[T]) New(aggregateID string, at time.Time, data T) (Envelope, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, errs.E("event.New", errs.Internal, fmt.Errorf("marshal %s: %w", k.info.Type, err))
	}
	return Envelope{ID: NewID(), Type: k.info.Type, SchemaVersion: k.info.Version,
		AggregateType: k.info.Aggregate, AggregateID: aggregateID, OccurredAt: at.UTC(), Data: b}, nil
}

// Is reports whether e is of this kind's type (whatever its version).
func (k Kind[T]) Is(e Envelope) bool { return e.Type == k.info.Type }

// Decode returns e's payload. It is strict: an envelope of another type or
// another schema version, data that is not one JSON object of T's shape, or
// a field T does not have, is an error (Internal: a consumer was handed an
// event it was not written for).
func (k Kind[T]) Decode(e Envelope) (T, error) {
	const op = "event.Decode"
	var v T
	switch {
	case e.Type != k.info.Type:
		return v, errs.E(op, errs.Internal, fmt.Sprintf("event %s is of type %q, not %q", e.ID, e.Type, k.info.Type))
	case e.SchemaVersion != k.info.Version:
		return v, errs.E(op, errs.Internal, fmt.Sprintf("event %s (%s) has schema version %d, not %d",
			e.ID, e.Type, e.SchemaVersion, k.info.Version))
	}
	dec := json.NewDecoder(bytes.NewReader(e.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, errs.E(op, errs.Internal, fmt.Errorf("event %s (%s): %w", e.ID, e.Type, err))
	}
	if dec.More() {
		return v, errs.E(op, errs.Internal, fmt.Sprintf("event %s (%s): data after the payload", e.ID, e.Type))
	}
	return v, nil
}

// fields lists the JSON fields of struct type rt, following encoding/json's
// names (embedded structs are flattened; "-" is skipped).
func fields(rt reflect.Type) []Field {
	var out []Field
	for i := range rt.NumField() {
		f := rt.Field(i)
		tag := f.Tag.Get("json")
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, fields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, Field{Name: name, Type: jsonType(f.Type),
			Optional: f.Type.Kind() == reflect.Pointer || hasOpt(opts, "omitempty") || hasOpt(opts, "omitzero"),
			Doc:      f.Tag.Get("doc")})
	}
	return out
}

func hasOpt(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
	textType = reflect.TypeFor[interface{ MarshalText() ([]byte, error) }]()
)

// jsonType names the JSON type encoding/json gives a value of type t.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return "string (RFC 3339 time)"
	case t == rawType:
		return "any"
	case t.Implements(textType) || reflect.PointerTo(t).Implements(textType):
		return "string"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "string (base64)"
		}
		return "array of " + jsonType(t.Elem())
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return "any"
}

// Markdown renders an events catalogue: every type of types, grouped by
// aggregate and sorted by name, with its schema version, its doc and a table
// of its payload fields. The output depends only on types (not on their
// order), so a generated file can be compared with a fresh rendering in a
// test. It panics when two entries name the same type with different
// contents: two modules claiming one type is a wiring mistake.
func Markdown(types []TypeInfo) string {
	ts := slices.Clone(types)
	slices.SortFunc(ts, func(a, b TypeInfo) int { return cmp.Compare(a.Type, b.Type) })
	ts = slices.CompactFunc(ts, func(a, b TypeInfo) bool {
		if a.Type != b.Type {
			return false
		}
		if a.Version != b.Version || a.Doc != b.Doc || !slices.Equal(a.Fields, b.Fields) {
			panic(fmt.Sprintf("event.Markdown: type %s is defined twice, differently", a.Type))
		}
		return true
	})
	var b strings.Builder
	b.WriteString("# Events\n\n")
	b.WriteString("Every event travels in the envelope `{id, type, schema_version, aggregate_type, aggregate_id, " +
		"sequence, occurred_at, data}` on the bus subject `mercato.<type>`; `data` is the payload below.\n")
	noun := ""
	for _, t := range ts {
		if t.Aggregate != noun {
			noun = t.Aggregate
			fmt.Fprintf(&b, "\n## %s\n", noun)
		}
		fmt.Fprintf(&b, "\n### `%s` (schema version %d)\n\n%s\n\n", t.Type, t.Version, oneLine(t.Doc))
		if len(t.Fields) == 0 {
			b.WriteString("No payload fields: `data` is `{}`.\n")
			continue
		}
		b.WriteString("| field | type | required | description |\n|---|---|---|---|\n")
		for _, f := range t.Fields {
			req := "yes"
			if f.Optional {
				req = "no"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, f.Type, req, cell(f.Doc))
		}
	}
	return b.String()
}

// oneLine joins a doc's lines into one paragraph.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// cell makes s safe inside a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(oneLine(s), "|", `\|`) }
