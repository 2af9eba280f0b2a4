package orders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"
	"time"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
)

// Import is an order a sales channel took and charged on its own (a
// marketplace, a point of sale): its lines carry the channel's prices,
// recorded as given.
type Import struct {
	Channel    string       // the channel's code (the order's channel)
	ExternalID string       // the channel's own order id
	Lines      []ImportLine // at least one
	Customer   ImportCustomer
	Address    Address
}

// ImportLine is one line of an imported order at the channel's price.
type ImportLine struct {
	SKU       string      `json:"sku" maxlen:"64"`
	Quantity  int         `json:"quantity" doc:"1 to 10000."`
	UnitPrice money.Money `json:"unit_price" doc:"What the channel charged per unit (not negative); every line in one currency."`
}

// ImportCustomer is the buyer as the channel names them.
type ImportCustomer struct {
	Email string `json:"email" maxlen:"254"`
	Name  string `json:"name" maxlen:"200"`
}

// MaxImportLines bounds an imported order's lines.
const MaxImportLines = 100

// validate checks in; field names are the channel API's (lines[i].…).
func (in Import) validate() error {
	var v errs.Validation
	v.Check(strings.TrimSpace(in.ExternalID) != "", "external_id", "is required")
	v.Check(len(in.Lines) >= 1 && len(in.Lines) <= MaxImportLines, "lines", "must hold 1 to "+strconv.Itoa(MaxImportLines)+" lines")
	seen := map[string]bool{}
	cur := ""
	for i, l := range in.Lines {
		p := "lines[" + strconv.Itoa(i) + "]"
		v.Check(strings.TrimSpace(l.SKU) != "", p+".sku", "is required")
		v.Check(!seen[l.SKU], p+".sku", "appears on another line")
		seen[l.SKU] = true
		v.Check(l.Quantity >= 1 && l.Quantity <= 10000, p+".quantity", "must be 1 to 10000")
		switch {
		case l.UnitPrice.Currency() == "":
			v.Add(p+".unit_price", "is required")
		case l.UnitPrice.IsNegative():
			v.Add(p+".unit_price", "must not be negative")
		case cur != "" && l.UnitPrice.Currency() != cur:
			v.Add(p+".unit_price", "must be in the currency of the other lines ("+cur+")")
		default:
			cur = l.UnitPrice.Currency()
		}
	}
	v.Check(strings.Contains(in.Customer.Email, "@"), "customer.email", "must be an e-mail address")
	v.Check(strings.TrimSpace(in.Customer.Name) != "", "customer.name", "is required")
	in.Address.validate(&v, "shipping_address")
	return v.Err("orders.Import")
}

