package orders

import (
	"context"
	"testing"

	"mercato/internal/platform/sqldb"
)

// TestPrivacy: the export holds the customer's orders only; erasure
// anonymises their shipping addresses and keeps the accounting facts.
func TestPrivacy(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		mine := e.placeGo(2)
		bobs := e.placed(e.as("bob"), e.cartWith(e.as("bob"), "MUG", 1))
		got, err := e.svc.export(ctx, "u-alice")
		if err != nil {
			t.Fatal(err)
		}
		list := got.([]Order)
		if len(list) != 1 || list[0].ID != mine.ID || list[0].ShippingAddress.Name != "A" || len(list[0].Lines) != 1 {
			t.Fatalf("export: %+v", list)
		}
		if err := e.db.InTx(ctx, func(tx *sqldb.Tx) error { return e.svc.erase(ctx, tx, "u-alice") }); err != nil {
			t.Fatal(err)
		}
		after, err := e.svc.Get(ctx, Caller{}, mine.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		a := after.ShippingAddress
		if a != (Address{Name: erasedName, Region: "R", Country: "US"}) {
			t.Fatalf("erased address: %+v", a)
		}
		if after.Total != mine.Total || after.Status != mine.Status || len(after.Lines) != 1 || e.count("orders_timeline", "order_id = $1", mine.ID) != 1 {
			t.Fatalf("accounting facts changed: %+v", after)
		}
		b, err := e.svc.Get(ctx, Caller{}, bobs, true)
		if err != nil || b.ShippingAddress.Name != "Alice A" {
			t.Fatalf("another customer's order was erased: %+v, %v", b.ShippingAddress, err)
		}
	})
}
