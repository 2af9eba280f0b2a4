package inventory

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"testing"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
)

type sqldbTx = sqldb.Tx

// countingCommitter counts the units handed to the write path.
type countingCommitter struct {
	sqldb.Committer
	units *int
}

func (c *countingCommitter) Do(ctx context.Context, fn func(*sqldb.Tx) error) error {
	*c.units++
	return c.Committer.Do(ctx, fn)
}

func (c *countingCommitter) Run(ctx context.Context, u sqldb.Unit) error {
	*c.units++
	return c.Committer.Run(ctx, u)
}

// withWrite returns a copy of s writing through c (same sold-out set).
func (s *Service) withWrite(c sqldb.Committer) *Service {
	cp := *s
	cp.write = c
	return &cp
}

// TestOrderConsumer: order.paid commits the order's reservation and
// order.cancelled / order.expired release it, keyed by the aggregate id
// alone (the payload is not read); a redelivery or an event of an order
// without a reservation has no effect. (A paid order cancelled gets its
// units back: TestCancelledAfterPayment.)
func TestOrderConsumer(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.setStock("P", "", 10)
		for _, ref := range []string{"ord-paid", "ord-cancelled", "ord-expired"} {
			if _, err := e.svc.Reserve(ctx, ref, "c1", []Line{{SKU: "P", Quantity: 2}}, 0); err != nil {
				t.Fatal(err)
			}
		}
		deliver := func(typ, orderID string) {
			t.Helper()
			env := event.Envelope{ID: event.NewID(), Type: typ, SchemaVersion: 1, AggregateType: "order", AggregateID: orderID,
				Sequence: 2, OccurredAt: e.clock.Now(), Data: []byte(`{"order_id":"` + orderID + `","something":"unknown to inventory"}`)}
			if err := e.db.Do(ctx, func(tx *sqldb.Tx) error { return e.svc.HandleOrderEvent(ctx, tx, env) }); err != nil {
				t.Fatalf("%s %s: %v", typ, orderID, err)
			}
		}
		deliver("order.paid", "ord-paid")
		deliver("order.cancelled", "ord-cancelled")
		deliver("order.expired", "ord-expired")
		before := e.snapshot()
		deliver("order.paid", "ord-paid")         // again
		deliver("order.cancelled", "ord-expired") // released already: nothing
		deliver("order.expired", "ord-no-stock")  // no reservation
		deliver("order.paid", "ord-cancelled")    // released already
		deliver("order.shipped", "ord-cancelled") // not selected
		e.assertUnchanged(before)
		if lv := e.level("P"); lv.OnHand != 8 || lv.Reserved != 0 {
			t.Fatalf("level %+v, want on_hand 8 and nothing reserved", lv)
		}
		c := e.svc.OrderConsumer()
		if !slices.Equal(c.Events, []string{"order.paid", "order.cancelled", "order.expired"}) {
			t.Fatalf("consumer subscribes to %v", c.Events)
		}
		evs := e.events()
		for _, want := range []string{"inventory.committed ord-paid", "inventory.released ord-cancelled", "inventory.released ord-expired"} {
			if !slices.Contains(evs, want) {
				t.Errorf("no %q among %v", want, evs)
			}
		}
	})
}

