package searchtest

import (
	"context"
	"slices"
	"testing"

	"mercato/internal/catalog/search"
)

// RelevanceCase is one expectation on the fixture: Top are the first hits,
// in any order among themselves (the three versions of a product score
// alike); Also are further ids that must be among the first len(Top)+Slack
// hits.
type RelevanceCase struct {
	Name  string
	Query search.Query
	Top   []string
	Also  []string
	Slack int
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
			slices.Sort(first)
			want := slices.Clone(tc.Top)
			slices.Sort(want)
			if !slices.Equal(first, want) {
				t.Errorf("%q: first hits %v, want %v (all: %v)", q.Text, got[:len(tc.Top)], tc.Top, got)
			}
			for _, a := range tc.Also {
				if !slices.Contains(got, a) {
					t.Errorf("%q: %s not among %v", q.Text, a, got)
				}
			}
		})
	}
}

// Relevance are the expectations both indexes meet on the fixture.
var Relevance = []RelevanceCase{}
