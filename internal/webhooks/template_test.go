package webhooks

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// knownData knows the data fields of the test payloads.
func knownData(n string) bool {
	return slices.Contains([]string{"order_id", "total", "lines", "channel"}, n)
}

// TestTemplateValidation: what a mapping template may be, and the reason
// each refused one gives.
func TestTemplateValidation(t *testing.T) {
	big := `{"a":"` + strings.Repeat("x", maxTemplateBytes) + `"}`
	deep := `{"a":{"b":{"c":{"d":{"e":1}}}}}`
	many := "{"
	for i := range maxTemplateFields + 1 {
		if i > 0 {
			many += ","
		}
		many += `"f` + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":1`
	}
	many += "}"
	tests := []struct {
		name, tmpl string
		flat       bool
		want       string // "" accepts; else a fragment of the reason
	}{
		{"paths, templates and constants", `{"order":"$.data.order_id","ref":"ORD-{{.aggregate_id}}","n":1,"ok":true,"x":null,
			"nested":{"total":"$.data.total","when":"{{.occurred_at}}"}}`, false, ""},
		{"functions allowed", `{"a":"{{upper .type}} {{lower .type}} {{trim .id}} {{json .data.lines}} {{len .data.lines}}",
			"b":"{{if eq .type \"order.paid\"}}paid{{else}}other{{end}}","c":"{{index .data \"total\"}}"}`, false, ""},
		{"range over lines, fields relative inside", `{"skus":"{{range .data.lines}}{{.sku}};{{end}}"}`, false, ""},
		{"root variable inside range is checked", `{"s":"{{range .data.lines}}{{$.data.nope}}{{end}}"}`, false, "data.nope is a field of no payload"},
		{"not JSON", `{"a":`, false, "is not valid JSON"},
		{"not an object", `["a"]`, false, "must be a JSON object"},
		{"empty object", `{}`, false, "at least one output field"},
		{"data after", `{"a":1} {"b":2}`, false, "data after the object"},
		{"does not parse", `{"a":"{{.id"}`, false, "does not parse"},
		{"unknown envelope field", `{"a":"{{.customer}}"}`, false, `"customer" is not a field of the event envelope`},
		{"unknown path", `{"a":"$.dat.x"}`, false, `"dat" is not a field`},
		{"unknown data field", `{"a":"$.data.colour"}`, false, "data.colour is a field of no payload"},
		{"unknown data field in a template", `{"a":"{{.data.colour}}"}`, false, "data.colour is a field of no payload"},
		{"printf refused", `{"a":"{{printf \"%0999999999d\" 1}}"}`, false, `calls "printf"`},
		{"call refused", `{"a":"{{call .data.total}}"}`, false, `calls "call"`},
		{"html refused", `{"a":"{{html .id}}"}`, false, `calls "html"`},
		{"define refused", `{"a":"{{define \"x\"}}y{{end}}"}`, false, "must not define templates"},
		{"template call refused", `{"a":"{{template \"x\"}}"}`, false, "must not call templates"},
		{"range nesting bounded", `{"a":"{{range .data.lines}}{{range $.data.lines}}{{range $.data.lines}}{{end}}{{end}}{{end}}"}`, false, "range nests at most 2"},
		{"arrays refused", `{"a":[1,2]}`, false, "arrays are not supported"},
		{"duplicate key", `{"a":1,"a":2}`, false, `names the field "a" twice`},
		{"control character in a name", `{"a\nb":1}`, false, "control character"},
		{"too deep", deep, false, "nest at most"},
		{"too large", big, false, "at most 16384 bytes"},
		{"too many fields", many, false, "at most 100 fields"},
		{"flat CSV refuses objects", `{"a":{"b":1}}`, true, "a CSV row is flat"},
		{"flat CSV takes templates", `{"a":"{{.id}}","b":"$.data.total"}`, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseMapping(json.RawMessage(tc.tmpl), tc.flat, knownData)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("reason %q; want it to say %q", err, tc.want)
			}
		})
	}
}

// TestTemplateRender: members in template order, typed paths, strings from
// templates, absent fields empty, output bounded.
func TestTemplateRender(t *testing.T) {
	env, err := decodeEnvelope(`{"id":"e1","type":"order.paid","aggregate_id":"o1","sequence":2,
		"data":{"order_id":"o1","total":12990,"lines":[{"sku":"TEE-M","quantity":2}]}}`)
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseMapping(json.RawMessage(`{"z_first":"{{.type}}","total":"$.data.total","lines":"$.data.lines",
		"missing":"$.data.channel","blank":"[{{.data.channel}}]","sku":"{{range .data.lines}}{{.sku}}x{{.quantity}}{{end}}",
		"obj":{"seq":"$.sequence","k":"v"},"n":1.50}`), false, knownData)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.JSON(env)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"z_first":"order.paid","total":12990,"lines":[{"quantity":2,"sku":"TEE-M"}],"missing":null,"blank":"[]",` +
		`"sku":"TEE-Mx2","obj":{"seq":2,"k":"v"},"n":1.50}`
	if string(got) != want {
		t.Fatalf("body\n %s\nwant\n %s", got, want)
	}
	flat, err := parseMapping(json.RawMessage(`{"type":"{{.type}}","total":"$.data.total","channel":"$.data.channel","note":"a\nb"}`), true, knownData)
	if err != nil {
		t.Fatal(err)
	}
	row, err := flat.Row(env)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(row, []string{"order.paid", "12990", "", "a b"}) || !slices.Equal(flat.Columns(), []string{"type", "total", "channel", "note"}) {
		t.Fatalf("row %q columns %q", row, flat.Columns())
	}
	// A template that would render more than maxRendered fails, whatever
	// builds it.
	env["data"].(map[string]any)["lines"] = slices.Repeat([]any{map[string]any{"sku": strings.Repeat("s", 1000)}}, 100)
	loop, err := parseMapping(json.RawMessage(`{"a":"{{range .data.lines}}{{range $.data.lines}}{{.sku}}{{end}}{{end}}"}`), false, knownData)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loop.JSON(env); err == nil || !strings.Contains(err.Error(), "over 65536 bytes") {
		t.Fatalf("a 10 MB rendering: %v, want refused past 64 KiB", err)
	}
}
