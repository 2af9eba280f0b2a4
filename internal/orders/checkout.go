package orders

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
)

// Address is a shipping address.
type Address struct {
	Name       string `json:"name" maxlen:"200"`
	Line1      string `json:"line1" maxlen:"200"`
	Line2      string `json:"line2,omitempty" maxlen:"200"`
	City       string `json:"city" maxlen:"100"`
	Region     string `json:"region" maxlen:"100"`
	PostalCode string `json:"postal_code" maxlen:"20"`
	Country    string `json:"country" maxlen:"2" doc:"ISO 3166-1 alpha-2, upper case."`
	Phone      string `json:"phone,omitempty" maxlen:"40"`
}

// validate adds a's problems to v under prefix.
func (a Address) validate(v *errs.Validation, prefix string) {
	req := func(field, val string) { v.Check(strings.TrimSpace(val) != "", prefix+"."+field, "is required") }
	req("name", a.Name)
	req("line1", a.Line1)
	req("city", a.City)
	req("region", a.Region)
	req("postal_code", a.PostalCode)
	v.Check(len(a.Country) == 2 && a.Country[0] >= 'A' && a.Country[0] <= 'Z' && a.Country[1] >= 'A' && a.Country[1] <= 'Z',
		prefix+".country", "must be an ISO 3166-1 alpha-2 code in upper case")
}

// CheckoutRequest is POST /api/v1/carts/{id}/checkout's body.
type CheckoutRequest struct {
	ShippingAddress *Address  `json:"shipping_address"`
	ShippingMethod  string    `json:"shipping_method,omitempty" maxlen:"40" doc:"standard (the default)."`
	Identity        *Identity `json:"identity,omitempty" doc:"Where a region requires it (422 identity_required without it)."`
	CouponCodes     []string  `json:"coupon_codes,omitempty" maxlen:"64" doc:"Coupon codes applied with those entered on the cart (trimmed, case-insensitive, each once): at most 5 here and 5 in all, each 1 to 64 characters."`
}

func (in CheckoutRequest) validate() error {
	const op = "orders.Checkout"
	if len(in.CouponCodes) > MaxCoupons {
		return errs.E(op, errs.Invalid, errs.CodeLimitExceeded, "a checkout applies at most 5 coupon codes",
			[]errs.FieldError{{Field: "coupon_codes", Message: "must hold at most 5 codes"}})
	}
	var v errs.Validation
	for i, code := range in.CouponCodes {
		code = normCoupon(code)
		v.Check(code != "" && len(code) <= MaxCouponLen, "coupon_codes."+strconv.Itoa(i), "must be 1 to 64 characters")
	}
	if in.ShippingAddress == nil {
		v.Add("shipping_address", "is required")
	} else {
		in.ShippingAddress.validate(&v, "shipping_address")
	}
	if in.Identity != nil {
		in.Identity.validate(&v)
	}
	return v.Err(op)
}

