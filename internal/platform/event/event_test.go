package event

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mercato/internal/platform/errs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

type placed struct {
	OrderID string          `json:"order_id" doc:"The order."`
	Total   int64           `json:"total" doc:"Minor units | of the currency."`
	Note    *string         `json:"note,omitempty"`
	Lines   []line          `json:"lines"`
	At      time.Time       `json:"at"`
	Extra   json.RawMessage `json:"extra,omitempty"`
	secret  string
	Skipped string `json:"-"`
}

type line struct {
	SKU string `json:"sku"`
}

var (
	orderPlaced = Define[placed]("order.placed", 2, "An order was placed.")
	orderPaid   = Define[struct{}]("order.paid", 1, "The order was paid.")
)

func TestDefinePanicsOnMistakes(t *testing.T) {
	tests := []struct {
		name string
		def  func()
	}{
		{"no verb", func() { Define[placed]("order", 1, "doc") }},
		{"upper case", func() { Define[placed]("Order.placed", 1, "doc") }},
		{"three words", func() { Define[placed]("order.placed.now", 1, "doc") }},
		{"version 0", func() { Define[placed]("order.placed", 0, "doc") }},
		{"no doc", func() { Define[placed]("order.placed", 1, " ") }},
		{"not a struct", func() { Define[map[string]any]("order.placed", 1, "doc") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Define did not panic")
				}
			}()
			tc.def()
		})
	}
}

func TestNewDecodeRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))
	note := "gift"
	in := placed{OrderID: "o1", Total: 1200, Note: &note, Lines: []line{{"A-1"}}, At: at.UTC(),
		Extra: json.RawMessage(`{"k":1}`), secret: "not sent"}
	e, err := orderPlaced.New("o1", at, in)
	if err != nil {
		t.Fatal(err)
	}
	if e.Type != "order.placed" || e.AggregateType != "order" || e.AggregateID != "o1" || e.SchemaVersion != 2 ||
		e.Sequence != 0 || e.ID == "" {
		t.Fatalf("envelope %+v", e)
	}
	if e.OccurredAt.Location() != time.UTC || !e.OccurredAt.Equal(at) {
		t.Errorf("occurred_at %v is not the same instant in UTC", e.OccurredAt)
	}
	if e.Subject() != "mercato.order.placed" {
		t.Errorf("subject %q", e.Subject())
	}
	// Through the wire, as a consumer gets it.
	b, _ := json.Marshal(e)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"id", "type", "schema_version", "aggregate_type", "aggregate_id", "sequence", "occurred_at", "data"} {
		if _, ok := m[f]; !ok {
			t.Errorf("envelope JSON lacks %q", f)
		}
	}
	var got Envelope
	json.Unmarshal(b, &got)
	out, err := orderPlaced.Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	in.secret = ""
	if out.OrderID != in.OrderID || out.Total != in.Total || *out.Note != note || !slices.Equal(out.Lines, in.Lines) ||
		!out.At.Equal(in.At) || string(out.Extra) != `{"k":1}` || out.secret != "" {
		t.Fatalf("decoded %+v, want %+v", out, in)
	}
	empty, err := orderPaid.New("o1", at, struct{}{})
	if err != nil || string(empty.Data) != "{}" {
		t.Fatalf("empty payload %s, %v", empty.Data, err)
	}
	if !orderPaid.Is(empty) || orderPlaced.Is(empty) {
		t.Error("Is does not tell the types apart")
	}
}

func TestDecodeIsStrict(t *testing.T) {
	good, _ := orderPlaced.New("o1", time.Now(), placed{OrderID: "o1"})
	tests := []struct {
		name   string
		change func(e *Envelope)
		want   string
	}{
		{"other type", func(e *Envelope) { e.Type = "order.paid" }, `not "order.placed"`},
		{"older version", func(e *Envelope) { e.SchemaVersion = 1 }, "schema version 1, not 2"},
		{"no version", func(e *Envelope) { e.SchemaVersion = 0 }, "schema version 0"},
		{"unknown field", func(e *Envelope) { e.Data = json.RawMessage(`{"order_id":"o1","tax":3}`) }, "unknown field"},
		{"wrong field type", func(e *Envelope) { e.Data = json.RawMessage(`{"total":"12"}`) }, "cannot unmarshal"},
		{"not an object", func(e *Envelope) { e.Data = json.RawMessage(`[1]`) }, "cannot unmarshal"},
		{"trailing data", func(e *Envelope) { e.Data = json.RawMessage(`{} {}`) }, "data after the payload"},
		{"no data", func(e *Envelope) { e.Data = nil }, "EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := good
			tc.change(&e)
			_, err := orderPlaced.Decode(e)
			if err == nil || !errs.Is(err, errs.Internal) {
				t.Fatalf("Decode = %v, want an Internal error", err)
			}
			var detail strings.Builder
			for u := error(err); u != nil; u = unwrap(u) {
				detail.WriteString(u.Error())
			}
			if !strings.Contains(detail.String(), tc.want) {
				t.Errorf("error %q lacks %q", detail.String(), tc.want)
			}
		})
	}
	if _, err := orderPlaced.Decode(good); err != nil {
		t.Fatalf("the unchanged envelope: %v", err)
	}
}

