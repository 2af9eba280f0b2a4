package event

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

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