// ImportTx writes the channel's order in in tx: it validates in, checks
// every SKU against the catalog (an unknown or unsellable SKU is 422
// unknown_sku / not_sellable, nothing reserved), reserves every line from
// the shared pool (all or nothing; a shortage is 409 out_of_stock), writes
// the order at the channel's prices (no discount, shipping or tax of ours)
// and appends order.placed with the channel; then, since the channel has
// charged the buyer, it moves the order to paid (order.paid, method
// "channel:<code>"), on which the inventory commits the reservation.
//
// ImportTx does not de-duplicate: the order's cart_id is
// "import:<sha256(channel, external_id)>", UNIQUE, so a second import of
// one (channel, external_id) fails the unit; the caller (the channels
// module) looks its own record up first.
func (s *Service) ImportTx(ctx context.Context, tx *sqldb.Tx, in Import) (Order, error) {
	const op = "orders.Import"
	if in.Channel == "" {
		return Order{}, errs.E(op, errs.Invalid, "a channel is required")
	}
	if err := in.validate(); err != nil {
		return Order{}, err
	}
	skus := make([]string, len(in.Lines))
	for i, l := range in.Lines {
		skus[i] = l.SKU
	}
	vs, err := s.catalog.VariantsTx(ctx, tx, skus)
	if err != nil {
		return Order{}, errs.E(op, err)
	}
	var v errs.Validation
	for i, l := range in.Lines {
		p := "lines[" + strconv.Itoa(i) + "].sku"
		if vr, ok := vs[l.SKU]; !ok {
			v.Add(p, "the catalog has no such SKU")
		} else if !vr.Sellable {
			v.Add(p, "is not for sale")
		}
	}
	if len(v.Fields) > 0 {
		return Order{}, errs.E(op, errs.Invalid, errs.Code("unknown_sku"), "a line names a SKU the catalog does not sell", v.Fields)
	}
	cur := in.Lines[0].UnitPrice.Currency()
	subtotal := money.Zero(cur)
	o := Order{ID: event.NewID(), Status: StatusPendingPayment, PaymentStatus: PaymentUnpaid,
		FulfillmentStatus: FulfillmentUnfulfilled, Channel: in.Channel, Currency: cur,
		Discount: money.Zero(cur), Shipping: money.Zero(cur), Tax: money.Zero(cur),
		ShippingMethod: "channel", ShippingAddress: in.Address, Version: 1, CreatedAt: tx.Now, UpdatedAt: tx.Now,
		cartID: importRef(in.Channel, in.ExternalID), tokenHash: importRef(in.Channel, in.ExternalID)}
	o.Number = orderNumber(tx.Now)
	stock := make([]StockLine, len(in.Lines))
	for i, l := range in.Lines {
		total, err := l.UnitPrice.Mul(int64(l.Quantity))
		if err == nil {
			subtotal, err = subtotal.Add(total)
		}
		if err != nil {
			return Order{}, errs.E(op, errs.Invalid, errs.CodeValidation, "the order's total is out of range",
				[]errs.FieldError{{Field: "lines[" + strconv.Itoa(i) + "].unit_price", Message: "the total is out of range"}})
		}
		vr := vs[l.SKU]
		stock[i] = StockLine{SKU: l.SKU, Quantity: l.Quantity}
		o.Lines = append(o.Lines, OrderLine{SKU: l.SKU, ProductID: vr.ProductID, Title: vr.Title, Quantity: l.Quantity,
			UnitPrice: l.UnitPrice, Total: total, Breakdown: Breakdown{UnitPrice: l.UnitPrice.Amount(), Quantity: l.Quantity,
				Subtotal: total.Amount(), Total: total.Amount(), TaxClass: vr.TaxClass}})
	}
	o.Subtotal, o.Total = subtotal, subtotal
	sort.SliceStable(stock, func(i, j int) bool { return stock[i].SKU < stock[j].SKU })
	if err := s.stock.ReserveTx(ctx, tx, o.ID, "", stock, s.cfg.ReservationTTL); err != nil {
		return Order{}, errs.E(op, err)
	}
	if err := insertOrder(ctx, tx, &o); err != nil {
		return Order{}, err
	}
	data := PlacedData{OrderID: o.ID, Number: o.Number, Channel: o.Channel, Currency: o.Currency, Total: o.Total.Amount(),
		ExpiresAt: tx.Now.Add(s.cfg.ReservationTTL).UTC().Format(time.RFC3339Nano)}
	for _, l := range o.Lines {
		data.Lines = append(data.Lines, EventLine{SKU: l.SKU, Quantity: l.Quantity, UnitPrice: l.UnitPrice.Amount()})
	}
	ev, err := OrderPlaced.New(o.ID, tx.Now, data)
	if err := emit(ctx, tx, ev, err); err != nil {
		return Order{}, err
	}
	paid, err := s.MarkPaidTx(ctx, tx, o.ID, "channel:"+in.Channel)
	if err != nil {
		return Order{}, err
	}
	paid.show()
	return paid, nil
}

// importRef is an imported order's cart_id and token_hash: no cart and no
// guest token has it (a token hash is 64 hex digits), and it is unique per
// (channel, external_id).
func importRef(channel, externalID string) string {
	sum := sha256.Sum256([]byte(channel + "\x00" + externalID))
	return "import:" + hex.EncodeToString(sum[:])
}
