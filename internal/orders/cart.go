package orders

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"time"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/pricing"
)

// Cart limits.
const (
	MaxQuantity  = 10000 // per line
	MaxCartLines = 100
)

// HeaderCartToken carries a guest's cart token.
const HeaderCartToken = "X-Cart-Token"

// Caller is who acts on a cart or order: a signed-in customer, a guest
// holding a cart token, or both (a customer claiming a guest cart).
type Caller struct {
	CustomerID string
	CartToken  string // the raw token a guest was given
	Channel    string // "web" unless a channel token is used
}

func (c Caller) tokenHash() string {
	if c.CartToken == "" {
		return ""
	}
	return hashToken(c.CartToken)
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte("mercato cart token\x00" + tok))
	return hex.EncodeToString(sum[:])
}

func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return "ct_" + base64.RawURLEncoding.EncodeToString(b)
}

// Cart is a cart as quoted now (prices from the catalog).
type Cart struct {
	ID string `json:"id"`
	// Token is the guest's cart token, in the answer that created the cart
	// only; send it as X-Cart-Token. It is stored hashed.
	Token      string      `json:"token,omitempty"`
	CustomerID string      `json:"customer_id,omitempty"`
	Status     string      `json:"status" doc:"open or checked_out."`
	Currency   string      `json:"currency"`
	Lines      []CartLine  `json:"lines"`
	ItemCount  int         `json:"item_count"`
	Subtotal   money.Money `json:"subtotal"`
	Discount   money.Money `json:"discount"`
	Shipping   money.Money `json:"shipping"`
	Tax        money.Money `json:"tax"`
	Total      money.Money `json:"total"`
	// TaxInclusive: the prices include Tax. Coupons are the codes entered
	// with what became of each (applied, or why not, priced now).
	TaxInclusive bool                    `json:"tax_inclusive"`
	Coupons      []pricing.CouponOutcome `json:"coupons"`
	Promotions   []AppliedPromotion      `json:"promotions" doc:"The promotions the price applies now."`
	CreatedAt    time.Time               `json:"created_at"`
	UpdatedAt    time.Time               `json:"updated_at"`
}

// CartLine is one priced line. Available is false for a SKU the catalog no
// longer sells: it is left out of the totals and checkout refuses it.
type CartLine struct {
	SKU       string       `json:"sku"`
	Title     string       `json:"title"`
	Quantity  int          `json:"quantity"`
	UnitPrice *money.Money `json:"unit_price"`
	Total     *money.Money `json:"total"`
	Discount  *money.Money `json:"discount,omitempty"`
	Available bool         `json:"available"`
}

// cartRow is a cart as stored.
type cartRow struct {
	id, customerID, tokenHash, currency, status string
	createdAt, updatedAt                        time.Time
	lines                                       []StockLine // in the order added
	coupons                                     []string    // normalised, in the order entered
}

