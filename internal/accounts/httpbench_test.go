package accounts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/platform/web"
)

// benchClients is the concurrency of the HTTP benchmarks (the 64).
const benchClients = 64

// benchServer serves the accounts routes over write, plus /healthz. With a
// nil write, POST /api/v1/me/addresses has its database write taken out: it
// is authenticated, decoded and answered with what it was sent (the HTTP
// ceiling of the machine for that request).
func benchServer(b *testing.B, db *sqldb.DB, write sqldb.Committer) (*Service, string) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	idem := web.NewIdempotency(db, web.IdempotencyConfig{Logger: logger})
	b.Cleanup(func() { idem.Close() })
	svc := New(module.Platform{DB: db, Write: write, Idem: idem, Logger: logger}, mailbox{ch: make(chan Message, 1)}, Config{Hash: testHash})
	ctx, stop := context.WithCancel(context.Background())
	b.Cleanup(stop)
	go svc.RunInvalidations(ctx)
	router := web.NewRouter(web.Config{Logger: logger, Auth: svc})
	for _, r := range svc.Routes() {
		if write == nil && r.Pattern() == "POST /api/v1/me/addresses" {
			r.Handler = func(w http.ResponseWriter, r *http.Request) {
				var in AddressRequest
				if err := web.Decode(r, &in); err != nil {
					web.Error(w, r, err)
					return
				}
				web.JSON(w, http.StatusCreated, in)
			}
		}
		router.Handle(r)
	}
	router.HandleOps(nil)
	srv := httptest.NewServer(router)
	b.Cleanup(srv.Close)
	return svc, srv.URL
}

// hammer sends n requests from benchClients goroutines, request i made by
// req(i), and returns the rate. Every answer must have status want.
func hammer(b *testing.B, n int, want int, req func(i int) *http.Request) float64 {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range benchClients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				res, err := client.Do(req(i))
				if err != nil {
					b.Error(err)
					return
				}
				msg, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != want {
					b.Errorf("status %d, want %d: %s", res.StatusCode, want, msg)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkHTTPWrite measures POST /api/v1/me/addresses through the real
// router and HTTP server, 64 concurrent clients, no password hashing on the
// path, three ways in one run: on the write path (group commit), with the
// same code committing once per request (*sqldb.DB as the Committer), and
// with the database write taken out (the HTTP ceiling). b.N requests each.
func BenchmarkHTTPWrite(b *testing.B) {
	for _, engine := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		b.Run(string(engine), func(b *testing.B) {
			db := sqldbtest.Open(b, engine, sources()...)
			batcher := groupcommit.New(db, groupcommit.Config{})
			b.Cleanup(batcher.Close)
			modes := []struct {
				name  string
				write sqldb.Committer
			}{{"per_request", db}, {"write_path", batcher}, {"no_write", nil}}
			body, _ := json.Marshal(sampleAddress())
			rates := map[string]float64{}
			b.ResetTimer()
			for _, m := range modes {
				b.StopTimer()
				_, base := benchServer(b, db, m.write)
				tokens := benchUsers(b, db, m.name, b.N)
				b.StartTimer()
				rates[m.name] = hammer(b, b.N, http.StatusCreated, func(i int) *http.Request {
					r, _ := http.NewRequest("POST", base+"/api/v1/me/addresses", bytes.NewReader(body))
					r.Header.Set("Content-Type", "application/json")
					r.Header.Set("Authorization", "Bearer "+tokens[i%len(tokens)]) // users spread over the clients
					return r
				})
			}
			b.StopTimer()
			b.ReportMetric(rates["write_path"], "writes/s")
			b.ReportMetric(rates["per_request"], "ref_per_request_writes/s")
			b.ReportMetric(rates["no_write"], "ref_no_write_req/s")
			b.ReportMetric(rates["write_path"]/rates["per_request"], "x_per_request")
			b.ReportMetric(rates["write_path"]/rates["no_write"], "x_no_write")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// perUser is how many addresses one benchmark user adds (the address book
// holds at most maxAddresses).
const perUser = maxAddresses - 5

// benchUsers registers enough customers for n address writes in db and
// returns their tokens.
func benchUsers(b *testing.B, db *sqldb.DB, prefix string, n int) []string {
	svc := New(module.Platform{DB: db}, nil, Config{Hash: testHash})
	var tokens []string
	for i := 0; i*perUser < n; i++ {
		res, err := svc.Register(context.Background(), RegisterRequest{Email: fmt.Sprintf("%s-%d@bench.example.com", prefix, i),
			Password: goodPassword, Name: "Bench"})
		if err != nil {
			b.Fatal(err)
		}
		tokens = append(tokens, res.Token)
	}
	return tokens
}

// BenchmarkAuthenticatedRead measures GET /api/v1/me (the token lookup
// every route of the shop pays) against GET /healthz, 64 concurrent
// clients, b.N requests each, in the same run.
func BenchmarkAuthenticatedRead(b *testing.B) {
	for _, engine := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		b.Run(string(engine), func(b *testing.B) {
			db := sqldbtest.Open(b, engine, sources()...)
			svc, base := benchServer(b, db, db)
			waitTrusted(b, svc)
			tokens := benchUsers(b, db, "read", benchClients*perUser)
			get := func(path string, auth bool) func(int) *http.Request {
				return func(i int) *http.Request {
					r, _ := http.NewRequest("GET", base+path, nil)
					if auth {
						r.Header.Set("Authorization", "Bearer "+tokens[i%len(tokens)])
					}
					return r
				}
			}
			b.ResetTimer()
			health := hammer(b, b.N, http.StatusOK, get("/healthz", false))
			me := hammer(b, b.N, http.StatusOK, get("/api/v1/me", true))
			b.StopTimer()
			b.ReportMetric(me, "me_req/s")
			b.ReportMetric(health, "ref_healthz_req/s")
			b.ReportMetric(me/health, "x_healthz")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func waitTrusted(tb testing.TB, svc *Service) {
	tb.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if svc.hub == nil || svc.hub.Trusted() {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("the token cache never started listening")
		}
	}
}
