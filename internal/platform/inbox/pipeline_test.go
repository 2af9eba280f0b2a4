package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mercato/internal/platform/bus"
	"mercato/internal/platform/event"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// appendOne appends one event of aggregate ("order", aggID) through the
// outbox.
func appendOne(t testing.TB, ctx context.Context, db *sqldb.DB, aggID string) event.Envelope {
	t.Helper()
	e, _ := orderPaid.New(aggID, time.Time{}, seqPayload{})
	if err := db.InTx(ctx, func(tx *sqldb.Tx) error { return outbox.Append(ctx, tx, &e) }); err != nil {
		t.Fatal(err)
	}
	return e
}

// renaming publishes under fresh message ids, as when the bus's
// de-duplication window has passed: only the inbox can tell the repeat.
type renaming struct{ bus.Publisher }

func (p renaming) Publish(ctx context.Context, msgs []bus.Message) error {
	out := make([]bus.Message, len(msgs))
	for i, m := range msgs {
		m.ID += "-again"
		out[i] = m
	}
	return p.Publisher.Publish(ctx, out)
}

func TestRelayCrashAppliedOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		b := openBus(t)
		p := newProbe("crash")
		runRunner(t, db, b, RunnerConfig{}, p.consumer("order.*"))
		e := appendOne(t, ctx, db, "c")

		crash := errors.New("crash")
		first := outbox.NewRelay(db, b, outbox.RelayConfig{Logger: quiet,
			AfterPublish: func([]string) error { return crash }})
		if err := first.Run(ctx); !errors.Is(err, crash) {
			t.Fatalf("Run = %v, want the crash", err)
		}
		p.waitApplied(t, 1)
		if n, _ := outbox.Pending(ctx, db); n != 1 {
			t.Fatalf("outbox pending %d after a crash before mark, want 1", n)
		}

		second := outbox.NewRelay(db, renaming{b}, outbox.RelayConfig{Logger: quiet})
		if err := second.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _ := outbox.Pending(ctx, db); n != 0 {
			t.Fatalf("outbox pending %d after the new relay, want 0", n)
		}
		waitPending(t, b, "crash", 0)
		if n := effects(t, db, "crash", e.ID); n != 1 {
			t.Fatalf("event applied %d times, want once", n)
		}
	})
}

func TestMonitorStatus(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		b := openBus(t)
		m := NewMonitor(db, b)

		t.Run("empty", func(t *testing.T) {
			appendOne(t, ctx, db, "m0")
			st, err := m.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			js, _ := json.Marshal(st)
			if want := `{"consumers":[],"outbox_pending":1,"dead_letters":0}`; string(js) != want {
				t.Fatalf("status %s, want %s", js, want)
			}
		})
		t.Run("consumers elsewhere", func(t *testing.T) {
			p, idle := newProbe("mon"), newProbe("idle")
			reg := prometheus.NewRegistry()
			_, stop := runRunner(t, db, b, RunnerConfig{Registerer: reg}, p.consumer("order.*"), idle.consumer("product.*"))
			publish(t, b, envelope("m1", 1))
			p.waitApplied(t, 1)
			waitPending(t, b, "mon", 0)
			stop()
			publish(t, b, envelope("m1", 2), envelope("m2", 1))
			// The bus counts new messages for a consumer asynchronously.
			waitPending(t, b, "mon", 2)

			st, err := m.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Consumers) != 2 {
				t.Fatalf("consumers %+v, want idle and mon", st.Consumers)
			}
			idleSt, mon := st.Consumers[0], st.Consumers[1]
			if idleSt.Name != "idle" || idleSt.Processed != 0 || idleSt.Pending != 0 || idleSt.LastProcessedAt != nil {
				t.Fatalf("idle consumer %+v", idleSt)
			}
			if mon.Name != "mon" || mon.Processed != 1 || mon.Failed != 0 || mon.Pending != 2 || mon.LastProcessedAt == nil {
				t.Fatalf("consumer %+v, want 1 processed and 2 pending", mon)
			}
			metrics := map[string]float64{}
			families, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range families {
				for _, m := range f.GetMetric() {
					if m.GetLabel()[0].GetValue() == "mon" {
						metrics[f.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
					}
				}
			}
			if metrics["mercato_consumer_processed_total"] != 1 || metrics["mercato_consumer_pending"] != 2 {
				t.Fatalf("metrics %v, want 1 processed and 2 pending", metrics)
			}
			if _, ok := metrics["mercato_consumer_lag_seconds"]; !ok {
				t.Fatalf("metrics %v lack the lag", metrics)
			}
			js, _ := json.Marshal(mon)
			for _, f := range []string{`"name":`, `"pending":`, `"processed":`, `"failed":`, `"last_processed_at":"`} {
				if !strings.Contains(string(js), f) {
					t.Fatalf("consumer JSON %s lacks %s", js, f)
				}
			}
		})
	})
}
