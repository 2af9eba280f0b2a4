package plan

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"mercato/internal/catalog/search"
	"mercato/internal/platform/errs"
)

func TestSplit(t *testing.T) {
	type w = Word
	tests := []struct {
		text string
		want []Word
	}{
		{"", nil},
		{"   \t", nil},
		{"Bluetooth Headphones", []Word{{Text: "bluetooth"}, {Text: "headphones"}}},
		{"men's boys' shoes", []Word{{Text: "men's"}, {Text: "boys"}, {Text: "shoes"}}},
		{"usb-c 128GB", []Word{{Text: "usb"}, {Text: "c"}, {Text: "128gb"}}},
		{"蓝牙耳机", []Word{{Text: "蓝牙耳机", CJK: true, Grams: []string{"蓝牙", "牙耳", "耳机"}}}},
		{"纯棉T恤", []Word{{Text: "纯棉", CJK: true, Grams: []string{"纯棉"}}, {Text: "t"}, {Text: "恤", CJK: true, Grams: []string{"恤"}}}},
		{"蓝牙 speaker", []Word{{Text: "蓝牙", CJK: true, Grams: []string{"蓝牙"}}, {Text: "speaker"}}},
		{"哈哈哈", []Word{{Text: "哈哈哈", CJK: true, Grams: []string{"哈哈"}}}},
		{"ＬＡＰＴＯＰ", []Word{{Text: "laptop"}}},
		{`title:foo +bar -(baz) "q" ~*?\/`, []Word{{Text: "title"}, {Text: "foo"}, {Text: "bar"}, {Text: "baz"}, {Text: "q"}}},
		{"🎧 headphones 🎉", []Word{{Text: "headphones"}}},
		{"e\u0301te", []Word{{Text: "\u00e9te"}}}, // NFKC composes
		{strings.Repeat("a ", 20), func() []Word {
			var ws []Word
			for range MaxWords {
				ws = append(ws, w{Text: "a"})
			}
			return ws
		}()},
	}
	for _, tc := range tests {
		if got := Split(tc.text); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Split(%q) = %+v, want %+v", tc.text, got, tc.want)
		}
	}
}

func TestWordRules(t *testing.T) {
	for _, tc := range []struct {
		text string
		fuzz int
	}{{"usb", 0}, {"desk", 0}, {"chair", 1}, {"bluetoth", 1}, {"headphnes", 2}} {
		if got := (Word{Text: tc.text}).Fuzziness(); got != tc.fuzz {
			t.Errorf("Fuzziness(%q) = %d, want %d", tc.text, got, tc.fuzz)
		}
	}
	for _, tc := range []struct {
		grams, min int
	}{{1, 1}, {2, 1}, {3, 2}, {4, 2}, {5, 3}} {
		if got := (Word{CJK: true, Grams: make([]string, tc.grams)}).MinGrams(); got != tc.min {
			t.Errorf("MinGrams of %d grams = %d, want %d", tc.grams, got, tc.min)
		}
	}
}

func TestMake(t *testing.T) {
	p, err := Make("x", search.Query{Text: " Tea  CUPS "})
	if err != nil || p.Sort != search.SortRelevance || p.Limit != search.DefaultLimit || p.Text != "tea cups" || p.Raw != "tea  cups" || !p.Relevance() {
		t.Fatalf("Make = %+v, %v", p, err)
	}
	if p, _ := Make("x", search.Query{}); p.Relevance() {
		t.Error("relevance without text")
	}
	// A cursor is bound to its query and its index.
	c := p.Cursor([]string{"1.5", "p001"})
	again, err := Make("x", search.Query{Text: "tea cups", Cursor: c, Limit: 5})
	if err != nil || !reflect.DeepEqual(again.After, []string{"1.5", "p001"}) {
		t.Fatalf("same query (normalised alike): %+v, %v", again.After, err)
	}
	for name, q := range map[string]search.Query{
		"other text":  {Text: "tea", Cursor: c},
		"other index": {Text: "tea cups", Cursor: c},
	} {
		impl := "x"
		if name == "other index" {
			impl = "y"
		}
		_, err := Make(impl, q)
		if !errors.Is(err, search.ErrInvalidQuery) || !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Refusals name their field.
	_, err = Make("x", search.Query{Limit: 101})
	var e *errs.Error
	if !errors.As(err, &e) || len(e.Fields) != 1 || e.Fields[0].Field != "limit" {
		t.Errorf("limit: %v", err)
	}
}

func TestCleanDocs(t *testing.T) {
	docs, err := CleanDocs([]search.Document{
		{ID: "a", Title: "x\x00y\xff", CategoryIDs: []string{"c", "c", "d"}},
		{ID: "b"}, {ID: "a", Title: "second"},
	})
	if err != nil || len(docs) != 2 || docs[0].Title != "second" || docs[1].ID != "b" {
		t.Fatalf("CleanDocs = %+v, %v", docs, err)
	}
	docs, _ = CleanDocs([]search.Document{{ID: "a", Title: "x\x00y\xff", CategoryIDs: []string{"c", "c", "d"}}})
	if docs[0].Title != "xy\uFFFD" || !reflect.DeepEqual(docs[0].CategoryIDs, []string{"c", "d"}) {
		t.Errorf("cleaned %+v", docs[0])
	}
	for _, d := range []search.Document{{}, {ID: strings.Repeat("x", 201)}, {ID: "a", PriceMin: -1}, {ID: "a", Rating: 5.5}} {
		if _, err := CleanDocs([]search.Document{d}); !errs.Is(err, errs.Invalid) {
			t.Errorf("CleanDocs(%+v) = %v, want invalid", d, err)
		}
	}
	if got := CleanIDs([]string{"a", "", "a", "\xff", "b"}); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("CleanIDs = %v", got)
	}
}
