package searchtest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"mercato/internal/catalog/search"
)

// RelevanceCase is one expectation on the fixture: Top are the first hits,
// in any order among themselves (the three versions of a product score
// alike) unless Ordered; Also are further ids that must be among the first
// len(Top)+len(Also)+Slack hits; Total, when not zero, is the number of
// matches.
type RelevanceCase struct {
	Name    string
	Query   search.Query
	Top     []string
	Ordered bool
	Also    []string
	Slack   int
	Total   int
}

// RunRelevance checks the cases on idx, which holds Fixture.
func RunRelevance(t *testing.T, idx search.Index, cases []RelevanceCase) {
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			q := tc.Query
			q.Limit = len(tc.Top) + len(tc.Also) + tc.Slack
			res, err := idx.Search(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			got := ids(res.Hits)
			if len(got) < len(tc.Top) {
				t.Fatalf("%q: %v, want %v first", q.Text, got, tc.Top)
			}
			first := slices.Clone(got[:len(tc.Top)])
			want := slices.Clone(tc.Top)
			if !tc.Ordered {
				slices.Sort(first)
				slices.Sort(want)
			}
			if !slices.Equal(first, want) {
				t.Errorf("%q: first hits %v, want %v (all: %v)", q.Text, got[:len(tc.Top)], tc.Top, got)
			}
			if tc.Total != 0 && res.Total != tc.Total {
				t.Errorf("%q: Total %d, want %d", q.Text, res.Total, tc.Total)
			}
			for _, a := range tc.Also {
				if !slices.Contains(got, a) {
					t.Errorf("%q: %s not among %v", q.Text, a, got)
				}
			}
		})
	}
}

// The three versions of a fixture product: as is, with a brand, with a
// colour.
func three(id int) []string {
	return []string{fmt.Sprintf("p%03d", id), fmt.Sprintf("p%03d", id+77), fmt.Sprintf("p%03d", id+154)}
}

// Relevance are the expectations an index meets on the fixture.
var Relevance = []RelevanceCase{
	{Name: "plain", Query: search.Query{Text: "wireless bluetooth headphones"}, Top: three(1), Also: []string{"p006"}, Slack: 2},
	{Name: "plain two words", Query: search.Query{Text: "standing desk"}, Top: three(52), Total: 3},
	{Name: "plural and case", Query: search.Query{Text: "Phone Cases"}, Top: three(13)},
	{Name: "possessive", Query: search.Query{Text: "chefs knife"}, Top: three(44)},
	{Name: "misspelt", Query: search.Query{Text: "bluetoth headphnes"}, Top: three(1)},
	{Name: "misspelt twice", Query: search.Query{Text: "wirless headphnes"}, Top: three(1)},
	{Name: "misspelt one word", Query: search.Query{Text: "laptpo"}, Top: three(18)},
	{Name: "chinese", Query: search.Query{Text: "蓝牙耳机"}, Top: three(2)},
	{Name: "chinese reordered", Query: search.Query{Text: "耳机蓝牙"}, Top: three(2)},
	{Name: "chinese with latin", Query: search.Query{Text: "纯棉T恤"}, Top: three(27)},
	{Name: "chinese title words", Query: search.Query{Text: "绿茶"}, Top: three(69)},
	{Name: "chinese name of a category", Query: search.Query{Text: "咖啡"}, Top: three(65), Also: []string{"p063"}, Slack: 6},
	{Name: "mixed", Query: search.Query{Text: "蓝牙 speaker"}, Top: three(3), Total: 3},
	{Name: "mixed other way", Query: search.Query{Text: "bluetooth 音箱"}, Top: three(3), Total: 3},
	{Name: "full-width", Query: search.Query{Text: "ｌａｐｔｏｐ"}, Top: three(18)},
	{Name: "sku", Query: search.Query{Text: "AUD-001-0"}, Top: []string{"p001"}},
	{Name: "filtered", Query: search.Query{Text: "coffee", CategoryID: "c-coffee", MaxPrice: ptr(int64(1500))}, Top: []string{"p064", "p141", "p218"}, Total: 3},
	{Name: "filtered and sorted", Query: search.Query{Text: "headphones", InStock: ptr(true), MaxPrice: ptr(int64(15000)), Sort: search.SortPriceAsc},
		Top: []string{"p001", "p082", "p159", "p155"}, Ordered: true, Total: 4},
}
