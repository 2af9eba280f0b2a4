package natsbus

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/bus/bustest"
	"mercato/internal/platform/errs"
)

const envURL = "MERCATO_TEST_NATS_URL"

func TestConformanceEmbedded(t *testing.T) {
	bustest.Run(t, opener(""))
}

func TestConformanceExternal(t *testing.T) {
	url := externalURL(t)
	bustest.RunFeatures(t, opener(url), featuresOf(t, url))
}

func externalURL(t *testing.T) string {
	url := os.Getenv(envURL)
	if url == "" {
		t.Skip(envURL + " unset: no external NATS server to test against")
	}
	return url
}

// featuresOf reads the external server's version: several filter subjects
// per consumer need 2.10.
func featuresOf(t *testing.T, url string) bustest.Features {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer nc.Close()
	v := nc.ConnectedServerVersion()
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("server version %q: %v", v, err)
	}
	if major == 2 && minor < 10 {
		t.Logf("external server %s: consumers with several subjects must be refused", v)
	}
	return bustest.Features{MultipleSubjects: major > 2 || minor >= 10}
}

// testConfig is a Config isolated from every other test: a fresh data
// directory (embedded) or a unique stream and subject prefix (external).
func testConfig(t *testing.T, url string) Config {
	tag := strings.ToLower(rand.Text()[:12])
	cfg := Config{URL: url, SubjectPrefix: "t" + tag + ".", Stream: "T" + strings.ToUpper(tag)}
	if url == "" {
		cfg.DataDir = t.TempDir()
		return cfg
	}
	t.Cleanup(func() { deleteStream(t, url, cfg.Stream) })
	return cfg
}

func deleteStream(t *testing.T, url, stream string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("cleanup: connect: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err == nil {
		err = js.DeleteStream(context.Background(), stream)
	}
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("cleanup: delete stream %s: %v", stream, err)
	}
}

// opener returns the suite's open function: buses opened for one test share
// a Config, so reopening finds the same stream and data directory.
func opener(url string) func(t *testing.T) bus.Bus {
	var mu sync.Mutex
	configs := map[*testing.T]Config{}
	return func(t *testing.T) bus.Bus {
		mu.Lock()
		cfg, ok := configs[t]
		if !ok {
			cfg = testConfig(t, url)
			configs[t] = cfg
			t.Cleanup(func() {
				mu.Lock()
				delete(configs, t)
				mu.Unlock()
			})
		}
		mu.Unlock()
		return open(t, cfg)
	}
}

// open opens a Bus closed at the end of t.
func open(t *testing.T, cfg Config) *Bus {
	t.Helper()
	b, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func TestEmbeddedListener(t *testing.T) {
	tests := []struct {
		name       string
		listenAddr string
		wantTCP    bool
	}{
		{"no address opens no port", "", false},
		{"loopback address accepts TCP clients", "127.0.0.1:0", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "")
			cfg.ListenAddr = tc.listenAddr
			b := open(t, cfg)
			if err := b.Ping(t.Context()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			addr := b.srv.Addr()
			if (addr != nil) != tc.wantTCP {
				t.Fatalf("listener %v, want one: %v", addr, tc.wantTCP)
			}
			if !tc.wantTCP {
				return
			}
			nc, err := nats.Connect("nats://" + addr.String())
			if err != nil {
				t.Fatalf("TCP connect to %s: %v", addr, err)
			}
			defer nc.Close()
			if err := nc.Flush(); err != nil {
				t.Fatalf("Flush over TCP: %v", err)
			}
		})
	}
}