// TestExpired: reservations past their TTL are listed, earliest first,
// until they are settled.
func TestExpired(t *testing.T) {
	forEachEngine(t, Config{TTL: 10 * time.Minute}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.setStock("X", "", 10)
		for _, r := range []struct {
			ref string
			ttl time.Duration
		}{{"short", time.Minute}, {"default", 0}, {"long", time.Hour}} {
			if _, err := e.svc.Reserve(ctx, r.ref, "", []Line{{SKU: "X", Quantity: 1}}, r.ttl); err != nil {
				t.Fatal(err)
			}
		}
		list := func() []string {
			t.Helper()
			refs, err := e.svc.Expired(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			var inTx []string
			if err := e.db.Do(ctx, func(tx *sqldb.Tx) (err error) { inTx, err = e.svc.ExpiredTx(ctx, tx, 10); return err }); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(refs, inTx) {
				t.Fatalf("Expired %v, ExpiredTx %v", refs, inTx)
			}
			return refs
		}
		if got := list(); len(got) != 0 {
			t.Fatalf("expired at once: %v", got)
		}
		e.clock.Advance(11 * time.Minute)
		if got := list(); !slices.Equal(got, []string{"short", "default"}) {
			t.Fatalf("expired after 11 minutes: %v", got)
		}
		if err := e.svc.Release(ctx, "short"); err != nil {
			t.Fatal(err)
		}
		if got := list(); !slices.Equal(got, []string{"default"}) {
			t.Fatalf("after a release: %v", got)
		}
	})
}

// TestReserveRefusals: malformed input and a reference used twice.
func TestReserveRefusals(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.setStock("Q", "", 10)
		if _, err := e.svc.Reserve(ctx, "dup", "", []Line{{SKU: "Q", Quantity: 1}}, 0); err != nil {
			t.Fatal(err)
		}
		before := e.snapshot()
		long := string(make([]byte, MaxRefLen+1))
		for _, c := range []struct {
			name, ref string
			lines     []Line
			code      errs.Code
		}{
			{"no lines", "a", nil, errs.CodeValidation},
			{"zero quantity", "a", []Line{{SKU: "Q", Quantity: 0}}, errs.CodeValidation},
			{"bad sku", "a", []Line{{SKU: "no spaces", Quantity: 1}}, errs.CodeValidation},
			{"sum too large", "a", []Line{{SKU: "Q", Quantity: MaxQuantity}, {SKU: "Q", Quantity: 1}}, errs.CodeValidation},
			{"no ref", "", []Line{{SKU: "Q", Quantity: 1}}, errs.CodeValidation},
			{"ref too long", long, []Line{{SKU: "Q", Quantity: 1}}, errs.CodeValidation},
			{"ref used", "dup", []Line{{SKU: "Q", Quantity: 1}}, CodeReservationExists},
		} {
			t.Run(c.name, func(t *testing.T) {
				if _, err := e.svc.Reserve(ctx, c.ref, "", c.lines, 0); errs.CodeOf(err) != c.code {
					t.Fatalf("Reserve = %v, want %s", err, c.code)
				}
			})
		}
		e.assertUnchanged(before)
	})
}

