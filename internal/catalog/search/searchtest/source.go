package searchtest

import (
	"context"
	"sort"

	"mercato/internal/catalog/search"
)

// Source is an in-memory search.Source over its documents.
type Source struct {
	Docs []search.Document
	// Scans counts the batches Scan gave.
	Scans int
}

// Documents returns the documents of ids that Docs holds.
func (s *Source) Documents(ctx context.Context, ids []string) ([]search.Document, error) {
	by := ByID(s.Docs)
	var out []search.Document
	for _, id := range ids {
		if d, ok := by[id]; ok {
			out = append(out, d)
		}
	}
	return out, ctx.Err()
}

// Scan gives Docs in id order, batch at a time.
func (s *Source) Scan(ctx context.Context, batch int, fn func([]search.Document) error) error {
	docs := append([]search.Document(nil), s.Docs...)
	sort.Slice(docs, func(i, j int) bool { return docs[i].ID < docs[j].ID })
	for len(docs) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(batch, len(docs))
		s.Scans++
		if err := fn(docs[:n]); err != nil {
			return err
		}
		docs = docs[n:]
	}
	return nil
}

// CountedSource is a Source that is also a search.Counter.
type CountedSource struct{ Source }

// Count is len(Docs).
func (s *CountedSource) Count(context.Context) (int, error) { return len(s.Docs), nil }