// Order is an order document (API.md).
type Order struct {
	ID                string            `json:"id"`
	Number            string            `json:"number"`
	Status            Status            `json:"status"`
	PaymentStatus     PaymentStatus     `json:"payment_status"`
	FulfillmentStatus FulfillmentStatus `json:"fulfillment_status"`
	Channel           string            `json:"channel"`
	CustomerID        *string           `json:"customer_id" doc:"null for a guest's order."`
	Currency          string            `json:"currency"`
	Lines             []OrderLine       `json:"lines"`
	Subtotal          money.Money       `json:"subtotal"`
	Discount          money.Money       `json:"discount"`
	Shipping          money.Money       `json:"shipping"`
	Tax               money.Money       `json:"tax"`
	Total             money.Money       `json:"total"`
	ShippingMethod    string            `json:"shipping_method"`
	ShippingAddress   Address           `json:"shipping_address"`
	Version           int64             `json:"version"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
	ExpiresAt         *time.Time        `json:"expires_at,omitempty" doc:"While pending_payment: when the order expires."`
	PricedWith        *PricedWith       `json:"priced_with,omitempty" doc:"The promotions, rate tables and region rules (with versions) priced and checked."`
	Identity          *StoredIdentity   `json:"identity,omitempty" doc:"Masked: the number's last 4 only."`

	cartID    string
	tokenHash string
	expiresAt time.Time
}

// OrderLine is one line of an order as priced at checkout.
type OrderLine struct {
	SKU       string      `json:"sku"`
	ProductID string      `json:"product_id"`
	Title     string      `json:"title"`
	Quantity  int         `json:"quantity"`
	UnitPrice money.Money `json:"unit_price"`
	Total     money.Money `json:"total"`
	Breakdown Breakdown   `json:"breakdown"`
}

func (o Order) customer() string {
	if o.CustomerID == nil {
		return ""
	}
	return *o.CustomerID
}

// CheckoutTx turns cart id into an order in tx: it validates the request,
// quotes the cart from the catalog with the coupon codes entered on the
// cart and those of in (checkoutCoupons), reserves every line (all or nothing),
// marks the cart checked out, writes the order with its lines and their
// breakdown, and appends order.placed. A shortage is the inventory's 409
// out_of_stock; any failure leaves nothing written (the unit rolls back).
func (s *Service) CheckoutTx(ctx context.Context, tx *sqldb.Tx, caller Caller, id string, in CheckoutRequest) (Order, error) {
	const op = "orders.Checkout"
	if err := in.validate(); err != nil {
		return Order{}, err
	}
	if in.ShippingMethod == "" {
		in.ShippingMethod = "standard"
	}
	c, err := loadCartTx(ctx, tx, caller, id)
	if err != nil {
		return Order{}, err
	}
	if err := c.open(); err != nil {
		return Order{}, err
	}
	if len(c.lines) == 0 {
		return Order{}, errs.E(op, errs.Invalid, errs.Code("cart_empty"), "the cart is empty",
			[]errs.FieldError{{Field: "lines", Message: "add at least one item"}})
	}
	codes, err := in.coupons(c)
	if err != nil {
		return Order{}, err
	}
	q, err := s.strictQuoteTx(ctx, tx, c, quoteArgs{caller: caller, method: in.ShippingMethod, address: in.ShippingAddress, coupons: codes.all})
	if err != nil {
		return Order{}, err
	}
	if err := codes.refused(op, q); err != nil {
		return Order{}, err
	}
	o := Order{ID: event.NewID(), Status: StatusPendingPayment, PaymentStatus: PaymentUnpaid,
		FulfillmentStatus: FulfillmentUnfulfilled, Channel: caller.Channel, Currency: q.Currency,
		Subtotal: q.Subtotal, Discount: q.Discount, Shipping: q.Shipping, Tax: q.Tax, Total: q.Total,
		ShippingMethod: q.ShippingMethod, ShippingAddress: *in.ShippingAddress, Version: 1,
		CreatedAt: tx.Now, UpdatedAt: tx.Now, cartID: c.id, tokenHash: c.tokenHash,
		expiresAt: tx.Now.Add(s.cfg.ReservationTTL)}
	if o.Channel == "" {
		o.Channel = "web"
	}
	o.Number = orderNumber(tx.Now)
	priced := pricedWith(q, codes.all)
	o.PricedWith = &priced
	if in.Identity != nil {
		id := in.Identity.stored(s.cfg.IdentityKey)
		o.Identity = &id
	}
	if s.rules != nil {
		v, err := s.rules.CountTx(ctx, tx, o.ID, regionCheck(c, q, in.ShippingAddress, in.Identity != nil))
		if err != nil {
			return Order{}, errs.E(op, err)
		}
		o.PricedWith.RulesVersion = v
	}
	if s.promos != nil && len(q.Promotions) > 0 {
		if err := s.promos.RedeemTx(ctx, tx, o.ID, c.customerID, q.Promotions); err != nil {
			return Order{}, errs.E(op, err)
		}
	}
	if c.customerID != "" {
		cust := c.customerID
		o.CustomerID = &cust
	}
	stock := make([]StockLine, len(q.Lines))
	for i, l := range q.Lines {
		stock[i] = StockLine{SKU: l.SKU, Quantity: l.Quantity}
		o.Lines = append(o.Lines, OrderLine{SKU: l.SKU, ProductID: l.ProductID, Title: l.Title, Quantity: l.Quantity,
			UnitPrice: l.Price, Total: l.Total, Breakdown: l.breakdown(q.TaxInclusive)})
	}
	if err := s.stock.ReserveTx(ctx, tx, o.ID, c.customerID, stock, s.cfg.ReservationTTL); err != nil {
		return Order{}, errs.E(op, err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE orders_carts SET status = 'checked_out', updated_at = $1
		WHERE id = $2 AND status = 'open'`, sqldb.Micros(tx.Now), c.id)
	if err != nil {
		return Order{}, errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return Order{}, errs.E(op, errs.Conflict, errs.Code("cart_checked_out"), "this cart was checked out; start a new one")
	}
	if err := insertOrder(ctx, tx, &o); err != nil {
		return Order{}, err
	}
	data := PlacedData{OrderID: o.ID, Number: o.Number, CustomerID: c.customerID, Channel: o.Channel,
		Currency: o.Currency, Total: o.Total.Amount(), ExpiresAt: o.expiresAt.Format(time.RFC3339Nano)}
	for _, l := range o.Lines {
		data.Lines = append(data.Lines, EventLine{SKU: l.SKU, Quantity: l.Quantity, UnitPrice: l.UnitPrice.Amount()})
	}
	ev, err := OrderPlaced.New(o.ID, tx.Now, data)
	if err := emit(ctx, tx, ev, err); err != nil {
		return Order{}, err
	}
	o.show()
	return o, nil
}

