package logistics

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"mercato/internal/audit"
	"mercato/internal/inventory"
	"mercato/internal/money"
	"mercato/internal/orders"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// The statuses of a return.
const (
	ReturnStatusRequested = "requested"
	ReturnStatusApproved  = "approved"
	ReturnStatusRejected  = "rejected"
	ReturnStatusReceived  = "received"
)

// The dispositions of a received line.
const (
	DispositionRestock  = "restock"
	DispositionWriteOff = "write_off"
)

// CodeReturnWindowClosed is the 422 of a return asked for after the window.
const CodeReturnWindowClosed errs.Code = "return_window_closed"

// maxReason bounds a return's reason and a rejection's note (characters).
const maxReason = 500

// ReturnRequest is POST /api/v1/orders/{id}/returns's body.
type ReturnRequest struct {
	Reason string `json:"reason" maxlen:"2000" doc:"1 to 500 characters."`
	Lines  []Line `json:"lines,omitempty" doc:"What goes back; absent: every delivered unit not returned yet."`
}

// RejectRequest is POST /api/v1/admin/returns/{id}/reject's body.
type RejectRequest struct {
	Note string `json:"note" maxlen:"2000" doc:"1 to 500 characters, shown to the customer."`
}

// ReceiveLine says what became of one returned SKU.
type ReceiveLine struct {
	SKU         string `json:"sku" maxlen:"64"`
	Disposition string `json:"disposition" maxlen:"20" doc:"restock (the default) or write_off."`
	Location    string `json:"location,omitempty" maxlen:"32" doc:"Where to restock; default: where it was picked."`
}

// ReceiveRequest is POST /api/v1/admin/returns/{id}/receive's body; a line
// not named is restocked where it was picked.
type ReceiveRequest struct {
	Lines []ReceiveLine `json:"lines,omitempty"`
}

// ReturnLine is one line of a return.
type ReturnLine struct {
	SKU         string      `json:"sku"`
	Quantity    int64       `json:"quantity"`
	UnitPrice   money.Money `json:"unit_price" doc:"As paid."`
	Disposition string      `json:"disposition,omitempty" doc:"Once received: restock or write_off."`
	Location    string      `json:"location,omitempty" doc:"Where it was restocked."`
}

// Return is a return (RMA) of some of a delivered order's units.
type Return struct {
	ID         string       `json:"id"`
	OrderID    string       `json:"order_id"`
	CustomerID string       `json:"customer_id"`
	Status     string       `json:"status" doc:"requested, approved, rejected or received."`
	Reason     string       `json:"reason"`
	Note       string       `json:"note,omitempty" doc:"Staff's note of a rejection."`
	Lines      []ReturnLine `json:"lines"`
	Refund     money.Money  `json:"refund" doc:"The lines at the prices paid; refunded through return.received."`
	CreatedAt  time.Time    `json:"created_at"`
	UpdatedAt  time.Time    `json:"updated_at"`
}

// checkText trims s and checks it holds 1 to maxReason characters.
func checkText(v *errs.Validation, field, s string) string {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	v.Check(n >= 1 && n <= maxReason && utf8.ValidString(s), field, fmt.Sprintf("must be 1 to %d characters", maxReason))
	return s
}

