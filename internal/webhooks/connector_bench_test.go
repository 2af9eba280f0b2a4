package webhooks

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkFileDropAppend: one durable row (write + fsync) through the
// file_drop writer, beside the reference of the same write + fsync on a
// plain file in the same directory, measured in the same run.
func BenchmarkFileDropAppend(b *testing.B) {
	row := []byte(`{"event_id":"01a2","order":"o1","status":"order.paid","amount":12990}` + "\n")
	b.Run("reference_write_fsync", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "ref"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		for b.Loop() {
			if _, err := f.Write(row); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("filedrop", func(b *testing.B) {
		w := newDropWriter(b.TempDir(), "bench", FormatJSONL, nil, 1<<30, 0, time.Now)
		defer w.Close()
		for b.Loop() {
			if _, err := w.Append(row); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMapping: rendering a typical http_json template over an
// order.placed envelope, beside the reference of marshalling the envelope
// itself (what a webhook sends).
func BenchmarkMapping(b *testing.B) {
	envelope := `{"id":"01a2","type":"order.placed","schema_version":1,"aggregate_type":"order","aggregate_id":"o1","sequence":1,
		"occurred_at":"2030-01-02T03:04:05Z","data":{"order_id":"o1","number":"M-1","channel":"amazon","currency":"USD","total":12990,
		"lines":[{"sku":"TEE-M","quantity":2,"unit_price":1500},{"sku":"MUG","quantity":1,"unit_price":900}]}}`
	m, err := parseMapping(json.RawMessage(`{"order":"$.data.number","status":"{{upper .type}}","total":"$.data.total",
		"currency":"$.data.currency","skus":"{{range .data.lines}}{{.sku}}x{{.quantity}};{{end}}","meta":{"seq":"$.sequence","at":"{{.occurred_at}}"}}`),
		false, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("reference_envelope_decode_encode", func(b *testing.B) {
		for b.Loop() {
			env, err := decodeEnvelope(envelope)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mapping", func(b *testing.B) {
		for b.Loop() {
			env, err := decodeEnvelope(envelope)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.JSON(env); err != nil {
				b.Fatal(err)
			}
		}
	})
}
