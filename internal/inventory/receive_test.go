package inventory

import (
	"context"
	"fmt"
	"testing"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// TestReceive: a receipt adds to on_hand (a new SKU gets its row), writes
// a receipt ledger row per line referencing the actor and one audit entry;
// bad lines change nothing.
func TestReceive(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.setStock("RCV-A", "", 5)
		receive := func(loc string, lines ...Line) ([]Level, error) {
			var out []Level
			err := e.write.Do(ctx, func(tx *sqldb.Tx) (err error) {
				out, err = e.svc.ReceiveTx(ctx, tx, loc, lines, "warehouse:east")
				return err
			})
			return out, err
		}
		before := e.snapshot()
		for name, bad := range map[string][]Line{
			"no lines":       nil,
			"zero":           {{SKU: "RCV-A", Quantity: 0}},
			"too many":       {{SKU: "RCV-A", Quantity: MaxQuantity + 1}},
			"bad sku":        {{SKU: "bad sku", Quantity: 1}},
			"a sku twice":    {{SKU: "RCV-A", Quantity: 1}, {SKU: "RCV-A", Quantity: 1}},
			"valid then bad": {{SKU: "RCV-B", Quantity: 1}, {SKU: "", Quantity: 1}},
		} {
			if _, err := receive("", bad...); errs.CodeOf(err) != errs.CodeValidation {
				t.Errorf("%s: %v, want validation_failed", name, err)
			}
		}
		if _, err := receive("nowhere", Line{SKU: "RCV-A", Quantity: 1}); errs.CodeOf(err) != errs.CodeValidation {
			t.Errorf("unknown location: %v", err)
		}
		e.assertUnchanged(before)
		lvs, err := receive("", Line{SKU: "RCV-B", Quantity: 7}, Line{SKU: "RCV-A", Quantity: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(lvs) != 2 || lvs[0].SKU != "RCV-B" || lvs[0].OnHand != 7 || lvs[1].SKU != "RCV-A" || lvs[1].OnHand != 8 {
			t.Fatalf("levels %+v", lvs)
		}
		if lv := e.level("RCV-A"); lv.OnHand != 8 || lv.Available != 8 {
			t.Fatalf("RCV-A %+v", lv)
		}
		if n := e.count("inventory_ledger", "reason = 'receipt' AND reference = 'warehouse:east'"); n != 2 {
			t.Errorf("%d receipt rows of the warehouse, want 2", n)
		}
		if n := e.count("audit_log", "action = 'inventory.stock_received' AND actor_id = 'warehouse:east'"); n != 1 {
			t.Errorf("%d audit entries, want 1", n)
		}
	})
}

// TestReceiveRacesReservations: 40 receipts of 2 units and 60 reservations
// of 1 race on a SKU holding 10, each its own unit of the batcher: no
// receipt is lost (on_hand ends at 10 + 80 minus nothing), reservations
// never exceed what was there when each was decided, and the invariant
// holds.
func TestReceiveRacesReservations(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.setStock("RACE-R", "", 10)
		out := parallel(100, func(i int) error {
			if i%5 < 2 {
				return e.write.Do(ctx, func(tx *sqldb.Tx) error {
					_, err := e.svc.ReceiveTx(ctx, tx, "", []Line{{SKU: "RACE-R", Quantity: 2}}, "warehouse:w")
					return err
				})
			}
			_, err := e.svc.Reserve(ctx, fmt.Sprintf("rr-%03d", i), "", []Line{{SKU: "RACE-R", Quantity: 1}}, 0)
			return err
		})
		reserved := 0
		for i, err := range out {
			switch {
			case err == nil && i%5 >= 2:
				reserved++
			case err == nil:
			case i%5 >= 2 && errs.CodeOf(err) == errs.CodeOutOfStock:
			default:
				t.Fatalf("unit %d: %v", i, err)
			}
		}
		lv := e.level("RACE-R")
		if lv.OnHand != 90 || lv.Reserved != int64(reserved) {
			t.Fatalf("level %+v after 40 receipts of 2 and %d reservations; want on_hand 90", lv, reserved)
		}
		if n := e.count("inventory_ledger", "reason = 'receipt' AND sku = 'RACE-R' AND reference = 'warehouse:w'"); n != 40 {
			t.Fatalf("%d receipt rows, want 40", n)
		}
		e.checkInvariant()
	})
}