// RequestReturnTx records customerID's return request of order id in tx:
// the order must be delivered (or completed) and its delivery no longer
// ago than the return window (else 422 return_window_closed); the lines
// (all delivered units not returned yet when none are named) are taken by
// conditional writes from what was shipped and not returned. The order
// moves to return_requested. Emits return.requested.
func (s *Service) RequestReturnTx(ctx context.Context, tx *sqldb.Tx, returnID, id, customerID string, in ReturnRequest) (Return, error) {
	const op = "logistics.RequestReturn"
	var v errs.Validation
	reason := checkText(&v, "reason", in.Reason)
	v.Check(len(in.Lines) <= maxShipmentLines, "lines", fmt.Sprintf("must hold at most %d lines", maxShipmentLines))
	for i, l := range in.Lines {
		v.Check(l.Quantity >= 1 && l.Quantity <= 1_000_000, fmt.Sprintf("lines[%d].quantity", i), "must be from 1 to 1000000")
		v.Check(!slices.ContainsFunc(in.Lines[:i], func(x Line) bool { return x.SKU == l.SKU }), fmt.Sprintf("lines[%d].sku", i), "is given twice")
	}
	if err := v.Err(op); err != nil {
		return Return{}, err
	}
	o, err := s.orders.OrderTx(ctx, tx, id)
	if err != nil {
		return Return{}, err
	}
	if o.Status != orders.StatusDelivered && o.Status != orders.StatusCompleted {
		return Return{}, errs.E(op, errs.Conflict, errs.CodeInvalidTransition, fmt.Sprintf("an order that is %s cannot be returned", o.Status))
	}
	var delivered sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT delivered_at FROM logistics_fulfilments WHERE order_id = $1`, id).Scan(&delivered); err != nil && !isNoRows(err) {
		return Return{}, errs.E(op, errs.Internal, err)
	}
	if !delivered.Valid || tx.Now.After(sqldb.FromMicros(delivered.Int64).Add(s.cfg.ReturnWindow)) {
		return Return{}, errs.E(op, errs.Invalid, CodeReturnWindowClosed,
			fmt.Sprintf("returns are accepted within %d days of delivery", int(s.cfg.ReturnWindow.Hours()/24)))
	}
	type left struct{ n, price int64 }
	avail := map[string]left{}
	rows, err := tx.QueryContext(ctx, `SELECT sku, shipped - returned, unit_price FROM logistics_order_lines WHERE order_id = $1 ORDER BY sku`, id)
	if err != nil {
		return Return{}, errs.E(op, errs.Internal, err)
	}
	var all []Line
	for rows.Next() {
		var sku string
		var l left
		if err := rows.Scan(&sku, &l.n, &l.price); err != nil {
			rows.Close()
			return Return{}, errs.E(op, errs.Internal, err)
		}
		avail[sku] = l
		if l.n > 0 {
			all = append(all, Line{SKU: sku, Quantity: l.n})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Return{}, errs.E(op, errs.Internal, err)
	}
	lines := slices.Clone(in.Lines)
	if len(lines) == 0 {
		if len(all) == 0 {
			// Everything delivered is being returned already (a racing
			// request may have just taken it): a state conflict, not bad input.
			return Return{}, errs.E(op, errs.Conflict, errs.CodeInvalidTransition, "everything delivered is being returned already")
		}
		lines = all
	}
	for i, l := range lines {
		a, ok := avail[l.SKU]
		v.Check(ok, fmt.Sprintf("lines[%d].sku", i), "is not in the order")
		v.Check(!ok || l.Quantity <= a.n, fmt.Sprintf("lines[%d].quantity", i), "is more than was delivered and not returned")
	}
	if err := v.Err(op); err != nil {
		return Return{}, err
	}
	slices.SortFunc(lines, func(a, b Line) int { return strings.Compare(a.SKU, b.SKU) })
	r := Return{ID: returnID, OrderID: id, CustomerID: customerID, Status: ReturnStatusRequested, Reason: reason,
		Lines: []ReturnLine{}, CreatedAt: tx.Now, UpdatedAt: tx.Now}
	var refund int64
	for _, l := range lines {
		res, err := tx.ExecContext(ctx, `UPDATE logistics_order_lines SET returned = returned + $1
			WHERE order_id = $2 AND sku = $3 AND returned + $1 <= shipped`, l.Quantity, id, l.SKU)
		if err != nil {
			return Return{}, errs.E(op, errs.Internal, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return Return{}, errs.E(op, errs.Internal, err)
		} else if n == 0 {
			return Return{}, errs.E(op, errs.Conflict, errs.CodeConflict, "the order's returns changed meanwhile; read it again")
		}
		price := avail[l.SKU].price
		up, err := money.New(price, o.Currency)
		if err != nil {
			return Return{}, errs.E(op, errs.Internal, err)
		}
		r.Lines = append(r.Lines, ReturnLine{SKU: l.SKU, Quantity: l.Quantity, UnitPrice: up})
		refund += price * l.Quantity
	}
	if r.Refund, err = money.New(refund, o.Currency); err != nil {
		return Return{}, errs.E(op, errs.Internal, err)
	}
	now := sqldb.Micros(tx.Now)
	if _, err := tx.ExecContext(ctx, `INSERT INTO logistics_returns (id, order_id, customer_id, status, reason, currency, refund, created_at, updated_at)
		VALUES ($1, $2, $3, 'requested', $4, $5, $6, $7, $7)`, returnID, id, customerID, reason, o.Currency, refund, now); err != nil {
		return Return{}, errs.E(op, errs.Internal, err)
	}
	for _, l := range r.Lines {
		if _, err := tx.ExecContext(ctx, `INSERT INTO logistics_return_lines (return_id, sku, quantity, unit_price) VALUES ($1, $2, $3, $4)`,
			returnID, l.SKU, l.Quantity, l.UnitPrice.Amount()); err != nil {
			return Return{}, errs.E(op, errs.Internal, err)
		}
	}
	if _, err := s.orders.RequestReturnTx(ctx, tx, id, returnID); err != nil {
		return Return{}, err
	}
	return r, emitReturn(ctx, tx, ReturnRequested, r, reason)
}

// ApproveReturnTx approves requested return id in tx (return.approved);
// another status is 409 invalid_transition.
func (s *Service) ApproveReturnTx(ctx context.Context, tx *sqldb.Tx, id, staffID string) (Return, error) {
	r, err := s.moveReturn(ctx, tx, id, ReturnStatusRequested, ReturnStatusApproved, staffID, "")
	if err != nil {
		return Return{}, err
	}
	return r, emitReturn(ctx, tx, ReturnApproved, r, "")
}

// RejectReturnTx rejects requested return id in tx with a note: its units
// may be asked for again, and the order is delivered again
// (return.rejected). Another status is 409 invalid_transition.
func (s *Service) RejectReturnTx(ctx context.Context, tx *sqldb.Tx, id, staffID string, in RejectRequest) (Return, error) {
	const op = "logistics.RejectReturn"
	var v errs.Validation
	note := checkText(&v, "note", in.Note)
	if err := v.Err(op); err != nil {
		return Return{}, err
	}
	r, err := s.moveReturn(ctx, tx, id, ReturnStatusRequested, ReturnStatusRejected, staffID, note)
	if err != nil {
		return Return{}, err
	}
	for _, l := range r.Lines {
		if _, err := tx.ExecContext(ctx, `UPDATE logistics_order_lines SET returned = returned - $1 WHERE order_id = $2 AND sku = $3`,
			l.Quantity, r.OrderID, l.SKU); err != nil {
			return Return{}, errs.E(op, errs.Internal, err)
		}
	}
	if _, err := s.orders.RejectReturnTx(ctx, tx, r.OrderID, r.ID); err != nil {
		return Return{}, err
	}
	return r, emitReturn(ctx, tx, ReturnRejected, r, note)
}

// ReceiveReturnTx records that approved return id's goods arrived, in tx:
// each line is restocked (inventory ReturnTx, where it was picked unless
// named) or written off; the order moves to returned; return.received asks
// for the refund of the lines at the prices paid. Another status is 409
// invalid_transition.
func (s *Service) ReceiveReturnTx(ctx context.Context, tx *sqldb.Tx, id, staffID string, in ReceiveRequest) (Return, error) {
	const op = "logistics.ReceiveReturn"
	var v errs.Validation
	v.Check(len(in.Lines) <= maxShipmentLines, "lines", fmt.Sprintf("must hold at most %d lines", maxShipmentLines))
	for i, l := range in.Lines {
		v.Check(l.Disposition == "" || l.Disposition == DispositionRestock || l.Disposition == DispositionWriteOff,
			fmt.Sprintf("lines[%d].disposition", i), "must be restock or write_off")
		v.Check(l.Disposition != DispositionWriteOff || l.Location == "", fmt.Sprintf("lines[%d].location", i), "is for restocked lines")
	}
	if err := v.Err(op); err != nil {
		return Return{}, err
	}
	r, err := s.moveReturn(ctx, tx, id, ReturnStatusApproved, ReturnStatusReceived, staffID, "")
	if err != nil {
		return Return{}, err
	}
	for i, l := range in.Lines {
		v.Check(slices.ContainsFunc(r.Lines, func(x ReturnLine) bool { return x.SKU == l.SKU }), fmt.Sprintf("lines[%d].sku", i), "is not in the return")
	}
	if err := v.Err(op); err != nil {
		return Return{}, err
	}
	var restock []inventory.ReservedLine
	evLines := make([]ReturnReceivedLine, 0, len(r.Lines))
	for i := range r.Lines {
		l := &r.Lines[i]
		l.Disposition = DispositionRestock
		if k := slices.IndexFunc(in.Lines, func(x ReceiveLine) bool { return x.SKU == l.SKU }); k >= 0 {
			if in.Lines[k].Disposition != "" {
				l.Disposition = in.Lines[k].Disposition
			}
			l.Location = in.Lines[k].Location
		}
		if l.Disposition == DispositionRestock && l.Location == "" {
			if l.Location, err = pickedAt(ctx, tx, r.OrderID, l.SKU); err != nil {
				return Return{}, err
			}
		}
		if l.Disposition == DispositionRestock {
			restock = append(restock, inventory.ReservedLine{SKU: l.SKU, Location: l.Location, Quantity: l.Quantity})
		} else {
			l.Location = ""
		}
		if _, err := tx.ExecContext(ctx, `UPDATE logistics_return_lines SET disposition = $1, location = $2 WHERE return_id = $3 AND sku = $4`,
			l.Disposition, l.Location, id, l.SKU); err != nil {
			return Return{}, errs.E(op, errs.Internal, err)
		}
		evLines = append(evLines, ReturnReceivedLine{SKU: l.SKU, Quantity: l.Quantity, Disposition: l.Disposition, Location: l.Location})
	}
	if len(restock) > 0 {
		if s.stock == nil {
			return Return{}, errs.E(op, errs.Unavailable, "inventory is not available")
		}
		if err := s.stock.ReturnTx(ctx, tx, r.OrderID, restock); err != nil {
			return Return{}, err
		}
	}
	if _, err := s.orders.ReturnTx(ctx, tx, r.OrderID, r.ID); err != nil {
		return Return{}, err
	}
	ev, err := ReturnReceived.New(r.ID, tx.Now, ReturnReceivedData{ReturnID: r.ID, OrderID: r.OrderID, Amount: r.Refund.Amount(),
		Currency: r.Refund.Currency(), Lines: evLines})
	if err != nil {
		return Return{}, errs.E(op, errs.Internal, err)
	}
	return r, outbox.Append(ctx, tx, &ev)
}

// pickedAt is where order id's sku was picked (the first location of its
// pick list), default when it has none.
func pickedAt(ctx context.Context, tx *sqldb.Tx, id, sku string) (string, error) {
	var loc string
	err := tx.QueryRowContext(ctx, `SELECT location FROM logistics_pick_lines WHERE order_id = $1 AND sku = $2 ORDER BY quantity DESC, location LIMIT 1`,
		id, sku).Scan(&loc)
	if isNoRows(err) {
		return "default", nil
	}
	if err != nil {
		return "", errs.E("logistics.pickedAt", errs.Internal, err)
	}
	return loc, nil
}

// moveReturn moves return id from one status to another by a conditional
// write (of two racing decisions one wins), audits staff's decision and
// returns the return.
func (s *Service) moveReturn(ctx context.Context, tx *sqldb.Tx, id, from, to, staffID, note string) (Return, error) {
	const op = "logistics.Return"
	res, err := tx.ExecContext(ctx, `UPDATE logistics_returns SET status = $1, note = $2, decided_by = $3, updated_at = $4
		WHERE id = $5 AND status = $6`, to, note, staffID, sqldb.Micros(tx.Now), id, from)
	if err != nil {
		return Return{}, errs.E(op, errs.Internal, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return Return{}, errs.E(op, errs.Internal, err)
	}
	r, err := getReturn(ctx, tx, id)
	if err != nil {
		return Return{}, err
	}
	if n == 0 {
		return Return{}, errs.E(op, errs.Conflict, errs.CodeInvalidTransition, fmt.Sprintf("a return that is %s cannot be %s", r.Status, to))
	}
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: staffID, Action: "return." + to, TargetType: "return", TargetID: id,
		Before: map[string]string{"status": from}, After: map[string]string{"status": to, "note": note}}); err != nil {
		return Return{}, err
	}
	return r, nil
}

func emitReturn(ctx context.Context, tx *sqldb.Tx, k event.Kind[ReturnData], r Return, reason string) error {
	lines := make([]EventLine, len(r.Lines))
	for i, l := range r.Lines {
		lines[i] = EventLine{SKU: l.SKU, Quantity: l.Quantity}
	}
	ev, err := k.New(r.ID, tx.Now, ReturnData{ReturnID: r.ID, OrderID: r.OrderID, Reason: reason, Lines: lines})
	if err != nil {
		return errs.E("logistics.emit", errs.Internal, err)
	}
	return outbox.Append(ctx, tx, &ev)
}

const returnCols = `id, order_id, customer_id, status, reason, note, currency, refund, created_at, updated_at`

func getReturn(ctx context.Context, q querier, id string) (Return, error) {
	rs, err := queryReturns(ctx, q, `SELECT `+returnCols+` FROM logistics_returns WHERE id = $1`, id)
	if err != nil {
		return Return{}, err
	}
	if len(rs) == 0 {
		return Return{}, errs.E("logistics.Return", errs.NotFound, "no such return")
	}
	return rs[0], nil
}

// queryReturns runs a SELECT of returnCols and fills each return's lines.
func queryReturns(ctx context.Context, q querier, query string, args ...any) ([]Return, error) {
	const op = "logistics.returns"
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	out := []Return{}
	for rows.Next() {
		var r Return
		var cur string
		var refund, created, updated int64
		if err := rows.Scan(&r.ID, &r.OrderID, &r.CustomerID, &r.Status, &r.Reason, &r.Note, &cur, &refund, &created, &updated); err != nil {
			rows.Close()
			return nil, errs.E(op, errs.Internal, err)
		}
		if r.Refund, err = money.New(refund, cur); err != nil {
			rows.Close()
			return nil, errs.E(op, errs.Internal, err)
		}
		r.CreatedAt, r.UpdatedAt, r.Lines = sqldb.FromMicros(created), sqldb.FromMicros(updated), []ReturnLine{}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	for i := range out {
		lr, err := q.QueryContext(ctx, `SELECT sku, quantity, unit_price, disposition, location FROM logistics_return_lines
			WHERE return_id = $1 ORDER BY sku`, out[i].ID)
		if err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		for lr.Next() {
			var l ReturnLine
			var price int64
			if err := lr.Scan(&l.SKU, &l.Quantity, &price, &l.Disposition, &l.Location); err != nil {
				lr.Close()
				return nil, errs.E(op, errs.Internal, err)
			}
			l.UnitPrice, _ = money.New(price, out[i].Refund.Currency())
			out[i].Lines = append(out[i].Lines, l)
		}
		lr.Close()
		if err := lr.Err(); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
	}
	return out, nil
}

// ReturnsOf lists order id's returns, oldest first.
func (s *Service) ReturnsOf(ctx context.Context, id string) ([]Return, error) {
	return queryReturns(ctx, s.db.Reader(), `SELECT `+returnCols+` FROM logistics_returns WHERE order_id = $1 ORDER BY created_at, id`, id)
}

// Returns lists the returns in status (all when empty), newest first.
func (s *Service) Returns(ctx context.Context, status string, page web.PageRequest) (web.Page[Return], error) {
	type key struct {
		C int64  `json:"c"`
		I string `json:"i"`
	}
	q := `SELECT ` + returnCols + ` FROM logistics_returns WHERE ($1 = '' OR status = $1)`
	args := []any{status}
	if page.Cursor != "" {
		var k key
		if err := web.DecodeCursor(page.Cursor, &k); err != nil {
			return web.Page[Return]{}, err
		}
		q += ` AND (created_at < $2 OR (created_at = $2 AND id < $3))`
		args = append(args, k.C, k.I)
	}
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, page.Limit+1)
	rs, err := queryReturns(ctx, s.db.Reader(), q, args...)
	if err != nil {
		return web.Page[Return]{}, err
	}
	return web.NewPage(rs, page.Limit, func(r Return) any { return key{sqldb.Micros(r.CreatedAt), r.ID} }), nil
}

// export is a customer's part of a data export: their returns.
func (s *Service) export(ctx context.Context, userID string) (any, error) {
	return queryReturns(ctx, s.db.Reader(), `SELECT `+returnCols+` FROM logistics_returns WHERE customer_id = $1 ORDER BY created_at, id`, userID)
}

// erase clears the free text of userID's returns in tx (their reasons and
// staff's notes); the lines and amounts stay (accounting facts).
func (s *Service) erase(ctx context.Context, tx *sqldb.Tx, userID string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE logistics_returns SET reason = 'erased', note = '' WHERE customer_id = $1`, userID); err != nil {
		return errs.E("logistics.erase", errs.Internal, err)
	}
	return nil
}

// RequestReturn is RequestReturnTx as one unit of the write path.
func (s *Service) RequestReturn(ctx context.Context, id, customerID string, in ReturnRequest) (r Return, err error) {
	returnID := newID()
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error {
		r, err = s.RequestReturnTx(ctx, tx, returnID, id, customerID, in)
		return err
	})
	return r, err
}

// ApproveReturn is ApproveReturnTx as one unit of the write path.
func (s *Service) ApproveReturn(ctx context.Context, id, staffID string) (r Return, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { r, err = s.ApproveReturnTx(ctx, tx, id, staffID); return err })
	return r, err
}

// RejectReturn is RejectReturnTx as one unit of the write path.
func (s *Service) RejectReturn(ctx context.Context, id, staffID string, in RejectRequest) (r Return, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { r, err = s.RejectReturnTx(ctx, tx, id, staffID, in); return err })
	return r, err
}

// ReceiveReturn is ReceiveReturnTx as one unit of the write path.
func (s *Service) ReceiveReturn(ctx context.Context, id, staffID string, in ReceiveRequest) (r Return, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { r, err = s.ReceiveReturnTx(ctx, tx, id, staffID, in); return err })
	return r, err
}
