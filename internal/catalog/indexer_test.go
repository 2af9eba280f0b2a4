package catalog

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"mercato/internal/catalog/search"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// signalIndex is a memIndex that reports each Put on a channel.
type signalIndex struct {
	*memIndex
	put chan int
}

func (s signalIndex) Put(ctx context.Context, docs []search.Document) error {
	err := s.memIndex.Put(ctx, docs)
	s.put <- len(docs)
	return err
}

// TestIndexerBatches: ids registered while the loop gathers are written
// with one Put; a flush writes at most IndexBatch ids per Put.
func TestIndexerBatches(t *testing.T) {
	db := openSQLite(t)
	ix := signalIndex{memIndex: newMemIndex(), put: make(chan int, 16)}
	s := New(platformOf(db), Config{Index: ix, IndexBatch: 2})
	var ids []string
	for i := range 5 {
		p, err := s.CreateProduct(context.Background(), ProductInput{Title: fmt.Sprintf("P%d", i), Status: StatusActive,
			Variants: []VariantInput{{SKU: fmt.Sprintf("IX-%d", i), Price: eur(100)}}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	s.index.enqueue(ids...)
	if err := s.index.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{2, 2, 1} {
		if got := <-ix.put; got != want {
			t.Fatalf("a batch of %d, want %d", got, want)
		}
	}

	// The loop: an empty index is rebuilt first (5 products: one batch of
	// search.Rebuild's size)…
	empty := signalIndex{memIndex: newMemIndex(), put: make(chan int, 16)}
	s1 := New(platformOf(db), Config{Index: empty, IndexBatch: 2})
	ctx1, stop1 := context.WithCancel(context.Background())
	done1 := make(chan struct{})
	go func() { defer close(done1); s1.index.Run(ctx1) }()
	select {
	case got := <-empty.put:
		if got != 5 {
			t.Fatalf("rebuild: a batch of %d, want 5", got)
		}
	case <-time.After(time.Minute):
		t.Fatal("the loop did not rebuild the empty index")
	}
	stop1()
	<-done1
	if n, _ := empty.Count(context.Background()); n != 5 {
		t.Fatalf("rebuilt %d documents, want 5", n)
	}

	// …and what is pending when it wakes goes in one batch (the index
	// holds documents: no rebuild).
	s2 := New(platformOf(db), Config{Index: ix, IndexWindow: time.Millisecond})
	s2.index.enqueue(ids[0], ids[1])
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s2.index.Run(ctx) }()
	if got := <-ix.put; got != 2 {
		t.Fatalf("the loop wrote a batch of %d, want 2", got)
	}
	s2.index.enqueue(ids[4])
	if got := <-ix.put; got != 1 {
		t.Fatalf("the loop wrote a batch of %d, want 1", got)
	}
	stop()
	<-done
	if s2.index.batches.Load() != 2 {
		t.Fatalf("%d batches", s2.index.batches.Load())
	}
}

// TestInvalidationAcrossReplicas: on PostgreSQL a change made by one
// process drops the cached public document of another.
func TestInvalidationAcrossReplicas(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.Postgres, sources()...)
	ctx := context.Background()
	a := New(platformOf(db), Config{})
	b := New(platformOf(db), Config{})
	dropped := make(chan []string, 4)
	b.onDrop = func(ids []string) { dropped <- ids }
	if b.cacheTrusted() {
		t.Fatal("b trusts its cache before it listens")
	}
	listen(t, b)
	p, err := a.CreateProduct(ctx, ProductInput{Title: "Shared", Status: StatusActive, Variants: []VariantInput{{SKU: "SH-1", Price: eur(100)}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := <-dropped; len(got) != 1 || got[0] != p.ID { // the create's own notification
		t.Fatalf("dropped %v", got)
	}
	etag, _, err := b.PublicDocument(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.cache.Get(ctx, productKey(p.ID)); !ok {
		t.Fatal("b did not cache the document")
	}
	title := "Shared II"
	if _, err := a.UpdateProduct(ctx, p.ID, ProductPatch{Title: &title}); err != nil {
		t.Fatal(err)
	}
	if got := <-dropped; got[0] != p.ID {
		t.Fatalf("dropped %v", got)
	}
	etag2, body, err := b.PublicDocument(ctx, p.ID)
	if err != nil || etag2 == etag || !containsFold(string(body), "Shared II") {
		t.Fatalf("b after a's change: %s %s %v", etag2, body, err)
	}
}

// stockSet is a StockSource test double: the SKUs in it are in stock.
type stockSet map[string]bool

func (s stockSet) InStock(_ context.Context, skus []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, sku := range skus {
		out[sku] = s[sku]
	}
	return out, nil
}

// TestInStockFromInventory: a document is in stock when one of its
// variants is, and an inventory availability event re-indexes the
// product of its SKU (events of SKUs the catalog does not sell are
// applied with no effect).
func TestInStockFromInventory(t *testing.T) {
	db := openSQLite(t)
	stock := stockSet{"ST-2": true}
	s := New(platformOf(db), Config{Index: newMemIndex(), Stock: stock})
	ctx := context.Background()
	in, err := s.CreateProduct(ctx, ProductInput{Title: "In", Status: StatusActive,
		Variants: []VariantInput{{SKU: "ST-1", Price: eur(100)}, {SKU: "ST-2", Price: eur(200)}}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.CreateProduct(ctx, ProductInput{Title: "Out", Status: StatusActive,
		Variants: []VariantInput{{SKU: "ST-3", Price: eur(100)}}})
	if err != nil {
		t.Fatal(err)
	}
	docs, err := s.Documents(ctx, []string{in.ID, out.ID})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, d := range docs {
		got[d.ID] = d.InStock
	}
	if !got[in.ID] || got[out.ID] {
		t.Fatalf("in stock %v; want %s only", got, in.ID)
	}

	for _, c := range []struct {
		sku  string
		want []string
	}{{"ST-3", []string{out.ID}}, {"NOT-SOLD", []string{}}} {
		err := db.Do(ctx, func(tx *sqldb.Tx) error {
			return s.index.handle(ctx, tx, event.Envelope{Type: "inventory.restocked", AggregateType: "inventory", AggregateID: c.sku})
		})
		if err != nil {
			t.Fatal(err)
		}
		if pending := s.index.take(10); !slices.Equal(pending, c.want) {
			t.Errorf("%s: pending %v, want %v", c.sku, pending, c.want)
		}
	}
}