// loadCartTx reads cart id and its lines (one statement) and checks that
// caller may use it: anyone else gets 404.
func loadCartTx(ctx context.Context, tx *sqldb.Tx, caller Caller, id string) (*cartRow, error) {
	const op = "orders.loadCart"
	rows, err := tx.QueryContext(ctx, `SELECT c.customer_id, c.token_hash, c.currency, c.status, c.created_at, c.updated_at,
		c.coupons, l.sku, l.quantity FROM orders_carts c LEFT JOIN orders_cart_lines l ON l.cart_id = c.id
		WHERE c.id = $1 ORDER BY l.added_at, l.sku`, id)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	var c *cartRow
	for rows.Next() {
		var cust, tok, cur, sku sql.NullString
		var qty sql.NullInt64
		var status, coupons string
		var created, updated int64
		if err := rows.Scan(&cust, &tok, &cur, &status, &created, &updated, &coupons, &sku, &qty); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		if c == nil {
			c = &cartRow{id: id, customerID: cust.String, tokenHash: tok.String, currency: cur.String, status: status,
				createdAt: sqldb.FromMicros(created), updatedAt: sqldb.FromMicros(updated), coupons: decodeCoupons(coupons)}
		}
		if sku.Valid {
			c.lines = append(c.lines, StockLine{SKU: sku.String, Quantity: int(qty.Int64)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	if c == nil || !c.ownedBy(caller) {
		return nil, errs.E(op, errs.NotFound, "no such cart")
	}
	return c, nil
}

func (c *cartRow) ownedBy(caller Caller) bool {
	if c.customerID != "" {
		return caller.CustomerID == c.customerID
	}
	return c.tokenHash != "" && caller.CartToken != "" && caller.tokenHash() == c.tokenHash
}

func (c *cartRow) open() error {
	if c.status != "open" {
		return errs.E("orders.Cart", errs.Conflict, errs.Code("cart_checked_out"), "this cart was checked out; start a new one")
	}
	return nil
}

// CreateCartTx creates an empty cart for caller: a customer's when signed
// in, else a guest's, whose token is in the answer (once).
func (s *Service) CreateCartTx(ctx context.Context, tx *sqldb.Tx, caller Caller) (Cart, error) {
	c := &cartRow{id: event.NewID(), customerID: caller.CustomerID, status: "open", createdAt: tx.Now, updatedAt: tx.Now}
	var token string
	if caller.CustomerID == "" {
		token = newToken()
		c.tokenHash = hashToken(token)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO orders_carts (id, customer_id, token_hash, status, created_at, updated_at)
		VALUES ($1, $2, $3, 'open', $4, $4)`, c.id, nullable(c.customerID), nullable(c.tokenHash), sqldb.Micros(tx.Now)); err != nil {
		return Cart{}, errs.E("orders.CreateCart", errs.Internal, err)
	}
	out, err := s.viewCartTx(ctx, tx, c)
	out.Token = token
	return out, err
}

// CartTx returns cart id as quoted now.
func (s *Service) CartTx(ctx context.Context, tx *sqldb.Tx, caller Caller, id string) (Cart, error) {
	c, err := loadCartTx(ctx, tx, caller, id)
	if err != nil {
		return Cart{}, err
	}
	return s.viewCartTx(ctx, tx, c)
}

// SetItemTx sets the quantity of sku in cart id (adding the line when it
// is new). The SKU must be one the catalog sells, in the cart's currency.
func (s *Service) SetItemTx(ctx context.Context, tx *sqldb.Tx, caller Caller, id, sku string, qty int) (Cart, error) {
	return s.setItemTx(ctx, tx, caller, id, sku, qty, nil)
}

// sellableVariant reads sku from the catalog on the reader pool, before the
// unit that adds it: nil unless the catalog has it for sale (the unit then
// reads it itself, and decides).
func (s *Service) sellableVariant(ctx context.Context, sku string) *Variant {
	var v *Variant
	s.db.ReadTx(ctx, func(tx *sqldb.Tx) error {
		vars, err := s.catalog.VariantsTx(ctx, tx, []string{sku})
		if vr, ok := vars[sku]; err == nil && ok && vr.Sellable {
			v = &vr
		}
		return nil
	})
	return v
}

// setItemTx is SetItemTx with the variant read before the unit (nil: read
// it in tx). That read is the catalogue's committed state a moment before
// tx's, as a read in tx would be up to the last commit; checkout prices
// from the catalogue in its own unit.
func (s *Service) setItemTx(ctx context.Context, tx *sqldb.Tx, caller Caller, id, sku string, qty int, known *Variant) (Cart, error) {
	const op = "orders.SetItem"
	var v errs.Validation
	v.Check(qty >= 1 && qty <= MaxQuantity, "quantity", fmt.Sprintf("must be from 1 to %d", MaxQuantity))
	v.Check(sku != "", "sku", "is required")
	if err := v.Err(op); err != nil {
		return Cart{}, err
	}
	c, err := loadCartTx(ctx, tx, caller, id)
	if err != nil {
		return Cart{}, err
	}
	if err := c.open(); err != nil {
		return Cart{}, err
	}
	vr, ok := Variant{}, false
	if known != nil && known.SKU == sku {
		vr, ok = *known, true
	} else {
		vars, err := s.catalog.VariantsTx(ctx, tx, []string{sku})
		if err != nil {
			return Cart{}, errs.E(op, err)
		}
		vr, ok = vars[sku]
	}
	if err := checkVariant(op, sku, vr, ok); err != nil {
		return Cart{}, err
	}
	idx := -1
	for i, l := range c.lines {
		if l.SKU == sku {
			idx = i
		}
	}
	if idx < 0 && len(c.lines) >= MaxCartLines {
		return Cart{}, errs.E(op, errs.Invalid, errs.CodeLimitExceeded, fmt.Sprintf("a cart holds at most %d lines", MaxCartLines),
			[]errs.FieldError{{Field: "sku", Message: fmt.Sprintf("the cart already holds %d lines", MaxCartLines)}})
	}
	cur := vr.Price.Currency()
	if c.currency != "" && len(c.lines) > 0 && !(len(c.lines) == 1 && idx == 0) && c.currency != cur {
		return Cart{}, errs.E(op, errs.Invalid, errs.Code("currency_mismatch"), "a cart holds prices of one currency only",
			[]errs.FieldError{{Field: "sku", Message: sku + " is priced in " + cur + ", the cart in " + c.currency}})
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO orders_cart_lines (cart_id, sku, quantity, added_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (cart_id, sku) DO UPDATE SET quantity = excluded.quantity`, id, sku, qty, sqldb.Micros(tx.Now)); err != nil {
		return Cart{}, errs.E(op, errs.Internal, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE orders_carts SET currency = $1, updated_at = $2 WHERE id = $3`,
		cur, sqldb.Micros(tx.Now), id); err != nil {
		return Cart{}, errs.E(op, errs.Internal, err)
	}
	if idx >= 0 {
		c.lines[idx].Quantity = qty
	} else {
		c.lines = append(c.lines, StockLine{SKU: sku, Quantity: qty})
	}
	c.currency, c.updatedAt = cur, tx.Now
	return s.viewCartTx(ctx, tx, c, vr)
}

// RemoveItemTx removes sku from cart id (removing an absent SKU is not an
// error: the answer is the cart).
func (s *Service) RemoveItemTx(ctx context.Context, tx *sqldb.Tx, caller Caller, id, sku string) (Cart, error) {
	const op = "orders.RemoveItem"
	c, err := loadCartTx(ctx, tx, caller, id)
	if err != nil {
		return Cart{}, err
	}
	if err := c.open(); err != nil {
		return Cart{}, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM orders_cart_lines WHERE cart_id = $1 AND sku = $2`, id, sku); err != nil {
		return Cart{}, errs.E(op, errs.Internal, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE orders_carts SET updated_at = $1 WHERE id = $2`, sqldb.Micros(tx.Now), id); err != nil {
		return Cart{}, errs.E(op, errs.Internal, err)
	}
	kept := c.lines[:0]
	for _, l := range c.lines {
		if l.SKU != sku {
			kept = append(kept, l)
		}
	}
	c.lines, c.updatedAt = kept, tx.Now
	return s.viewCartTx(ctx, tx, c)
}

// ClaimTx makes the guest cart id (caller.CartToken must be its token) the
// signed-in caller's: its token stops working and the customer's id
// guards it from then on. A cart already a customer's is 404 to anyone else
// and unchanged for its owner.
func (s *Service) ClaimTx(ctx context.Context, tx *sqldb.Tx, caller Caller, id string) (Cart, error) {
	const op = "orders.Claim"
	if caller.CustomerID == "" {
		return Cart{}, errs.E(op, errs.Unauthorized, "sign in to claim a cart")
	}
	c, err := loadCartTx(ctx, tx, caller, id)
	if err != nil {
		return Cart{}, err
	}
	if err := c.open(); err != nil {
		return Cart{}, err
	}
	if c.customerID == "" {
		if _, err := tx.ExecContext(ctx, `UPDATE orders_carts SET customer_id = $1, token_hash = NULL, updated_at = $2
			WHERE id = $3 AND customer_id IS NULL`, caller.CustomerID, sqldb.Micros(tx.Now), id); err != nil {
			return Cart{}, errs.E(op, errs.Internal, err)
		}
		c.customerID, c.tokenHash, c.updatedAt = caller.CustomerID, "", tx.Now
	}
	return s.viewCartTx(ctx, tx, c)
}

// checkVariant says whether a catalog answer lets sku into a cart.
func checkVariant(op, sku string, v Variant, ok bool) error {
	switch {
	case !ok:
		return errs.E(op, errs.Invalid, errs.Code("unknown_sku"), "the catalog has no such SKU",
			[]errs.FieldError{{Field: "sku", Message: sku + " is not in the catalog"}})
	case !v.Sellable:
		return errs.E(op, errs.Invalid, errs.Code("not_sellable"), "this SKU is not for sale",
			[]errs.FieldError{{Field: "sku", Message: sku + " is not for sale"}})
	}
	return nil
}

// viewCartTx quotes c as it is now: lines the catalog no longer sells are
// shown unavailable and left out. known are variants already read.
func (s *Service) viewCartTx(ctx context.Context, tx *sqldb.Tx, c *cartRow, known ...Variant) (Cart, error) {
	const op = "orders.Cart"
	vars := map[string]Variant{}
	for _, v := range known {
		vars[v.SKU] = v
	}
	var ask []string
	for _, l := range c.lines {
		if _, ok := vars[l.SKU]; !ok {
			ask = append(ask, l.SKU)
		}
	}
	if len(ask) > 0 {
		got, err := s.catalog.VariantsTx(ctx, tx, ask)
		if err != nil {
			return Cart{}, errs.E(op, err)
		}
		for k, v := range got {
			vars[k] = v
		}
	}
	cur := c.currency
	if cur == "" {
		cur = s.cfg.Currency
	}
	var priced []QuoteLine
	out := Cart{ID: c.id, CustomerID: c.customerID, Status: c.status, Currency: cur, Lines: []CartLine{},
		CreatedAt: c.createdAt, UpdatedAt: c.updatedAt}
	for _, l := range c.lines {
		v, ok := vars[l.SKU]
		line := CartLine{SKU: l.SKU, Quantity: l.Quantity, Title: v.Title}
		if ok && v.Sellable && v.Price.Currency() == cur {
			v.SKU = l.SKU
			priced = append(priced, QuoteLine{Variant: v, Quantity: l.Quantity})
			line.Available = true
		}
		out.Lines = append(out.Lines, line)
		out.ItemCount += l.Quantity
	}
	in, err := s.inputTx(ctx, tx, c, cur, quoteArgs{caller: Caller{Channel: "web"}, method: "standard", coupons: c.coupons})
	if err != nil {
		return Cart{}, err
	}
	if len(in.Shipping.Zones) > 0 {
		in.ShippingMethod = "" // no address yet: the methods are GET …/shipping-methods
	}
	q, err := s.quote.Run(ctx, in, priced)
	if err != nil {
		return Cart{}, err
	}
	bySKU := map[string]QuoteLine{}
	for _, ql := range q.Lines {
		bySKU[ql.SKU] = ql
	}
	for i := range out.Lines {
		if ql, ok := bySKU[out.Lines[i].SKU]; ok {
			up, tot, disc := ql.Price, ql.Total, ql.Discount
			out.Lines[i].UnitPrice, out.Lines[i].Total, out.Lines[i].Discount = &up, &tot, &disc
		}
	}
	out.Subtotal, out.Discount, out.Shipping, out.Tax, out.Total = q.Subtotal, q.Discount, q.Shipping, q.Tax, q.Total
	out.TaxInclusive, out.Coupons, out.Promotions = q.TaxInclusive, q.Coupons, pricedWith(q, nil).Promotions
	if out.Coupons == nil {
		out.Coupons = []pricing.CouponOutcome{}
	}
	return out, nil
}

// strictQuoteTx prices every line of c for checkout: an unknown or
// unsellable SKU, or another currency, is 422.
func (s *Service) strictQuoteTx(ctx context.Context, tx *sqldb.Tx, c *cartRow, a quoteArgs) (Quote, error) {
	const op = "orders.Checkout"
	skus := make([]string, len(c.lines))
	for i, l := range c.lines {
		skus[i] = l.SKU
	}
	vars, err := s.catalog.VariantsTx(ctx, tx, skus)
	if err != nil {
		return Quote{}, errs.E(op, err)
	}
	lines := make([]QuoteLine, 0, len(c.lines))
	for _, l := range c.lines {
		v, ok := vars[l.SKU]
		if err := checkVariant(op, l.SKU, v, ok); err != nil {
			return Quote{}, err
		}
		v.SKU = l.SKU
		lines = append(lines, QuoteLine{Variant: v, Quantity: l.Quantity})
	}
	in, err := s.inputTx(ctx, tx, c, c.currency, a)
	if err != nil {
		return Quote{}, err
	}
	return s.quote.Run(ctx, in, lines)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

var errNoRows = sql.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
