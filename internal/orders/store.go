package orders

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// querier is what reads run on: a unit's *sqldb.Tx or the reader pool.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

const orderCols = `id, number, cart_id, customer_id, token_hash, channel, status, payment_status, fulfillment_status,
	currency, subtotal, discount, shipping, tax, total, shipping_method, shipping_address, version,
	created_at, updated_at, expires_at, pricing, identity`

type scanner interface{ Scan(dest ...any) error }

// orderColsOf is orderCols qualified by a table alias.
func orderColsOf(alias string) string {
	cols := strings.Split(orderCols, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// scanOrder scans orderCols, then extra (columns selected after them).
func scanOrder(sc scanner, extra ...any) (Order, error) {
	var o Order
	var cust, tok sql.NullString
	var status, pay, ful, addr string
	var sub, disc, ship, tax, tot, created, updated int64
	var exp sql.NullInt64
	var priced, identity *string
	if err := sc.Scan(append([]any{&o.ID, &o.Number, &o.cartID, &cust, &tok, &o.Channel, &status, &pay, &ful, &o.Currency,
		&sub, &disc, &ship, &tax, &tot, &o.ShippingMethod, &addr, &o.Version, &created, &updated, &exp, &priced, &identity}, extra...)...); err != nil {
		return Order{}, err
	}
	if cust.Valid {
		c := cust.String
		o.CustomerID = &c
	}
	o.tokenHash = tok.String
	o.Status, o.PaymentStatus, o.FulfillmentStatus = Status(status), PaymentStatus(pay), FulfillmentStatus(ful)
	var err error
	m := func(v int64) money.Money {
		x, e := money.New(v, o.Currency)
		if e != nil && err == nil {
			err = e
		}
		return x
	}
	o.Subtotal, o.Discount, o.Shipping, o.Tax, o.Total = m(sub), m(disc), m(ship), m(tax), m(tot)
	if err != nil {
		return Order{}, err
	}
	if err := json.Unmarshal([]byte(addr), &o.ShippingAddress); err != nil {
		return Order{}, err
	}
	o.CreatedAt, o.UpdatedAt = sqldb.FromMicros(created), sqldb.FromMicros(updated)
	o.expiresAt = sqldb.NullMicros(exp)
	if err := o.applyPricing(priced, identity); err != nil {
		return Order{}, err
	}
	return o, nil
}

// readOrder reads order id with its lines in one statement (the order's
// columns repeated on each of its few lines; lines never change after
// checkout); missing is NotFound. It is getOrder and withLines in one.
func readOrder(ctx context.Context, q querier, id string) (Order, error) {
	const op = "orders.read"
	rows, err := q.QueryContext(ctx, `SELECT `+orderColsOf("o")+`,
		l.sku, l.product_id, l.title, l.quantity, l.unit_price, l.total, l.breakdown
		FROM orders_orders o LEFT JOIN orders_lines l ON l.order_id = o.id WHERE o.id = $1 ORDER BY l.line_no`, id)
	if err != nil {
		return Order{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	var o Order
	found := false
	for rows.Next() {
		var sku, product, title, bd sql.NullString
		var qty, up, tot sql.NullInt64
		row, err := scanOrder(rows, &sku, &product, &title, &qty, &up, &tot, &bd)
		if err != nil {
			return Order{}, errs.E(op, errs.Internal, err)
		}
		if !found {
			o, found = row, true
		}
		if !sku.Valid { // an order without lines
			continue
		}
		l, err := o.line(sku.String, product.String, title.String, int(qty.Int64), up.Int64, tot.Int64, bd.String)
		if err != nil {
			return Order{}, errs.E(op, errs.Internal, err)
		}
		o.Lines = append(o.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return Order{}, errs.E(op, errs.Internal, err)
	}
	if !found {
		return Order{}, errs.E(op, errs.NotFound, "no such order")
	}
	o.show()
	return o, nil
}

// line makes one of o's lines from its stored columns.
func (o *Order) line(sku, productID, title string, qty int, unitPrice, total int64, breakdown string) (OrderLine, error) {
	l := OrderLine{SKU: sku, ProductID: productID, Title: title, Quantity: qty}
	var err error
	if l.UnitPrice, err = money.New(unitPrice, o.Currency); err != nil {
		return OrderLine{}, err
	}
	if l.Total, err = money.New(total, o.Currency); err != nil {
		return OrderLine{}, err
	}
	if err := json.Unmarshal([]byte(breakdown), &l.Breakdown); err != nil {
		return OrderLine{}, err
	}
	return l, nil
}

// getOrder reads order id without its lines; missing is NotFound.
func getOrder(ctx context.Context, q querier, id string) (Order, error) {
	const op = "orders.get"
	o, err := scanOrder(q.QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders_orders WHERE id = $1`, id))
	if isNoRows(err) {
		return Order{}, errs.E(op, errs.NotFound, "no such order")
	}
	if err != nil {
		return Order{}, errs.E(op, errs.Internal, err)
	}
	return o, nil
}

// withLines fills the lines of orders (one statement) and their derived
// fields.
func withLines(ctx context.Context, q querier, orders []Order) error {
	const op = "orders.lines"
	if len(orders) == 0 {
		return nil
	}
	idx := make(map[string]int, len(orders))
	var b strings.Builder
	args := make([]any, len(orders))
	b.WriteString(`SELECT order_id, sku, product_id, title, quantity, unit_price, total, breakdown FROM orders_lines WHERE order_id IN (`)
	for i, o := range orders {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + itoa(i+1))
		args[i] = o.ID
		idx[o.ID] = i
		orders[i].Lines = []OrderLine{}
	}
	b.WriteString(`) ORDER BY order_id, line_no`)
	rows, err := q.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	for rows.Next() {
		var oid, sku, product, title, bd string
		var qty int
		var up, tot int64
		if err := rows.Scan(&oid, &sku, &product, &title, &qty, &up, &tot, &bd); err != nil {
			return errs.E(op, errs.Internal, err)
		}
		o := &orders[idx[oid]]
		l, err := o.line(sku, product, title, qty, up, tot, bd)
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		o.Lines = append(o.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	for i := range orders {
		orders[i].show()
	}
	return nil
}

// ownedBy reports whether caller is o's customer or holds its cart token.
func (o Order) ownedBy(c Caller) bool {
	if o.CustomerID != nil {
		return c.CustomerID == *o.CustomerID
	}
	return o.tokenHash != "" && c.CartToken != "" && c.tokenHash() == o.tokenHash
}

// Filter selects orders for a staff list; empty fields select all.
type Filter struct {
	Status            Status
	PaymentStatus     PaymentStatus
	FulfillmentStatus FulfillmentStatus
	Channel           string
	CustomerID        string
	// Q matches an order number by prefix or an order id exactly.
	Q                      string
	CreatedFrom, CreatedTo time.Time // [from, to)
}

// listKey is a list's keyset position: newest first.
type listKey struct {
	CreatedAt int64  `json:"c"`
	ID        string `json:"i"`
}

// List returns a page of orders matching f, newest first, whole documents.
func (s *Service) List(ctx context.Context, f Filter, page web.PageRequest) (web.Page[Order], error) {
	const op = "orders.List"
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+itoa(len(args))))
	}
	if f.Status != "" {
		add("status = ?", string(f.Status))
	}
	if f.PaymentStatus != "" {
		add("payment_status = ?", string(f.PaymentStatus))
	}
	if f.FulfillmentStatus != "" {
		add("fulfillment_status = ?", string(f.FulfillmentStatus))
	}
	if f.Channel != "" {
		add("channel = ?", f.Channel)
	}
	if f.CustomerID != "" {
		add("customer_id = ?", f.CustomerID)
	}
	if f.Q != "" {
		args = append(args, f.Q, likePrefix(f.Q))
		n := len(args)
		where = append(where, "(id = $"+itoa(n-1)+" OR number LIKE $"+itoa(n)+" ESCAPE '\\')")
	}
	if !f.CreatedFrom.IsZero() {
		add("created_at >= ?", sqldb.Micros(f.CreatedFrom))
	}
	if !f.CreatedTo.IsZero() {
		add("created_at < ?", sqldb.Micros(f.CreatedTo))
	}
	var after listKey
	ok, err := page.After(&after)
	if err != nil {
		return web.Page[Order]{}, err
	}
	if ok {
		args = append(args, after.CreatedAt, after.ID)
		n := len(args)
		where = append(where, "(created_at < $"+itoa(n-1)+" OR (created_at = $"+itoa(n-1)+" AND id < $"+itoa(n)+"))")
	}
	q := `SELECT ` + orderCols + ` FROM orders_orders`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, page.Limit+1)
	q += ` ORDER BY created_at DESC, id DESC LIMIT $` + itoa(len(args))
	rows, err := s.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return web.Page[Order]{}, errs.E(op, errs.Internal, err)
	}
	var out []Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			rows.Close()
			return web.Page[Order]{}, errs.E(op, errs.Internal, err)
		}
		out = append(out, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return web.Page[Order]{}, errs.E(op, errs.Internal, err)
	}
	if err := withLines(ctx, s.db.Reader(), out); err != nil {
		return web.Page[Order]{}, err
	}
	return web.NewPage(out, page.Limit, func(o Order) any { return listKey{sqldb.Micros(o.CreatedAt), o.ID} }), nil
}

func likePrefix(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s) + "%"
}

// Get returns order id for caller (its customer, its guest, or staff with
// staff set): anyone else gets 404.
func (s *Service) Get(ctx context.Context, caller Caller, id string, staff bool) (Order, error) {
	o, err := readOrder(ctx, s.db.Reader(), id)
	if err != nil {
		return Order{}, err
	}
	if !staff && !o.ownedBy(caller) {
		return Order{}, errs.E("orders.Get", errs.NotFound, "no such order")
	}
	return o, nil
}

func itoa(n int) string { return strconv.Itoa(n) }
