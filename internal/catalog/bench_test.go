package catalog

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
)

// benchClients is the concurrency of the HTTP benchmarks (the 32).
const benchClients = 32

// noCache is a Cache that keeps nothing: every read goes to the database.
type noCache struct{}

func (noCache) Get(context.Context, string) ([]byte, bool, error) { return nil, false, nil }
func (noCache) Set(context.Context, string, []byte) error         { return nil }
func (noCache) Delete(context.Context, ...string) error           { return nil }
func (noCache) Shared() bool                                      { return false }

// benchServer serves the catalog routes over db with cache, plus /healthz.
func benchServer(b *testing.B, db *sqldb.DB, cache Cache) (*Service, string) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := New(module.Platform{DB: db, Write: db, Logger: logger}, Config{Cache: cache})
	listen(b, svc)
	router := web.NewRouter(web.Config{Logger: logger})
	for _, r := range svc.Routes() {
		router.Handle(r)
	}
	router.HandleOps(nil)
	srv := httptest.NewServer(router)
	b.Cleanup(srv.Close)
	return svc, srv.URL
}

// hammer sends n GETs of url from benchClients goroutines and returns the
// rate. Every answer must be 200.
func hammer(b *testing.B, n int, url string) float64 {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range benchClients {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				res, err := client.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Errorf("status %d", res.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkProductGET measures GET /api/v1/products/{id} (a demo product
// with three variants) through the real router and HTTP server, 32
// concurrent clients, against GET /healthz and against the same GET with
// the cache taken out (every read from the database), in the same run.
func BenchmarkProductGET(b *testing.B) {
	for _, engine := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		b.Run(string(engine), func(b *testing.B) {
			db := sqldbtest.Open(b, engine, sources()...)
			seed := New(module.Platform{DB: db, Write: db}, Config{})
			if _, err := seed.SeedDemo(context.Background()); err != nil {
				b.Fatal(err)
			}
			list, err := seed.PublicProducts(context.Background(), Filter{Page: pageOf(1)})
			if err != nil || len(list.Items) == 0 {
				b.Fatal(err)
			}
			id := list.Items[0].ID
			_, cached := benchServer(b, db, nil)
			_, uncached := benchServer(b, db, noCache{})
			b.ResetTimer()
			health := hammer(b, b.N, cached+"/healthz")
			get := hammer(b, b.N, cached+"/api/v1/products/"+id)
			raw := hammer(b, b.N, uncached+"/api/v1/products/"+id)
			b.StopTimer()
			b.ReportMetric(get, "product_req/s")
			b.ReportMetric(health, "ref_healthz_req/s")
			b.ReportMetric(raw, "ref_uncached_req/s")
			b.ReportMetric(get/health, "x_healthz")
			b.ReportMetric(0, "ns/op")
		})
	}
}