// show sets the fields a document derives from the stored ones.
func (o *Order) show() {
	o.ExpiresAt = nil
	if o.Status == StatusPendingPayment && !o.expiresAt.IsZero() {
		t := o.expiresAt
		o.ExpiresAt = &t
	}
	if o.Lines == nil {
		o.Lines = []OrderLine{}
	}
}

// orderNumber is a human order number: the UTC date, then 12 Crockford
// base-32 characters of the millisecond of the day (27 bits, so numbers
// sort by time within a day) and 33 random bits. Two orders share a number
// only when placed in the same millisecond with the same random bits (about
// one in 8.6 billion per pair; the UNIQUE constraint refuses the second);
// no counter row is contended.
func orderNumber(now time.Time) string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var rb [8]byte
	rand.Read(rb[:])
	day := now.UTC().Truncate(24 * time.Hour)
	ms := uint64(now.UTC().Sub(day) / time.Millisecond)
	v := ms<<33 | binary.BigEndian.Uint64(rb[:])&(1<<33-1)
	b := make([]byte, 0, 21)
	b = now.UTC().AppendFormat(b, "20060102")
	b = append(b, '-')
	for i := 11; i >= 0; i-- {
		b = append(b, alphabet[(v>>(5*uint(i)))&31])
	}
	return string(b)
}

// insertOrder writes o and its lines (two statements).
func insertOrder(ctx context.Context, tx *sqldb.Tx, o *Order) error {
	const op = "orders.insert"
	addr, err := json.Marshal(o.ShippingAddress)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	var priced, identity, identityHash any
	tax := o.Tax.Amount()
	if o.PricedWith != nil {
		b, _ := json.Marshal(o.PricedWith)
		priced = string(b)
		if o.PricedWith.TaxInclusive {
			tax = 0 // the row's tax is what is added on top; the included tax is in pricing
		}
	}
	if o.Identity != nil {
		b, _ := json.Marshal(o.Identity)
		identity, identityHash = string(b), o.Identity.Hash
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO orders_orders (id, number, cart_id, customer_id, token_hash, channel,
		status, payment_status, fulfillment_status, currency, subtotal, discount, shipping, tax, total,
		shipping_method, shipping_address, version, created_at, updated_at, expires_at, pricing, identity, identity_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 1, $18, $18, $19, $20, $21, $22)`,
		o.ID, o.Number, o.cartID, nullable(o.customer()), nullable(o.tokenHash), o.Channel,
		string(o.Status), string(o.PaymentStatus), string(o.FulfillmentStatus), o.Currency,
		o.Subtotal.Amount(), o.Discount.Amount(), o.Shipping.Amount(), tax, o.Total.Amount(),
		o.ShippingMethod, string(addr), sqldb.Micros(o.CreatedAt), sqldb.Micros(o.expiresAt), priced, identity, identityHash); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO orders_lines (order_id, line_no, sku, product_id, title, quantity, unit_price, total, breakdown) VALUES `)
	args := make([]any, 0, 9*len(o.Lines))
	for i, l := range o.Lines {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for j := 1; j <= 9; j++ {
			if j > 1 {
				b.WriteString(", ")
			}
			b.WriteString("$")
			b.WriteString(strconv.Itoa(9*i + j))
		}
		b.WriteString(")")
		bd, _ := json.Marshal(l.Breakdown)
		args = append(args, o.ID, i+1, l.SKU, l.ProductID, l.Title, l.Quantity, l.UnitPrice.Amount(), l.Total.Amount(), string(bd))
	}
	if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	return nil
}
