package natsbus

import (
	"context"
	"strconv"
	"testing"
	"time"

	"mercato/internal/platform/bus"
)

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