// TestPrivacyHTTP: a customer's export through the accounts module holds
// the inventory section; the customer's erasure removes it in the same
// unit.
func TestPrivacyHTTP(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		reg := e.anon.Do("POST", "/api/v1/auth/register", map[string]string{"email": "buyer@example.com", "password": password, "name": "B"})
		reg.WantStatus(t, 201)
		id, me := reg.Field("user.id").(string), e.anon.WithToken(reg.Field("token").(string))
		e.setStock("PRIV", "", 5)
		lim := int64(3)
		if err := e.write.Do(ctx, func(tx *sqldb.Tx) error {
			_, err := e.svc.SetGuardTx(ctx, tx, "PRIV", GuardRequest{PerCustomerLimit: &lim}, e.opID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Reserve(ctx, "priv-1", id, []Line{{SKU: "PRIV", Quantity: 2}}, 0); err != nil {
			t.Fatal(err)
		}
		r := me.Do("GET", "/api/v1/me/export", nil)
		r.WantStatus(t, 200)
		if r.Field("inventory.purchase_counters.0.units") != float64(2) || r.Field("inventory.reservations.0.ref") != "priv-1" {
			t.Fatalf("export %s", r.Body)
		}
		me.Do("POST", "/api/v1/me/erase", map[string]string{"password": password}).WantStatus(t, 200)
		if n := e.count("inventory_customer_units", "customer_id = $1", id) + e.count("inventory_reservations", "customer_id = $1", id); n != 0 {
			t.Fatalf("%d inventory rows of the erased customer", n)
		}
	})
}

// TestPrivacy: the export holds the customer's counters and reservations;
// erasure deletes the counters and anonymises the reservations.
func TestPrivacy(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.setStock("G", "", 10)
		lim := int64(5)
		if err := e.write.Do(ctx, func(tx *sqldb.Tx) error {
			_, err := e.svc.SetGuardTx(ctx, tx, "G", GuardRequest{PerCustomerLimit: &lim}, e.opID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Reserve(ctx, "g1", "cust-1", []Line{{SKU: "G", Quantity: 3}}, 0); err != nil {
			t.Fatal(err)
		}
		got, err := e.svc.export(ctx, "cust-1")
		if err != nil {
			t.Fatal(err)
		}
		d := got.(CustomerData)
		if !slices.Equal(d.PurchaseCounters, []CustomerUnits{{"G", 3}}) || !slices.Equal(d.Reservations, []CustomerReservation{{"g1", "reserved"}}) {
			t.Fatalf("export %+v", d)
		}
		if err := e.db.Do(ctx, func(tx *sqldb.Tx) error { return e.svc.erase(ctx, tx, "cust-1") }); err != nil {
			t.Fatal(err)
		}
		if n := e.count("inventory_customer_units", "customer_id = 'cust-1'") + e.count("inventory_reservations", "customer_id = 'cust-1'"); n != 0 {
			t.Fatalf("%d rows of the erased customer", n)
		}
		got, _ = e.svc.export(ctx, "cust-1")
		if d := got.(CustomerData); len(d.PurchaseCounters)+len(d.Reservations) != 0 {
			t.Fatalf("export after erasure %+v", d)
		}
		if err := e.svc.Release(ctx, "g1"); err != nil { // settling still works
			t.Fatal(err)
		}
	})
}

// TestModule: the declaration passes module.Check, names the four event
// types, both permissions (held by operators) and a consumer whose name is
// a valid durable bus consumer name (no '.').
func TestModule(t *testing.T) {
	m := New(module.Platform{}, Config{}).Module()
	if err := module.Check([]module.Module{m}); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range m.Events {
		types = append(types, e.Type)
	}
	if !slices.Equal(types, []string{"inventory.reserved", "inventory.committed", "inventory.released", "inventory.low_stock",
		"inventory.sold_out", "inventory.restocked"}) {
		t.Fatalf("events %v", types)
	}
	for _, p := range m.Permissions {
		if !slices.Equal(p.Roles, []string{accounts.RoleOperator}) {
			t.Fatalf("%s held by %v", p.Name, p.Roles)
		}
	}
	if len(m.Consumers) != 1 || !regexp.MustCompile(`^[a-z0-9_-]+$`).MatchString(m.Consumers[0].Name) {
		t.Fatalf("consumers %+v", m.Consumers)
	}
}

// TestMixedBatch: reservations, a PUT, a commit, a release and a refused
// unit of one SKU in one transaction: each unit is decided on the state
// the earlier ones left, the refused one leaves nothing, and the row is
// written by one UPDATE.
func TestMixedBatch(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.setStock("MIX", "", 10)
		for _, ref := range []string{"m-paid", "m-cancelled"} {
			if _, err := e.svc.Reserve(ctx, ref, "", []Line{{SKU: "MIX", Quantity: 2}}, 0); err != nil {
				t.Fatal(err)
			}
		}
		reserve := func(ref string, q int64) sqldb.Unit {
			return sqldb.Unit{Run: func(tx *sqldb.Tx) error {
				_, err := e.svc.ReserveTx(ctx, tx, ref, "", []Line{{SKU: "MIX", Quantity: q}}, 0)
				return err
			}}
		}
		units := []sqldb.Unit{
			reserve("m-1", 3), // 6 available → 3
			{Run: func(tx *sqldb.Tx) error { _, err := e.svc.SetStockTx(ctx, tx, "MIX", "", 8, e.opID); return err }}, // 8-7 = 1
			reserve("m-2", 2), // refused: 1 available
			{Run: func(tx *sqldb.Tx) error { return e.svc.CommitTx(ctx, tx, "m-paid") }},       // on_hand 6, reserved 5
			{Run: func(tx *sqldb.Tx) error { return e.svc.ReleaseTx(ctx, tx, "m-cancelled") }}, // reserved 3: 3 available
			reserve("m-3", 3), // 0 available
			{Run: func(tx *sqldb.Tx) error { _, err := e.svc.SetStockTx(ctx, tx, "MIX", "", 5, e.opID); return err }}, // refused: below 6 reserved
		}
		res := e.db.RunBatch(ctx, sqldb.Batch{Units: units})
		for i, want := range []errs.Code{"", "", errs.CodeOutOfStock, "", "", "", CodeBelowReserved} {
			got := res.Outcomes[i]
			if want == "" && got != nil || want != "" && errs.CodeOf(got) != want {
				t.Fatalf("unit %d: %v, want %q", i, got, want)
			}
		}
		if lv := e.level("MIX"); lv.OnHand != 6 || lv.Reserved != 6 || lv.Available != 0 {
			t.Fatalf("level %+v, want on_hand 6, reserved 6", lv)
		}
		e.checkInvariant()
		fs := e.flushes.of("MIX")
		if last := fs[len(fs)-1]; last.Updates != 1 || last.Available != 0 {
			t.Fatalf("the batch's flush %+v, want one UPDATE leaving nothing", last)
		}
		if err := e.svc.Precheck([]Line{{SKU: "MIX", Quantity: 1}}); !errors.Is(err, ErrOutOfStock) {
			t.Fatalf("sold out after the batch: %v", err)
		}
	})
}