// TestEmbeddedServerLogs checks that the server logs through Config.Logger.
func TestEmbeddedServerLogs(t *testing.T) {
	var buf syncBuffer
	cfg := testConfig(t, "")
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := open(t, cfg)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if out := buf.String(); !strings.Contains(out, "component=nats") || !strings.Contains(out, "JetStream") {
		t.Fatalf("server log lacks the server's notices:\n%s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestEmbeddedDataSurvivesRestart publishes, closes the embedded server,
// starts a new one on the same directory, and consumes everything with a
// durable created after the restart.
func TestEmbeddedDataSurvivesRestart(t *testing.T) {
	ctx := t.Context()
	cfg := testConfig(t, "")
	b1 := open(t, cfg)
	const n = 1000
	ms := make([]bus.Message, n)
	for i := range ms {
		ms[i] = bus.Message{ID: "r" + strconv.Itoa(i), Subject: "mercato.restart.done", Data: []byte(strconv.Itoa(i))}
	}
	if err := b1.Publish(ctx, ms); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if err := b1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	b2 := open(t, cfg)
	if p, err := b2.Pending(ctx, "after"); err != nil || p != 0 {
		t.Fatalf("Pending before the consumer exists = %d, %v", p, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	next := 0
	err := b2.Consume(cctx, bus.ConsumerConfig{Durable: "after"}, 300, func(_ context.Context, ds []bus.Delivery) {
		for _, d := range ds {
			if m := d.Message(); next < n && (m.ID != ms[next].ID || string(m.Data) != string(ms[next].Data)) {
				t.Errorf("delivery %d is %s, want %s", next, m.ID, ms[next].ID)
			}
			next++
			_ = d.Ack()
		}
		if next >= n {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || next != n {
		t.Fatalf("Consume: %v after %d deliveries, want %d then cancel", err, next, n)
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		kind errs.Kind
	}{
		{"embedded without data dir", Config{}, errs.Invalid},
		{"listen address with external URL", Config{URL: "nats://127.0.0.1:4222", ListenAddr: "127.0.0.1:0"}, errs.Invalid},
		{"duplicate window beyond max age", Config{DataDir: "x", MaxAge: time.Minute, DuplicateWindow: time.Hour}, errs.Invalid},
		{"bad listen address", Config{DataDir: t.TempDir(), ListenAddr: "localhost"}, errs.Unavailable},
		{"unreachable server", Config{URL: "nats://127.0.0.1:1"}, errs.Unavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Open(t.Context(), tc.cfg)
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded")
			}
			if errs.KindOf(err) != tc.kind {
				t.Fatalf("Open: %v (kind %v), want kind %v", err, errs.KindOf(err), tc.kind)
			}
		})
	}
}

func TestSyncInterval(t *testing.T) {
	tests := []struct {
		name string
		set  time.Duration
		want time.Duration
	}{
		{"server default", 0, DefaultSyncInterval},
		{"configured", 5 * time.Second, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "")
			cfg.SyncInterval = tc.set
			if got := open(t, cfg).SyncInterval(); got != tc.want {
				t.Fatalf("SyncInterval() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPublishBackPressure publishes far more than the connection's cap on
// outstanding acks, from several goroutines at once, and checks that every
// message is stored.
func TestPublishBackPressure(t *testing.T) {
	ctx := t.Context()
	cfg := testConfig(t, "")
	cfg.maxPending, cfg.stallWait = 64, time.Nanosecond // stall at once
	b := open(t, cfg)
	const workers, per = 3, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ms := make([]bus.Message, per)
			for i := range ms {
				ms[i] = bus.Message{ID: fmt.Sprintf("bp-%d-%d", w, i), Subject: "mercato.bp.x", Data: []byte("x")}
			}
			if err := b.Publish(ctx, ms); err != nil {
				t.Errorf("Publish: %v", err)
			}
		})
	}
	wg.Wait()
	info, err := b.stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	if info.State.Msgs != workers*per {
		t.Fatalf("stream holds %d messages, want %d", info.State.Msgs, workers*per)
	}
}

func TestPublishRefusesMessageWithoutID(t *testing.T) {
	b := open(t, testConfig(t, ""))
	err := b.Publish(t.Context(), []bus.Message{{Subject: "mercato.x.y", Data: []byte("{}")}})
	if errs.KindOf(err) != errs.Invalid {
		t.Fatalf("Publish: %v, want an Invalid error", err)
	}
}

// TestConsumeEndsOnClose closes the bus under a waiting Consume call.
func TestConsumeEndsOnClose(t *testing.T) {
	b := open(t, testConfig(t, ""))
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(t.Context(), bus.ConsumerConfig{Durable: "c"}, 10, func(context.Context, []bus.Delivery) {})
	}()
	// Poll until the consumer exists: Consume is then fetching.
	for {
		if _, err := b.stream.Consumer(t.Context(), "c"); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("Consume returned %v, want a transport error", err)
		}
		if waited := time.Since(start); waited > 2*time.Second {
			t.Errorf("Close and Consume's return took %v, want promptly", waited)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Consume still running 10s after Close")
	}
}

// benchPayload is about the size of an event envelope in JSON.
var benchPayload = make([]byte, 256)

// BenchmarkPublish measures Publish on the embedded server (lazy sync) in
// calls of 1000 messages; one op is one call.
func BenchmarkPublish(b *testing.B) {
	const batch = 1000
	bs := openBench(b)
	ms := make([]bus.Message, batch)
	n := 0
	for b.Loop() {
		for i := range ms {
			ms[i] = bus.Message{ID: "p" + strconv.Itoa(n), Subject: "mercato.bench.published", Data: benchPayload}
			n++
		}
		if err := bs.Publish(b.Context(), ms); err != nil {
			b.Fatalf("Publish: %v", err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkConsume measures a durable consumer taking and acknowledging
// batches of 500 from a stream filled beforehand; one op is one message.
func BenchmarkConsume(b *testing.B) {
	const batch = 500
	bs := openBench(b)
	ctx := b.Context()
	ms := make([]bus.Message, 0, 1000)
	for i := 0; i < b.N; i++ {
		ms = append(ms, bus.Message{ID: "c" + strconv.Itoa(i), Subject: "mercato.bench.consumed", Data: benchPayload})
		if len(ms) == cap(ms) || i == b.N-1 {
			if err := bs.Publish(ctx, ms); err != nil {
				b.Fatalf("Publish: %v", err)
			}
			ms = ms[:0]
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	got := 0
	b.ResetTimer()
	err := bs.Consume(cctx, bus.ConsumerConfig{Durable: "bench", MaxAckPending: 10 * batch}, batch,
		func(_ context.Context, ds []bus.Delivery) {
			for _, d := range ds {
				_ = d.Ack()
			}
			if got += len(ds); got >= b.N {
				cancel()
			}
		})
	b.StopTimer()
	if got < b.N {
		b.Fatalf("consumed %d of %d: %v", got, b.N, err)
	}
	b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "msgs/s")
}

func openBench(b *testing.B) *Bus {
	bs, err := Open(b.Context(), Config{DataDir: b.TempDir(), MaxAge: time.Hour})
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(func() { bs.Close() })
	return bs
}
