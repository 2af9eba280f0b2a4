package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
)

// BenchmarkSearchable measures, through the real server on SQLite with the
// embedded index, how long a product change takes to become searchable: a
// PATCH gives a product a new word in its title, then the search for that
// word is polled (every millisecond) until the product is its hit. The
// path is outbox → relay → JetStream → the catalog's consumer → the
// indexer's batch → Bleve. Reported: p50 and p99 in ms; the same-run
// reference is the read-your-writes GET of the product after the PATCH
// (the change in the database, no event stream). Target: p99 < 1 s.
func BenchmarkSearchable(b *testing.B) {
	env := map[string]string{
		"MERCATO_BOOTSTRAP_ADMIN_EMAIL":    "root@example.com",
		"MERCATO_BOOTSTRAP_ADMIN_PASSWORD": "a very long admin password",
	}
	c, _ := startInProcess(b, env, "--data-dir", b.TempDir())
	login := c.Do("POST", "/api/v1/auth/login", map[string]string{"email": "root@example.com", "password": "a very long admin password"})
	login.WantStatus(b, http.StatusOK)
	admin := c.WithToken(login.Field("token").(string))
	// A catalogue to search in, so that the index is not trivially small.
	var ids []string
	for i := range 200 {
		r := admin.Do("POST", "/api/v1/admin/products", map[string]any{
			"title": fmt.Sprintf("Cotton shirt %d", i), "description": "A plain shirt.", "status": "active",
			"variants": []map[string]any{{"sku": fmt.Sprintf("SH-%d", i), "title": "M", "price": map[string]any{"amount": 1999 + i, "currency": "USD"}}},
		})
		r.WantStatus(b, http.StatusCreated)
		ids = append(ids, r.Field("id").(string))
	}
	var lag, ref []float64
	b.ResetTimer()
	for i := range b.N {
		id := ids[i%len(ids)]
		word := fmt.Sprintf("zq%dx%d", i, time.Now().UnixNano()%1000)
		t0 := time.Now()
		admin.Do("PATCH", "/api/v1/admin/products/"+id, map[string]any{"title": "Cotton shirt " + word}).WantStatus(b, http.StatusOK)
		patched := time.Now()
		get := c.Do("GET", "/api/v1/products/"+id, nil)
		get.WantStatus(b, http.StatusOK)
		ref = append(ref, ms(time.Since(patched)))
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := c.Do("GET", "/api/v1/products?q="+url.QueryEscape(word), nil)
			if r.Status == http.StatusOK && r.Field("items.0.id") == id {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s never searchable: %d %s", word, r.Status, r.Body)
			}
			time.Sleep(time.Millisecond)
		}
		lag = append(lag, ms(time.Since(t0)))
	}
	b.StopTimer()
	b.ReportMetric(quantile(lag, 0.5), "p50_ms")
	b.ReportMetric(quantile(lag, 0.99), "p99_ms")
	b.ReportMetric(quantile(ref, 0.99), "ref_get_p99_ms")
}

// quantile returns the q-quantile of xs (nearest rank).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