// TestReturn: returned units go back on hand with a return ledger row and
// let a sold-out SKU be reserved again.
func TestReturn(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.setStock("RET", "", 2)
		if _, err := e.svc.Reserve(ctx, "ret-1", "", []Line{{SKU: "RET", Quantity: 2}}, 0); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Commit(ctx, "ret-1"); err != nil {
			t.Fatal(err)
		}
		before := e.snapshot()
		for _, bad := range [][]ReservedLine{nil, {{"RET", "nowhere", 1}}, {{"RET", "default", 0}}, {{"bad sku", "default", 1}}} {
			if err := e.db.Do(ctx, func(tx *sqldb.Tx) error { return e.svc.ReturnTx(ctx, tx, "ret-1", bad) }); errs.CodeOf(err) != errs.CodeValidation {
				t.Fatalf("ReturnTx(%v) = %v", bad, err)
			}
		}
		e.assertUnchanged(before)
		if err := e.svc.Precheck([]Line{{SKU: "RET", Quantity: 1}}); !errors.Is(err, ErrOutOfStock) {
			t.Fatalf("sold out: %v", err)
		}
		if err := e.write.Do(ctx, func(tx *sqldb.Tx) error {
			return e.svc.ReturnTx(ctx, tx, "ret-1", []ReservedLine{{"RET", "default", 1}})
		}); err != nil {
			t.Fatal(err)
		}
		if lv := e.level("RET"); lv.OnHand != 1 || lv.Available != 1 {
			t.Fatalf("level %+v", lv)
		}
		if n := e.count("inventory_ledger", "reason = 'return' AND reference = 'ret-1' AND on_hand_delta = 1"); n != 1 {
			t.Fatalf("%d return rows", n)
		}
		if _, err := e.svc.Reserve(ctx, "ret-2", "", []Line{{SKU: "RET", Quantity: 1}}, 0); err != nil {
			t.Fatalf("after the return: %v", err)
		}
	})
}

// allocatorFunc adapts a function to Allocator.
type allocatorFunc func(sku string, qty int64, stock []LocationStock) ([]Allocation, bool)

func (f allocatorFunc) Allocate(sku string, qty int64, stock []LocationStock) ([]Allocation, bool) {
	return f(sku, qty, stock)
}

