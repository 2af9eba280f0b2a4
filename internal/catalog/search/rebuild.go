package search

import (
	"context"
	"slices"

	"mercato/internal/platform/errs"
)

// RebuildBatch is the number of documents Rebuild asks of the Source and
// writes to the index at a time.
const RebuildBatch = 500

// IDLister is an index that lists the ids it holds (both implementations
// do); Rebuild uses it to find the documents the source no longer has, and
// otherwise walks every page of the zero Query.
type IDLister interface {
	IDs(ctx context.Context) ([]string, error)
}

// Counter is a Source that knows how many documents Scan will give; Rebuild
// reports it as the total of its progress. Without it the total is the
// index's size before the rebuild, raised as documents come beyond it.
type Counter interface {
	Count(ctx context.Context) (int, error)
}

// Compacter is an index that can compact itself after many writes (the
// Bleve index merges its segments); Rebuild calls it when done.
type Compacter interface {
	Compact(ctx context.Context) error
}

// Rebuild recreates idx's contents from src: every document src scans is
// put (RebuildBatch at a time), then every document idx held that src did
// not give is deleted. progress, when not nil, is called after each batch
// with the documents done so far and the expected total, and once at the
// end with done == total, after a Compacter's Compact. Writes that an Indexer makes meanwhile are not
// lost: a document put by both ends as the later write left it, and one
// deleted from the catalog meanwhile is no longer scanned.
func Rebuild(ctx context.Context, idx Index, src Source, progress func(done, total int)) error {
	const op = "search.Rebuild"
	if progress == nil {
		progress = func(int, int) {}
	}
	before, err := ids(ctx, idx)
	if err != nil {
		return errs.E(op, err)
	}
	stale := make(map[string]bool, len(before))
	for _, id := range before {
		stale[id] = true
	}
	total := len(before)
	if c, ok := src.(Counter); ok {
		if total, err = c.Count(ctx); err != nil {
			return errs.E(op, err)
		}
	}
	done := 0
	err = src.Scan(ctx, RebuildBatch, func(docs []Document) error {
		if err := idx.Put(ctx, docs); err != nil {
			return err
		}
		for _, d := range docs {
			delete(stale, d.ID)
		}
		done += len(docs)
		total = max(total, done)
		progress(done, total)
		return nil
	})
	if err != nil {
		return errs.E(op, err)
	}
	gone := make([]string, 0, len(stale))
	for id := range stale {
		gone = append(gone, id)
	}
	slices.Sort(gone)
	for len(gone) > 0 {
		n := min(len(gone), RebuildBatch)
		if err := idx.Delete(ctx, gone[:n]); err != nil {
			return errs.E(op, err)
		}
		gone = gone[n:]
	}
	if c, ok := idx.(Compacter); ok {
		if err := c.Compact(ctx); err != nil {
			return errs.E(op, err)
		}
	}
	progress(done, done)
	return nil
}

// ids lists idx's ids, through IDLister or by walking the zero Query.
func ids(ctx context.Context, idx Index) ([]string, error) {
	if l, ok := idx.(IDLister); ok {
		return l.IDs(ctx)
	}
	var out []string
	q := Query{Sort: SortNewest, Limit: MaxLimit}
	for {
		res, err := idx.Search(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, h := range res.Hits {
			out = append(out, h.ID)
		}
		if res.NextCursor == "" {
			return out, nil
		}
		q.Cursor = res.NextCursor
	}
}
