package accounts

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// maxRSSMiB is the ceiling for the process's peak resident memory while
// 200 logins run at once: the hashing cap must hold it.
const maxRSSMiB = 512

// BenchmarkLogin measures POST /api/v1/auth/login through the real router
// and HTTP server with production argon2id parameters, at 100 and 200
// concurrent clients: logins/s, p99 latency and the process's peak RSS
// (VmHWM). As a same-run reference it reports the raw argon2id rate with
// GOMAXPROCS hashes in parallel — the ceiling the login rate can reach.
func BenchmarkLogin(b *testing.B) {
	e := newEnv(b, sqldbtest.Open(b, sqldb.SQLite, sources()...), Config{Hash: DefaultHashParams})
	if _, err := e.svc.CreateUser(context.Background(), "bench@example.com", goodPassword, "Bench", []string{RoleCustomer}); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(e.router)
	b.Cleanup(srv.Close)
	body, _ := json.Marshal(map[string]string{"email": "bench@example.com", "password": goodPassword})

	for _, conc := range []int{100, 200} {
		b.Run("concurrency="+strconv.Itoa(conc), func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}}
			defer client.CloseIdleConnections()
			ref := argon2Rate() // measured next to the run: the machine is shared
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range conc {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						res, err := client.Post(srv.URL+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
						if err != nil {
							b.Error(err)
							return
						}
						res.Body.Close()
						if res.StatusCode != http.StatusOK {
							b.Errorf("login: status %d", res.StatusCode)
							return
						}
						lat[i] = time.Since(t0)
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			rss := peakRSSMiB(b)
			rate := float64(b.N) / elapsed.Seconds()
			b.ReportMetric(rate, "logins/s")
			b.ReportMetric(rate/ref, "login/hash_ratio")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
			b.ReportMetric(rss, "peak_rss_MiB")
			b.ReportMetric(ref, "ref_argon2id_hashes/s")
			b.ReportMetric(0, "ns/op")
			if rss > maxRSSMiB {
				b.Fatalf("peak RSS %.0f MiB with %d concurrent logins, over %d MiB", rss, conc, maxRSSMiB)
			}
		})
	}
}

// argon2Rate is the raw argon2id rate with production parameters and
// GOMAXPROCS hashes at a time (the hashing cap's default).
func argon2Rate() float64 {
	p := DefaultHashParams
	n, workers := 8*runtime.GOMAXPROCS(0), runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var next atomic.Int64
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				argon2.IDKey([]byte(goodPassword), []byte("0123456789abcdef"), p.Iterations, p.MemoryKiB, p.Parallelism, p.KeyLen)
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// peakRSSMiB reads the process's peak resident set (VmHWM) in MiB.
func peakRSSMiB(b *testing.B) float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatalf("peak RSS: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatalf("peak RSS: %q: %v", line, err)
			}
			return kb / 1024
		}
	}
	b.Fatal("peak RSS: no VmHWM in /proc/self/status")
	return 0
}