func unwrap(err error) error {
	u, _ := err.(interface{ Unwrap() error })
	if u == nil {
		return nil
	}
	return u.Unwrap()
}

func TestNewRefusesUnmarshalable(t *testing.T) {
	k := Define[struct{ C chan int }]("debug.emitted", 1, "x")
	if _, err := k.New("d", time.Now(), struct{ C chan int }{}); !errs.Is(err, errs.Internal) {
		t.Fatalf("New = %v, want Internal", err)
	}
}

func TestInfo(t *testing.T) {
	info := orderPlaced.Info()
	want := []Field{
		{Name: "order_id", Type: "string", Doc: "The order."},
		{Name: "total", Type: "integer", Doc: "Minor units | of the currency."},
		{Name: "note", Type: "string", Optional: true},
		{Name: "lines", Type: "array of object"},
		{Name: "at", Type: "string (RFC 3339 time)"},
		{Name: "extra", Type: "any", Optional: true},
	}
	if info.Type != "order.placed" || info.Aggregate != "order" || info.Version != 2 || info.Doc != "An order was placed." ||
		!slices.Equal(info.Fields, want) {
		t.Fatalf("info %+v, want fields %+v", info, want)
	}
	info.Fields[0].Name = "changed"
	if orderPlaced.Info().Fields[0].Name != "order_id" {
		t.Error("Info shares its fields with the kind")
	}
}

func TestCheckTypeAndNoun(t *testing.T) {
	tests := []struct {
		typ, noun string
	}{
		{"order.placed", "order"},
		{"inventory.low_stock", "inventory"},
		{"a1.b_2", "a1"},
		{"order", ""},
		{"order.", ""},
		{".placed", ""},
		{"order.placed.x", ""},
		{"Order.placed", ""},
		{"order.1placed", ""},
		{"order.pla-ced", ""},
		{"", ""},
	}
	for _, tc := range tests {
		if got := Noun(tc.typ); got != tc.noun {
			t.Errorf("Noun(%q) = %q, want %q", tc.typ, got, tc.noun)
		}
		if err := CheckType(tc.typ); (err == nil) != (tc.noun != "") {
			t.Errorf("CheckType(%q) = %v", tc.typ, err)
		}
	}
}

func TestPatterns(t *testing.T) {
	types := []string{"order.placed", "order.paid", "orders.paid", "product.created", "inventory.low_stock"}
	tests := []struct {
		pattern, canonical, subject string
		matches                     []string
	}{
		{"order.paid", "order.paid", "mercato.order.paid", []string{"order.paid"}},
		{"order.*", "order.*", "mercato.order.*", []string{"order.placed", "order.paid"}},
		{"*.paid", "*.paid", "mercato.*.paid", []string{"order.paid", "orders.paid"}},
		{"*.created", "*.created", "mercato.*.created", []string{"product.created"}},
		{"*", "*", "mercato.*.*", types},
		{"*.*", "*", "mercato.*.*", types},
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			p, err := ParsePattern(tc.pattern)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, typ := range types {
				if p.Match(typ) {
					got = append(got, typ)
				}
			}
			if !slices.Equal(got, tc.matches) || p.String() != tc.canonical || p.Subject() != tc.subject {
				t.Errorf("%s matches %v, string %q, subject %q; want %v, %q, %q",
					tc.pattern, got, p.String(), p.Subject(), tc.matches, tc.canonical, tc.subject)
			}
		})
	}
	for _, bad := range []string{"", "order", ">", "order.>", "order.**", "*order.paid", "ORDER.*", "order.paid.x", "order..paid", ".*"} {
		if p, err := ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%q) = %v, want an error", bad, p)
		}
	}
	if (Pattern{}).Match("order.paid") {
		t.Error("the zero Pattern matches")
	}
}

func TestMarkdownGolden(t *testing.T) {
	types := []TypeInfo{orderPaid.Info(), orderPlaced.Info(),
		Define[struct {
			CustomerID string `json:"customer_id" doc:"The customer."`
		}]("customer.registered", 1, "A customer\nsigned up.").Info(),
		orderPaid.Info()} // listed twice, identically: one entry
	got := Markdown(types)
	path := filepath.Join("testdata", "events.md")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("Markdown differs from %s (run with -update to accept):\n%s", path, got)
	}
	if again := Markdown([]TypeInfo{types[2], types[1], types[0]}); again != got {
		t.Error("Markdown depends on the order of its input")
	}
	defer func() {
		if recover() == nil {
			t.Error("two different definitions of one type did not panic")
		}
	}()
	Markdown([]TypeInfo{orderPaid.Info(), Define[placed]("order.paid", 1, "Other.").Info()})
}

func TestIDsSortByTime(t *testing.T) {
	prev := NewID()
	for range 1000 {
		id := NewID()
		if id <= prev {
			t.Fatalf("id %s not after %s", id, prev)
		}
		prev = id
	}
}
