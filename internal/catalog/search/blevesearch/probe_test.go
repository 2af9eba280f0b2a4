package blevesearch

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"mercato/internal/catalog/search"
	"mercato/internal/catalog/search/searchtest"
)

func TestProbe(t *testing.T) {
	idx := open(t)
	idx.Put(context.Background(), searchtest.Fixture())
	by := searchtest.ByID(searchtest.Fixture())
	for _, q := range strings.Split(os.Getenv("PROBE"), "|") {
		res, err := idx.Search(context.Background(), search.Query{Text: q, Limit: 8})
		fmt.Printf("== %q total %d err %v\n", q, res.Total, err)
		for _, h := range res.Hits {
			fmt.Printf("   %s %.3f %s\n", h.ID, h.Score, by[h.ID].Title)
		}
	}
}
