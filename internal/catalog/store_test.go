package catalog

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"mercato/internal/catalog/search"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

func TestVariantsForOrders(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		s := New(platformOf(db), Config{})
		ctx := context.Background()
		c1, err := s.CreateCategory(ctx, CategoryInput{Name: "A"})
		if err != nil {
			t.Fatal(err)
		}
		c2, _ := s.CreateCategory(ctx, CategoryInput{Name: "B"})
		on, err := s.CreateProduct(ctx, ProductInput{Title: "On sale", Status: StatusActive, CategoryIDs: []string{c2.ID, c1.ID},
			TaxClass: "reduced", Variants: []VariantInput{{SKU: "ON-1", Title: "Red", Price: eur(1999), WeightGrams: 300}, {SKU: "ON-2", Price: eur(2999)}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateProduct(ctx, ProductInput{Title: "Draft", Variants: []VariantInput{{SKU: "DR-1", Price: eur(5)}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateProduct(ctx, ProductInput{Title: "POS only", Status: StatusActive, Channels: []string{"pos"},
			Variants: []VariantInput{{SKU: "POS-1", Price: eur(7)}}}); err != nil {
			t.Fatal(err)
		}
		var got map[string]PricedVariant
		err = db.Do(ctx, func(tx *sqldb.Tx) (err error) {
			got, err = s.VariantsTx(ctx, tx, "web", []string{"ON-1", "ON-2", "DR-1", "POS-1", "NONE", "ON-1"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want := PricedVariant{SKU: "ON-1", VariantID: on.Variants[0].ID, ProductID: on.ID, ProductTitle: "On sale", VariantTitle: "Red",
			Price: eur(1999), WeightGrams: 300, TaxClass: "reduced", CategoryIDs: sortedPair(c1.ID, c2.ID), Status: StatusActive, Sellable: true}
		if g := got["ON-1"]; fmt.Sprint(g) != fmt.Sprint(want) {
			t.Fatalf("ON-1 = %+v\nwant %+v", g, want)
		}
		if len(got) != 4 || got["ON-2"].Price != eur(2999) || got["DR-1"].Sellable || got["POS-1"].Sellable || !got["ON-2"].Sellable {
			t.Fatalf("variants %+v", got)
		}
		if _, ok := got["NONE"]; ok {
			t.Fatal("an unknown SKU was answered")
		}
		pos, err := s.Variants(ctx, "pos", []string{"POS-1"})
		if err != nil || !pos["POS-1"].Sellable {
			t.Fatalf("pos: %+v %v", pos, err)
		}
	}, sources()...)
}

func TestSourceScan(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		s := New(platformOf(db), Config{})
		ctx := context.Background()
		var active []string
		for i := range 7 {
			status := StatusActive
			if i%3 == 2 {
				status = StatusDraft
			}
			p, err := s.CreateProduct(ctx, ProductInput{Title: fmt.Sprintf("P%d", i), Status: status,
				Variants: []VariantInput{{SKU: fmt.Sprintf("SC-%d", i), Price: eur(int64(100 * i))}}})
			if err != nil {
				t.Fatal(err)
			}
			if status == StatusActive {
				active = append(active, p.ID)
			}
		}
		var seen []string
		var batches []int
		err := s.Scan(ctx, 2, func(docs []search.Document) error {
			batches = append(batches, len(docs))
			for _, d := range docs {
				seen = append(seen, d.ID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(active)
		if !slices.Equal(seen, active) || !slices.Equal(batches, []int{2, 2, 1}) {
			t.Fatalf("scanned %v in %v, want %v", seen, batches, active)
		}
		docs, err := s.Documents(ctx, []string{active[0], "missing"})
		if err != nil || len(docs) != 1 || docs[0].ID != active[0] {
			t.Fatalf("documents %+v %v", docs, err)
		}
	}, sources()...)
}

// TestCacheConformance runs one suite on every Cache implementation.
func TestCacheConformance(t *testing.T) {
	impls := map[string]func(t *testing.T, ttl time.Duration) (Cache, func(key string) time.Duration){
		"memory": func(t *testing.T, ttl time.Duration) (Cache, func(string) time.Duration) {
			return NewMemoryCache(100, ttl), nil
		},
		"redis": func(t *testing.T, ttl time.Duration) (Cache, func(string) time.Duration) {
			url := os.Getenv("MERCATO_TEST_REDIS_URL")
			if url == "" {
				t.Skip("Redis tests skipped: MERCATO_TEST_REDIS_URL is not set")
			}
			prefix := fmt.Sprintf("mercato-test:%d:", time.Now().UnixNano())
			c, closeFn, err := NewRedisCache(url, prefix, ttl)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { closeFn() })
			rc := c.(*redisCache)
			return c, func(key string) time.Duration {
				d, err := rc.pttl(context.Background(), key)
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
		},
	}
	for name, mk := range impls {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c, ttlOf := mk(t, 30*time.Second)
			if _, ok, err := c.Get(ctx, "a"); ok || err != nil {
				t.Fatalf("empty cache: %v %v", ok, err)
			}
			val := []byte("\"1-abc\"\n{\"id\":\"a\",\"title\":\"Ünïcode 中文\"}")
			if err := c.Set(ctx, "a", val); err != nil {
				t.Fatal(err)
			}
			c.Set(ctx, "b", []byte("B"))
			if got, ok, err := c.Get(ctx, "a"); !ok || err != nil || string(got) != string(val) {
				t.Fatalf("get a: %q %v %v", got, ok, err)
			}
			c.Set(ctx, "a", []byte("A2"))
			if got, _, _ := c.Get(ctx, "a"); string(got) != "A2" {
				t.Fatalf("overwrite: %q", got)
			}
			if err := c.Delete(ctx, "a", "unknown"); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := c.Get(ctx, "a"); ok {
				t.Fatal("a survived its delete")
			}
			if got, ok, _ := c.Get(ctx, "b"); !ok || string(got) != "B" {
				t.Fatal("b went with a")
			}
			if err := c.Delete(ctx); err != nil {
				t.Fatal(err)
			}
			if ttlOf != nil {
				if d := ttlOf("b"); d <= 0 || d > 30*time.Second {
					t.Fatalf("b lives %v, want within the 30s TTL", d)
				}
			}
		})
	}
}

func TestSeedDemoIdempotent(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		s := New(platformOf(db), Config{})
		n, err := s.SeedDemo(context.Background())
		if err != nil || n != len(demoProducts) {
			t.Fatalf("first seed: %d, %v", n, err)
		}
		n, err = s.SeedDemo(context.Background())
		if err != nil || n != 0 {
			t.Fatalf("second seed: %d, %v", n, err)
		}
		cs, err := s.Categories(context.Background(), true)
		if err != nil || len(cs) != len(demoCategories) {
			t.Fatalf("%d categories, %v", len(cs), err)
		}
		list, err := s.PublicProducts(context.Background(), Filter{Page: pageOf(100)})
		if err != nil || len(list.Items) != len(demoProducts) {
			t.Fatalf("%d public products, %v", len(list.Items), err)
		}
	}, sources()...)
}

// TestRedisCacheReadYourWrites: with the shared cache, a change's answer
// is sent after its entry is gone, so the next read sees the change.
func TestRedisCacheReadYourWrites(t *testing.T) {
	url := os.Getenv("MERCATO_TEST_REDIS_URL")
	if url == "" {
		t.Skip("Redis tests skipped: MERCATO_TEST_REDIS_URL is not set")
	}
	c, closeFn, err := NewRedisCache(url, fmt.Sprintf("mercato-test:%d:", time.Now().UnixNano()), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeFn() })
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		e := newEnv(t, db, Config{Cache: c})
		p := e.create(product("Shared cache", fmt.Sprintf("RC-%s", db.Engine())))
		for i := range 3 {
			title := fmt.Sprintf("Title %d", i)
			e.operator.Do("PATCH", "/api/v1/admin/products/"+p.ID, map[string]any{"title": title}).WantStatus(t, 200)
			r := e.anon.Do("GET", "/api/v1/products/"+p.ID, nil)
			if r.Field("title") != title {
				t.Fatalf("read after write %d: %s", i, r.Body)
			}
			if _, ok, _ := c.Get(context.Background(), productKey(p.ID)); !ok {
				t.Fatal("the read did not fill the shared cache")
			}
		}
	}, sources()...)
}