// TestPluggableAllocator: Config.Allocator decides where units come from;
// an answer breaking its contract fails the unit (Internal) and writes
// nothing.
func TestPluggableAllocator(t *testing.T) {
	lowestCode := allocatorFunc(func(_ string, qty int64, stock []LocationStock) ([]Allocation, bool) {
		for _, l := range stock { // sorted by code
			if l.Available >= qty {
				return []Allocation{{l.Location, qty}}, true
			}
		}
		return nil, false
	})
	greedy := allocatorFunc(func(_ string, qty int64, stock []LocationStock) ([]Allocation, bool) {
		return []Allocation{{stock[0].Location, qty}}, true // ignores what is available
	})
	var alloc Allocator = lowestCode
	forEachEngine(t, Config{Allocator: allocatorFunc(func(sku string, qty int64, stock []LocationStock) ([]Allocation, bool) {
		return alloc.Allocate(sku, qty, stock)
	})}, func(t *testing.T, e *env) {
		ctx := context.Background()
		alloc = lowestCode
		if err := e.write.Do(ctx, func(tx *sqldb.Tx) error {
			_, err := e.svc.CreateLocationTx(ctx, tx, LocationRequest{Code: "aaa", Name: "A"}, e.opID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		e.setStock("AL", "aaa", 2)
		e.setStock("AL", "", 9)
		r, err := e.svc.Reserve(ctx, "al-1", "", []Line{{SKU: "AL", Quantity: 2}}, 0)
		if err != nil || !slices.Equal(r.Lines, []ReservedLine{{"AL", "aaa", 2}}) {
			t.Fatalf("Reserve = %+v, %v; want the lowest code first", r.Lines, err)
		}
		alloc = greedy
		before := e.snapshot()
		if _, err := e.svc.Reserve(ctx, "al-2", "", []Line{{SKU: "AL", Quantity: 1}}, 0); errs.KindOf(err) != errs.Internal {
			t.Fatalf("a contract-breaking allocator: %v", err)
		}
		e.assertUnchanged(before)
		e.checkInvariant()
	})
}

// TestCheckConstraints: the database itself refuses stock that breaks the
// invariants, on both engines, whatever the code above it does.
func TestCheckConstraints(t *testing.T) {
	forEachEngine(t, Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.setStock("CK", "", 5)
		for _, c := range []struct{ name, set string }{
			{"on_hand below zero", "on_hand = -1, reserved = 0"},
			{"reserved below zero", "reserved = -1"},
			{"reserved over on_hand", "reserved = on_hand + 1"},
		} {
			t.Run(c.name, func(t *testing.T) {
				err := e.db.InTx(ctx, func(tx *sqldb.Tx) error {
					_, err := tx.ExecContext(ctx, `UPDATE inventory_stock SET `+c.set+` WHERE sku = 'CK'`)
					return err
				})
				if err == nil {
					t.Fatal("the database accepted it")
				}
			})
		}
		for _, q := range []string{
			`INSERT INTO inventory_reservation_lines (ref, sku, location, quantity) VALUES ('nope', 'CK', 'default', 1)`,
			`INSERT INTO inventory_customer_units (customer_id, sku, units) VALUES ('c', 'CK', -1)`,
			`INSERT INTO inventory_ledger (sku, location, reason, reference, on_hand_delta, reserved_delta, created_at) VALUES ('CK', 'default', 'theft', '', 0, 0, 0)`,
			`INSERT INTO inventory_stock (sku, location, on_hand, updated_at) VALUES ('CK2', 'mars', 1, 0)`,
		} {
			if err := e.db.InTx(ctx, func(tx *sqldb.Tx) error { _, err := tx.ExecContext(ctx, q); return err }); err == nil {
				t.Errorf("accepted: %s", q)
			}
		}
		if lv := e.level("CK"); lv.OnHand != 5 || lv.Reserved != 0 {
			t.Fatalf("level %+v", lv)
		}
	})
}
