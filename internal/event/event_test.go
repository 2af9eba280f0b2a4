package event

import (
	"encoding/json"
	"testing"
	"time"
)

func TestSubject(t *testing.T) {
	tests := []struct{ agg, typ, want string }{
		{"order", OrderPlaced, "mercato.order.placed"},
		{"inventory", InventoryLowStock, "mercato.inventory.low_stock"},
		{"customer", CustomerRegistered, "mercato.customer.registered"},
		{"debug", "emitted", "mercato.debug.emitted"},
	}
	for _, tc := range tests {
		if got := Subject(tc.agg, tc.typ); got != tc.want {
			t.Errorf("Subject(%q, %q) = %q, want %q", tc.agg, tc.typ, got, tc.want)
		}
	}
}

func TestNew(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))
	e, err := New(OrderPaid, "order", "o1", at, map[string]int{"total": 1200})
	if err != nil {
		t.Fatal(err)
	}
	if e.OccurredAt.Location() != time.UTC || !e.OccurredAt.Equal(at) {
		t.Errorf("occurred_at %v is not the same instant in UTC", e.OccurredAt)
	}
	if e.Sequence != 0 || e.Subject() != "mercato.order.paid" || string(e.Data) != `{"total":1200}` {
		t.Errorf("envelope %+v", e)
	}
	b, _ := json.Marshal(e)
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, f := range []string{"id", "type", "aggregate_type", "aggregate_id", "sequence", "occurred_at", "data"} {
		if _, ok := m[f]; !ok {
			t.Errorf("envelope JSON lacks %q", f)
		}
	}
	if empty, _ := New(OrderPaid, "order", "o1", at, nil); string(empty.Data) != "{}" {
		t.Errorf("nil data = %s, want {}", empty.Data)
	}
	if _, err := New(OrderPaid, "order", "o1", at, make(chan int)); err == nil {
		t.Error("unmarshalable data accepted")
	}
}

func TestIDsSortByTime(t *testing.T) {
	prev := NewID()
	for range 1000 {
		id := NewID()
		if id <= prev {
			t.Fatalf("id %s not after %s", id, prev)
		}
		prev = id
	}
}
