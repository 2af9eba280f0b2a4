package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mercato/internal/catalog/search"
	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/sqldb"
)

// ConsumerName is the durable name of the indexer's consumer ("catalog_search":
// a NATS consumer name cannot hold a dot).
const ConsumerName = "catalog_search"

// Indexer keeps the search index current: its consumer (product.* and
// review.* events) registers the product ids to index after each batch
// commits, and its loop writes them in batches — one Index.Put and one
// Index.Delete per batch of up to IndexBatch ids, gathered for at most
// IndexWindow. The index is a projection: a lost pending id (a crash) is
// repaired by the next change of the product or by Rebuild, which Run does
// itself when it finds the index empty.
type Indexer struct {
	s      *Service
	index  search.Index // nil: search is disabled and the indexer idle
	batch  int
	window time.Duration
	log    *slog.Logger

	mu      sync.Mutex
	pending map[string]bool // guarded by mu
	wake    chan struct{}

	batches atomic.Int64 // batches written (tests)
}

func newIndexer(s *Service, index search.Index, batch int, window time.Duration, log *slog.Logger) *Indexer {
	if batch <= 0 {
		batch = 500
	}
	if window <= 0 {
		window = 50 * time.Millisecond
	}
	return &Indexer{s: s, index: index, batch: batch, window: window, log: log, pending: map[string]bool{},
		wake: make(chan struct{}, 1)}
}

// reviewRef is what the indexer reads of a review event.
type reviewRef struct {
	ProductID string `json:"product_id"`
}

// Consumer is the indexer's durable consumer. Its handler also drops the
// product's cached public document (a review changes its rating; a change
// made by another process reaches this one so).
func (ix *Indexer) Consumer() inbox.Consumer {
	// Replayable: it re-reads the product and re-indexes it, whatever
	// event (or how old a one) names it.
	return inbox.Consumer{Name: ConsumerName, Events: []string{"product.*", "review.*", "inventory.sold_out", "inventory.restocked"}, Handle: ix.handle,
		Replayable: true}
}

func (ix *Indexer) handle(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
	id := e.AggregateID
	if strings.HasPrefix(e.Type, "inventory.") {
		// A SKU sold out or came back: its product's in-stock changed.
		err := tx.QueryRowContext(ctx, `SELECT product_id FROM catalog_variants WHERE sku = $1`, e.AggregateID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // stock of a SKU the catalog does not sell
		}
		if err != nil {
			return internal("catalog.index", err)
		}
		tx.AfterCommit(func() { ix.enqueue(id) })
		return nil
	}
	if strings.HasPrefix(e.Type, "review.") {
		var r reviewRef
		if err := json.Unmarshal(e.Data, &r); err != nil || r.ProductID == "" {
			return nil // not about a product: nothing to do
		}
		id = r.ProductID
	}
	tx.AfterCommit(func() { ix.enqueue(id) })
	return ix.s.forget(ctx, tx, id)
}

// enqueue registers ids to index. It never blocks.
func (ix *Indexer) enqueue(ids ...string) {
	if ix.index == nil || len(ids) == 0 {
		return
	}
	ix.mu.Lock()
	for _, id := range ids {
		ix.pending[id] = true
	}
	ix.mu.Unlock()
	select {
	case ix.wake <- struct{}{}:
	default:
	}
}

// take removes up to n pending ids and returns them sorted.
func (ix *Indexer) take(n int) []string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	out := make([]string, 0, min(n, len(ix.pending)))
	for id := range ix.pending {
		if len(out) == n {
			break
		}
		out = append(out, id)
		delete(ix.pending, id)
	}
	slices.Sort(out)
	return out
}

func (ix *Indexer) pendingCount() int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return len(ix.pending)
}

// Run writes pending ids until ctx ends. A batch that fails is kept and
// tried again after a pause. An empty index (new, or its files lost) is
// first rebuilt from the catalogue.
func (ix *Indexer) Run(ctx context.Context) {
	if ix.index == nil {
		<-ctx.Done()
		return
	}
	if n, err := ix.index.Count(ctx); err == nil && n == 0 {
		if err := ix.Rebuild(ctx, nil); err != nil && ctx.Err() == nil {
			ix.log.Warn("catalog: rebuilding the search index failed; products are indexed as they change", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ix.wake:
		}
		if ix.pendingCount() < ix.batch { // gather for a moment: one write for many changes
			t := time.NewTimer(ix.window)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if err := ix.Flush(ctx); err != nil && ctx.Err() == nil {
			ix.log.Warn("catalog: indexing failed; retrying", "err", err)
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			select {
			case ix.wake <- struct{}{}:
			default:
			}
		}
	}
}

// Flush writes every pending id now, in batches. Ids of a batch that fails
// are pending again.
func (ix *Indexer) Flush(ctx context.Context) error {
	if ix.index == nil {
		return nil
	}
	for {
		ids := ix.take(ix.batch)
		if len(ids) == 0 {
			return nil
		}
		if err := ix.write(ctx, ids); err != nil {
			ix.enqueue(ids...)
			return err
		}
	}
}

// write indexes the current documents of ids and deletes the ids that are
// not sellable any more: one Put and one Delete.
func (ix *Indexer) write(ctx context.Context, ids []string) error {
	docs, err := ix.s.Documents(ctx, ids)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, d := range docs {
		have[d.ID] = true
	}
	var gone []string
	for _, id := range ids {
		if !have[id] {
			gone = append(gone, id)
		}
	}
	if len(docs) > 0 {
		if err := ix.index.Put(ctx, docs); err != nil {
			return err
		}
	}
	if len(gone) > 0 {
		if err := ix.index.Delete(ctx, gone); err != nil {
			return err
		}
	}
	ix.batches.Add(1)
	return nil
}

// Rebuild makes the index hold exactly the sellable products' documents
// (after it was lost or created, or for `mercato search reindex`),
// reporting progress after each batch when progress is not nil.
func (ix *Indexer) Rebuild(ctx context.Context, progress func(done, total int)) error {
	if ix.index == nil {
		return nil
	}
	return search.Rebuild(ctx, ix.index, ix.s, progress)
}
