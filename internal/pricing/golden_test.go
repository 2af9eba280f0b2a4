package pricing

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mercato/internal/platform/errs"
)

var update = flag.Bool("update", false, "rewrite the expected outputs of testdata/golden (then review the diff)")

// golden is one case of testdata/golden: an input, and the quotation and
// error Quote must give for it (null when there is none). Tables names a
// file of testdata/tables holding the shipping and tax tables the input
// uses unless it has its own "shipping" or "tax". -update rewrites Want and
// Error only: the input stays as written.
type golden struct {
	Doc    string          `json:"doc"`
	Tables string          `json:"tables,omitempty"`
	Input  json.RawMessage `json:"input"`
	Want   json.RawMessage `json:"want"`
	Error  json.RawMessage `json:"error"`
}

// goldenFiles lists the cases.
func goldenFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	return files
}

// strict decodes b into v refusing unknown members.
func strict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// loadGolden reads a case and its input, the tables filled in.
func loadGolden(t testing.TB, file string) (golden, Input) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	var in Input
	if err := strict(raw, &g); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if err := strict(g.Input, &in); err != nil {
		t.Fatalf("%s: input: %v", file, err)
	}
	if g.Tables != "" {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(g.Input, &members); err != nil {
			t.Fatal(err)
		}
		ship, tax := loadTables(t, g.Tables)
		if _, own := members["shipping"]; !own {
			in.Shipping = ship
		}
		if _, own := members["tax"]; !own {
			in.Tax = tax
		}
	}
	return g, in
}

// loadTables reads testdata/tables/name.json.
func loadTables(t testing.TB, name string) (ShippingTable, TaxTable) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "tables", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var tb struct {
		Shipping ShippingTable `json:"shipping"`
		Tax      TaxTable      `json:"tax"`
	}
	if err := strict(raw, &tb); err != nil {
		t.Fatalf("tables %s: %v", name, err)
	}
	return tb.Shipping, tb.Tax
}

// goldenError is the part of an *errs.Error a caller relies on.
type goldenError struct {
	Kind   string            `json:"kind"`
	Code   string            `json:"code"`
	Fields []errs.FieldError `json:"fields,omitempty"`
}

// TestGolden runs every case of testdata/golden through Quote and compares
// the quotation and the error with the recorded ones. With -update it
// records them instead.
func TestGolden(t *testing.T) {
	for _, file := range goldenFiles(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			g, in := loadGolden(t, file)
			if g.Doc == "" {
				t.Fatalf("%s: the case has no doc", file)
			}
			q, qerr := Quote(in)
			got, gotErr := goldenOutputs(t, q, qerr)
			if *update {
				g.Want, g.Error = got, gotErr
				out, err := json.MarshalIndent(g, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, append(out, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if d := diffJSON(g.Want, got); d != "" {
				t.Errorf("%s\nquotation differs (-want +got):\n%s", g.Doc, d)
			}
			if d := diffJSON(g.Error, gotErr); d != "" {
				t.Errorf("%s\nerror differs (-want +got):\n%s", g.Doc, d)
			}
			if q.Currency != "" {
				checkInvariants(t, in, q)
			}
			// A table checked once (as the rates module caches it) gives
			// the same answer without being validated per quote; a table
			// that does not validate cannot be checked.
			checked, cerr := in.Tax.Checked()
			if vErr := in.Tax.Validate(); (cerr == nil) != (vErr == nil) {
				t.Fatalf("Checked: %v, Validate: %v", cerr, vErr)
			}
			if cerr == nil {
				in.Tax = checked
				q2, qerr2 := Quote(in)
				got2, gotErr2 := goldenOutputs(t, q2, qerr2)
				if d := diffJSON(got, got2) + diffJSON(gotErr, gotErr2); d != "" {
					t.Errorf("with the tax table checked once, the quote differs:\n%s", d)
				}
			}
		})
	}
}

// goldenOutputs is the JSON of a quotation (null when Quote returned none)
// and of an error (null for none); an error must be an *errs.Error.
func goldenOutputs(t *testing.T, q Quotation, err error) (json.RawMessage, json.RawMessage) {
	t.Helper()
	want := json.RawMessage("null")
	if q.Currency != "" {
		b, mErr := json.Marshal(q)
		if mErr != nil {
			t.Fatalf("marshal the quotation: %v", mErr)
		}
		want = b
	}
	if err == nil {
		return want, json.RawMessage("null")
	}
	var e *errs.Error
	if !errors.As(err, &e) {
		t.Fatalf("Quote returned %T %v, not an *errs.Error", err, err)
	}
	b, mErr := json.Marshal(goldenError{Kind: e.Kind.String(), Code: string(errs.CodeOf(err)), Fields: e.Fields})
	if mErr != nil {
		t.Fatal(mErr)
	}
	return want, b
}

// diffJSON compares two JSON texts after indenting both; "" when equal. The
// diff is line by line, first difference first, which is enough to read a
// golden failure.
func diffJSON(want, got json.RawMessage) string {
	indent := func(b json.RawMessage) []string {
		var buf bytes.Buffer
		if len(b) == 0 {
			b = json.RawMessage("null")
		}
		if err := json.Indent(&buf, b, "", "  "); err != nil {
			return []string{"invalid JSON: " + err.Error()}
		}
		return strings.Split(buf.String(), "\n")
	}
	w, g := indent(want), indent(got)
	var out []string
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			out = append(out, "line "+strconv.Itoa(i+1)+":\n-"+a+"\n+"+b)
			if len(out) == 5 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
