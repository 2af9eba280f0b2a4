package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
)

// BenchmarkRouter measures the middleware's cost per request (request id,
// access log, metrics, recovery, route context, authentication, body
// buffering) against a bare ServeMux serving the same handler.
func BenchmarkRouter(b *testing.B) {
	handler := func(w http.ResponseWriter, r *http.Request) {
		var in thingIn
		if err := web.Decode(r, &in); err != nil {
			web.Error(w, r, err)
			return
		}
		web.JSON(w, http.StatusCreated, thing{ID: r.PathValue("id"), Name: in.Name, Qty: in.Qty})
	}
	rt := web.NewRouter(web.Config{Logger: slogJSON(io.Discard), Registerer: prometheus.NewRegistry(), Auth: fakeAuth{}})
	rt.Handle(web.Route{Method: "POST", Path: "/api/v1/things/{id}", Access: web.Authenticated, Handler: handler})
	bare := http.NewServeMux()
	bare.HandleFunc("POST /api/v1/things/{id}", handler)
	body := `{"name":"lamp","qty":2}`
	run := func(b *testing.B, h http.Handler) float64 {
		start := time.Now()
		for b.Loop() {
			req := httptest.NewRequest("POST", "/api/v1/things/7", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer customer")
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusCreated {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
		return float64(time.Since(start).Nanoseconds()) / float64(b.N)
	}
	var bareNs float64
	b.Run("bare-mux", func(b *testing.B) { bareNs = run(b, bare) })
	b.Run("router", func(b *testing.B) {
		ns := run(b, rt)
		b.ReportMetric(ns-bareNs, "overhead-ns/op")
	})
}

// BenchmarkIdempotentPost measures a POST with a fresh Idempotency-Key (the
// answer recorded with a one-row effect, one durable commit each) and a
// replay of a recorded key, against the same POST without a key, on SQLite.
func BenchmarkIdempotentPost(b *testing.B) {
	db := sqldbtest.Open(b, sqldb.SQLite, sources()...)
	if _, err := db.Writer().Exec(`CREATE TABLE effects (item TEXT NOT NULL, n BIGINT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	idem := web.NewIdempotency(db, web.IdempotencyConfig{})
	defer idem.Close()
	rt := web.NewRouter(web.Config{Logger: slogJSON(io.Discard), Registerer: prometheus.NewRegistry(), Auth: fakeAuth{}})
	rt.Handle(web.Route{Method: "POST", Path: "/api/v1/orders", Access: web.Authenticated,
		Handler: func(w http.ResponseWriter, r *http.Request) {
			var in idemIn
			if err := web.Decode(r, &in); err != nil {
				web.Error(w, r, err)
				return
			}
			idem.Run(w, r, db, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
				_, err := tx.ExecContext(ctx, `INSERT INTO effects (item, n) VALUES ($1, 1)`, in.Item)
				return http.StatusCreated, idemOut{ID: "o", Item: in.Item}, err
			}})
		}})
	post := func(b *testing.B, key string) {
		req := httptest.NewRequest("POST", "/api/v1/orders", strings.NewReader(`{"item":"bench"}`))
		req.Header.Set("Authorization", "Bearer customer")
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set(web.HeaderIdempotencyKey, key)
		}
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, req)
		if w.Code != http.StatusCreated {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	measure := func(b *testing.B, key func(i int) string) float64 {
		start := time.Now()
		i := 0
		for b.Loop() {
			post(b, key(i))
			i++
		}
		return float64(time.Since(start).Nanoseconds()) / float64(b.N)
	}
	var plainNs float64
	b.Run("no-key", func(b *testing.B) { plainNs = measure(b, func(int) string { return "" }) })
	b.Run("fresh-key", func(b *testing.B) {
		prefix := b.Name() + strconv.Itoa(b.N)
		ns := measure(b, func(i int) string { return prefix + "-" + strconv.Itoa(i) })
		b.ReportMetric(ns/plainNs, "x-no-key")
	})
	b.Run("replay", func(b *testing.B) {
		post(b, "replayed-key")
		ns := measure(b, func(int) string { return "replayed-key" })
		b.ReportMetric(ns/plainNs, "x-no-key")
	})
}

// BenchmarkDecode measures the strict decoder against encoding/json alone
// on a typical request body and reports the ratio (x-encoding-json).
func BenchmarkDecode(b *testing.B) {
	body := `{"email":"ada@example.com","password":"correct horse battery","name":"Ada Lovelace",
		"tags":["a","b","c"],"attrs":{"colour":"red","size":"M"},"address":{"line1":"1 Main St","notes":["ring"]},
		"qty":3,"count":"12","price":{"minor":1299},"extra":{"k":[1,2,{"x":"y"}]},"when":"2026-01-02T03:04:05Z"}`
	run := func(b *testing.B, decode func(r *http.Request) error) float64 {
		start := time.Now()
		for b.Loop() {
			if err := decode(httptest.NewRequest("POST", "/", strings.NewReader(body))); err != nil {
				b.Fatal(err)
			}
		}
		return float64(time.Since(start).Nanoseconds()) / float64(b.N)
	}
	var stdNs float64
	b.Run("encoding-json", func(b *testing.B) {
		stdNs = run(b, func(r *http.Request) error {
			var in signup
			dec := json.NewDecoder(r.Body)
			dec.DisallowUnknownFields()
			return dec.Decode(&in)
		})
	})
	b.Run("strict", func(b *testing.B) {
		ns := run(b, func(r *http.Request) error {
			var in signup
			return web.Decode(r, &in)
		})
		b.ReportMetric(ns/stdNs, "x-encoding-json")
	})
}
