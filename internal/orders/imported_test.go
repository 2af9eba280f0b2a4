package orders

import (
	"context"
	"errors"
	"testing"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

func TestImportTx(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		addr := Address{Name: "Bea", Line1: "1 Quay St", City: "Leith", Region: "Edinburgh", PostalCode: "EH6 6AA", Country: "GB"}
		cust := ImportCustomer{Email: "bea@example.com", Name: "Bea"}
		l := func(sku string, qty int, m money.Money) ImportLine {
			return ImportLine{SKU: sku, Quantity: qty, UnitPrice: m}
		}
		run := func(in Import) (Order, error) {
			var o Order
			err := e.db.InTx(context.Background(), func(tx *sqldb.Tx) (err error) { o, err = e.svc.ImportTx(context.Background(), tx, in); return err })
			return o, err
		}
		for _, tc := range []struct {
			name  string
			in    Import
			code  string
			field string
		}{
			{"negative price", Import{Lines: []ImportLine{l("TEE-M", 1, usd(-1))}}, "validation_failed", "lines[0].unit_price"},
			{"no price", Import{Lines: []ImportLine{{SKU: "TEE-M", Quantity: 1}}}, "validation_failed", "lines[0].unit_price"},
			{"two currencies", Import{Lines: []ImportLine{l("TEE-M", 1, usd(1)), l("MUG", 1, money.MustNew(1, "EUR"))}}, "validation_failed", "lines[1].unit_price"},
			{"a SKU twice", Import{Lines: []ImportLine{l("TEE-M", 1, usd(1)), l("TEE-M", 1, usd(1))}}, "validation_failed", "lines[1].sku"},
			{"too many units", Import{Lines: []ImportLine{l("TEE-M", 10001, usd(1))}}, "validation_failed", "lines[0].quantity"},
			{"unknown SKU", Import{Lines: []ImportLine{l("TEE-M", 1, usd(1)), l("NOPE", 1, usd(1))}}, "unknown_sku", "lines[1].sku"},
			{"not for sale", Import{Lines: []ImportLine{l("OLD", 1, usd(1))}}, "unknown_sku", "lines[0].sku"},
			{"shortage", Import{Lines: []ImportLine{l("MUG", 4, usd(1))}}, "out_of_stock", ""},
			{"bad address", Import{Lines: []ImportLine{l("MUG", 1, usd(1))}, Address: Address{Country: "gb"}}, "validation_failed", "shipping_address.country"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				in := tc.in
				in.Channel, in.ExternalID, in.Customer = "amazon", "X-"+tc.name, cust
				if in.Address == (Address{}) {
					in.Address = addr
				}
				_, err := run(in)
				var ee *errs.Error
				if !errors.As(err, &ee) || ee.Code != tc.code {
					t.Fatalf("err %v, want code %s", err, tc.code)
				}
				if tc.field != "" && !hasField(ee.Fields, tc.field) {
					t.Fatalf("fields %+v, want %s", ee.Fields, tc.field)
				}
			})
		}
		if e.stock("TEE-M") != 10 || e.stock("MUG") != 3 {
			t.Fatalf("a refused import reserved: TEE-M %d, MUG %d", e.stock("TEE-M"), e.stock("MUG"))
		}
		o, err := run(Import{Channel: "amazon", ExternalID: "A-1", Customer: cust, Address: addr,
			Lines: []ImportLine{l("TEE-M", 2, usd(999)), l("MUG", 1, usd(0))}})
		if err != nil {
			t.Fatal(err)
		}
		if o.Channel != "amazon" || o.Status != StatusPaid || o.Total.Amount() != 1998 || o.Lines[0].UnitPrice.Amount() != 999 || o.ExpiresAt != nil {
			t.Fatalf("order %+v", o)
		}
		if e.stock("TEE-M") != 8 || e.stock("MUG") != 2 {
			t.Fatalf("stock TEE-M %d, MUG %d", e.stock("TEE-M"), e.stock("MUG"))
		}
		// The same (channel, external_id) is refused by the order's UNIQUE cart_id: nothing twice.
		if _, err := run(Import{Channel: "amazon", ExternalID: "A-1", Customer: cust, Address: addr,
			Lines: []ImportLine{l("MUG", 1, usd(1))}}); err == nil || e.stock("MUG") != 2 {
			t.Fatalf("second import of one external id: %v, MUG %d", err, e.stock("MUG"))
		}
	})
}

func hasField(fs []errs.FieldError, f string) bool {
	for _, x := range fs {
		if x.Field == f {
			return true
		}
	}
	return false
}
