package notifications

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mercato/internal/inventory"
	"mercato/internal/money"
	"mercato/internal/orders"
	"mercato/internal/payments"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
)

// The message statuses.
const (
	StatusQueued  = "queued"  // waiting for the sender
	StatusSent    = "sent"    // the relay accepted it
	StatusFailed  = "failed"  // refused for good, or out of attempts
	StatusSkipped = "skipped" // no SMTP configured: nothing was sent, nothing is pending
)

// The message kinds: the customer's order mail and the staff alerts.
const (
	KindOrderPlaced     = "order_placed"
	KindOrderPaid       = "order_paid"
	KindOrderShipped    = "order_shipped"
	KindOrderDelivered  = "order_delivered"
	KindOrderCancelled  = "order_cancelled"
	KindPaymentRefunded = "payment_refunded"
	KindLowStock        = "low_stock"
	KindDeadLetter      = "dead_letter"
)

// maxErrorLen bounds a recorded last_error.
const maxErrorLen = 500

// HandleEvent is the consumer notifications_orders: it records the message
// an event calls for in tx (queued, or skipped without SMTP) and sends
// nothing. A guest's order, an erased customer and a missing order get no
// message.
func (s *Service) HandleEvent(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
	const op = "notifications.HandleEvent"
	switch e.Type {
	case orders.OrderPlaced.Type():
		d, err := orders.OrderPlaced.Decode(e)
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		// The event carries all the mail needs: no read of the order.
		return s.customerMail(ctx, tx, e, KindOrderPlaced, d.OrderID, d.CustomerID,
			mailData{Number: d.Number, Total: formatMoney(d.Total, d.Currency)})
	case orders.OrderPaid.Type():
		d, err := orders.OrderPaid.Decode(e)
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		return s.orderMail(ctx, tx, e, KindOrderPaid, d.OrderID, nil)
	case orders.OrderShipped.Type():
		d, err := orders.OrderShipped.Decode(e)
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		return s.orderMail(ctx, tx, e, KindOrderShipped, d.OrderID, func(m *mailData) error {
			if s.deps.Tracking == nil {
				return nil
			}
			link, err := s.deps.Tracking.TrackingLink(ctx, d.OrderID, d.ShipmentID)
			m.TrackingURL = link
			return err
		})
	case orders.OrderDelivered.Type():
		d, err := orders.OrderDelivered.Decode(e)
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		return s.orderMail(ctx, tx, e, KindOrderDelivered, d.OrderID, nil)
	case orders.OrderCancelled.Type():
		d, err := orders.OrderCancelled.Decode(e)
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		return s.orderMail(ctx, tx, e, KindOrderCancelled, d.OrderID, func(m *mailData) error {
			if d.WasPaid && d.RefundTotal > 0 {
				m.Refund = formatMoney(d.RefundTotal, d.Currency)
			}
			return nil
		})
	case payments.PaymentRefunded.Type():
		d, err := payments.PaymentRefunded.Decode(e)
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		return s.orderMail(ctx, tx, e, KindPaymentRefunded, d.OrderID, func(m *mailData) error {
			m.Refund = formatMoney(d.Amount, d.Currency)
			return nil
		})
	case inventory.LowStock.Type():
		d, err := inventory.LowStock.Decode(e)
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		return s.lowStock(ctx, tx, e, d)
	}
	return nil
}

// orderMail records the customer's message of kind about order orderID.
func (s *Service) orderMail(ctx context.Context, tx *sqldb.Tx, e event.Envelope, kind, orderID string, fill func(*mailData) error) error {
	const op = "notifications.orderMail"
	o, err := s.deps.Orders.OrderTx(ctx, tx, orderID)
	if errs.Is(err, errs.NotFound) {
		s.log.Warn("notifications: order not found", "order", orderID, "event", e.ID)
		return nil
	}
	if err != nil {
		return err
	}
	customerID := ""
	if o.CustomerID != nil {
		customerID = *o.CustomerID
	}
	d := mailData{Number: o.Number, Total: formatMoney(o.Total.Amount(), o.Total.Currency())}
	if fill != nil && customerID != "" {
		if err := fill(&d); err != nil {
			return errs.E(op, errs.KindOf(err), err)
		}
	}
	return s.customerMail(ctx, tx, e, kind, orderID, customerID, d)
}

// customerMail records customerID's message of kind about order orderID
// with d (its customer's name and locale filled in here). A guest's order
// (customerID "") and an erased or unknown customer get none.
func (s *Service) customerMail(ctx context.Context, tx *sqldb.Tx, e event.Envelope, kind, orderID, customerID string, d mailData) error {
	if customerID == "" {
		return nil // a guest's order: no account to write to
	}
	u, err := s.deps.Customers.User(ctx, customerID)
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !deliverable(u.Email) {
		return nil // an erased (anonymised) customer
	}
	prefs, err := s.cachedPreferences(ctx, u.ID)
	if err != nil {
		return err
	}
	d.Name = u.Name
	return s.record(ctx, tx, e.ID, record{customerID: u.ID, recipient: u.Email, kind: kind, orderID: orderID, locale: prefs.Locale, data: d})
}

// lowStock records the staff alert for d.SKU unless one was recorded for it
// within AlertEvery (or no staff address is configured).
func (s *Service) lowStock(ctx context.Context, tx *sqldb.Tx, e event.Envelope, d inventory.LowStockData) error {
	if s.cfg.StaffEmail == "" {
		return nil
	}
	if recent, err := s.alertedRecently(ctx, tx, KindLowStock, d.SKU); err != nil || recent {
		return err
	}
	return s.record(ctx, tx, e.ID, record{recipient: s.cfg.StaffEmail, kind: KindLowStock, ref: d.SKU, locale: LocaleEN,
		data: mailData{SKU: d.SKU, Available: d.Available, Threshold: d.Threshold}})
}

// alertedRecently reports whether a staff alert of kind about ref was
// recorded within AlertEvery.
func (s *Service) alertedRecently(ctx context.Context, tx *sqldb.Tx, kind, ref string) (bool, error) {
	for _, m := range sqldb.Queued[message](tx, messagesKey{}) { // recorded earlier in this transaction
		if m.kind == kind && m.ref == ref {
			return true, nil
		}
	}
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM notifications_messages WHERE kind = $1 AND ref = $2 AND created_at > $3 LIMIT 1`,
		kind, ref, sqldb.Micros(tx.Now.Add(-s.cfg.AlertEvery))).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, errs.E("notifications.alertedRecently", errs.Internal, err)
	}
	return true, nil
}

// AlertDeadLetters records a staff alert when events are parked in the
// inbox, at most once per AlertEvery. It reports 1 when it recorded one. It
// is the job notifications.dead_letters.
func (s *Service) AlertDeadLetters(ctx context.Context) (int64, error) {
	if s.cfg.StaffEmail == "" || s.deps.DeadLetters == nil {
		return 0, nil
	}
	n, err := s.deps.DeadLetters.DeadLetters(ctx)
	if err != nil || n == 0 {
		return 0, err
	}
	var recorded int64
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error {
		recorded = 0
		if recent, err := s.alertedRecently(ctx, tx, KindDeadLetter, "inbox"); err != nil || recent {
			return err
		}
		recorded = 1
		return s.record(ctx, tx, event.NewID(), record{recipient: s.cfg.StaffEmail, kind: KindDeadLetter, ref: "inbox",
			locale: LocaleEN, data: mailData{Available: n}})
	})
	return recorded, err
}

// record is one message to record.
type record struct {
	customerID, recipient, kind, orderID, ref, locale string
	data                                              mailData
}

// record renders r and queues it in tx, once per event: queued for the
// sender, or skipped when no SMTP is configured. The messages of a
// transaction are inserted together at its commit (insertMessages).
func (s *Service) record(ctx context.Context, tx *sqldb.Tx, eventID string, r record) error {
	subject, text, html, err := s.render.render(r.kind, r.locale, r.data)
	if err != nil {
		return err
	}
	status, lastErr := StatusQueued, ""
	if s.cfg.SMTP == nil {
		status, lastErr, text, html = StatusSkipped, "no SMTP relay configured", "", ""
	}
	return sqldb.AtCommit(ctx, tx, messagesKey{}, insertMessages, message{id: event.NewID(), eventID: eventID, customerID: r.customerID, recipient: r.recipient,
		kind: r.kind, orderID: r.orderID, ref: r.ref, locale: r.locale, subject: subject, text: text, html: html,
		status: status, lastErr: lastErr, at: sqldb.Micros(tx.Now)})
}

// messagesKey names the queue of a transaction's messages (sqldb.AtCommit).
type messagesKey struct{}

// message is one notifications_messages row as recorded.
type message struct {
	id, eventID, customerID, recipient, kind, orderID, ref, locale string
	subject, text, html, status, lastErr                           string
	at                                                             int64
}

// messageChunk bounds the rows of one INSERT (15 arguments each, bound by
// position on SQLite: sqldb.Params; far under both engines' limits).
const messageChunk = 200

// insertMessages inserts a transaction's messages, in order, with one
// multi-row INSERT per chunk; an event's second message is none (the
// event_id is unique: a redelivered event records nothing more).
func insertMessages(ctx context.Context, tx *sqldb.Tx, ms []message) error {
	for start := 0; start < len(ms); start += messageChunk {
		chunk := ms[start:min(start+messageChunk, len(ms))]
		var q strings.Builder
		q.WriteString(`INSERT INTO notifications_messages (id, event_id, customer_id, recipient, kind, order_id, ref,
		locale, subject, text_body, html_body, status, attempts, last_error, next_attempt_at, created_at) VALUES `)
		args := make([]any, 0, 15*len(chunk))
		for i, m := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			n := len(args)
			q.WriteByte('(')
			sqldb.Params(tx.Engine(), &q, n+1, 12)
			q.WriteString(", 0, ")
			sqldb.Params(tx.Engine(), &q, n+13, 3)
			q.WriteByte(')')
			args = append(args, m.id, m.eventID, m.customerID, m.recipient, m.kind, m.orderID, m.ref, m.locale,
				m.subject, m.text, m.html, m.status, m.lastErr, m.at, m.at)
		}
		q.WriteString(` ON CONFLICT (event_id) DO NOTHING`)
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return errs.E("notifications.record", errs.Internal, err)
		}
	}
	return nil
}

// deliverable reports whether addr can receive mail: accounts anonymises an
// erased customer's address under the reserved TLD .invalid (RFC 6761).
func deliverable(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return false
	}
	domain := strings.ToLower(addr[at+1:])
	return domain != "" && domain != "invalid" && !strings.HasSuffix(domain, ".invalid")
}

// formatMoney writes minor units in the currency's major unit ("12.50 EUR").
func formatMoney(amount int64, currency string) string {
	exp, ok := money.Exponent(currency)
	if !ok || exp == 0 {
		return strconv.FormatInt(amount, 10) + " " + currency
	}
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	div := int64(1)
	for range exp {
		div *= 10
	}
	return fmt.Sprintf("%s%d.%0*d %s", sign, amount/div, exp, amount%div, currency)
}

// due is a queued message the sender is about to send.
type due struct {
	id, recipient, subject, text, html string
	attempts                           int
	next                               int64 // next_attempt_at as read
}

// claimLease is how long a claimed message is left to its sender before
// another run may send it (after a crash mid-send: at least once).
const claimLease = 10 * time.Minute

// SendDue sends the queued messages that are due, outside any transaction,
// and records each outcome in a unit of its own. It reports how many were
// sent. It is the job notifications.send.
func (s *Service) SendDue(ctx context.Context) (int64, error) {
	const op = "notifications.SendDue"
	if s.cfg.SMTP == nil {
		return 0, nil
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT id, recipient, subject, text_body, html_body, attempts, next_attempt_at
		FROM notifications_messages WHERE status = $1 AND next_attempt_at <= $2 ORDER BY next_attempt_at, id LIMIT $3`,
		StatusQueued, sqldb.Micros(s.db.Now()), s.cfg.BatchSize)
	if err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	var batch []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.recipient, &d.subject, &d.text, &d.html, &d.attempts, &d.next); err != nil {
			rows.Close()
			return 0, errs.E(op, errs.Internal, err)
		}
		batch = append(batch, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	batch, err = s.claim(ctx, batch)
	if err != nil {
		return 0, err
	}
	var sent int64
	for _, d := range batch {
		if ctx.Err() != nil {
			break
		}
		msg, err := buildMessage(s.cfg.SMTP.From, d.recipient, d.subject, d.text, d.html, s.db.Now())
		if err == nil {
			err = s.cfg.SMTP.Send(ctx, d.recipient, msg)
		}
		if err == nil {
			sent++
		}
		if rerr := s.settle(ctx, d, err); rerr != nil {
			return sent, rerr
		}
	}
	return sent, nil
}

// claim takes the messages of batch that no concurrent run took (a
// conditional write on the next_attempt_at it read), pushing their next
// attempt claimLease ahead, and returns them.
func (s *Service) claim(ctx context.Context, batch []due) ([]due, error) {
	const op = "notifications.claim"
	var mine []due
	err := s.write.Do(ctx, func(tx *sqldb.Tx) error {
		mine = mine[:0]
		lease := sqldb.Micros(tx.Now.Add(claimLease))
		for _, d := range batch {
			res, err := tx.ExecContext(ctx, `UPDATE notifications_messages SET next_attempt_at = $3
				WHERE id = $1 AND status = 'queued' AND next_attempt_at = $2`, d.id, d.next, lease)
			if err != nil {
				return errs.E(op, errs.Internal, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return errs.E(op, errs.Internal, err)
			} else if n == 1 {
				mine = append(mine, d)
			}
		}
		return nil
	})
	return mine, err
}

// settle records the outcome of one send: sent; queued again after the
// backoff (a temporary failure with attempts left); or failed. A sent or
// failed message keeps no bodies.
func (s *Service) settle(ctx context.Context, d due, sendErr error) error {
	const op = "notifications.settle"
	attempts := d.attempts + 1
	return s.write.Do(ctx, func(tx *sqldb.Tx) error {
		now := sqldb.Micros(tx.Now)
		var err error
		var se *sendError
		switch {
		case sendErr == nil:
			_, err = tx.ExecContext(ctx, `UPDATE notifications_messages SET status = $2, attempts = $3, last_error = '',
				sent_at = $4, text_body = '', html_body = '' WHERE id = $1 AND status = 'queued'`, d.id, StatusSent, attempts, now)
		case errors.As(sendErr, &se) && se.temporary && attempts < s.cfg.MaxAttempts:
			next := tx.Now.Add(s.backoff(attempts))
			_, err = tx.ExecContext(ctx, `UPDATE notifications_messages SET attempts = $2, last_error = $3, next_attempt_at = $4
				WHERE id = $1 AND status = 'queued'`, d.id, attempts, clip(sendErr.Error()), sqldb.Micros(next))
		default:
			_, err = tx.ExecContext(ctx, `UPDATE notifications_messages SET status = $2, attempts = $3, last_error = $4,
				text_body = '', html_body = '' WHERE id = $1 AND status = 'queued'`, d.id, StatusFailed, attempts, clip(sendErr.Error()))
		}
		if err != nil {
			return errs.E(op, errs.Internal, err)
		}
		return nil
	})
}

// backoff is the wait after the attempts-th failure: RetryBase·2^(attempts-1),
// at most RetryCap.
func (s *Service) backoff(attempts int) time.Duration {
	d := s.cfg.RetryBase
	for i := 1; i < attempts && d < s.cfg.RetryCap; i++ {
		d *= 2
	}
	return min(d, s.cfg.RetryCap)
}

func clip(s string) string {
	if len(s) > maxErrorLen {
		return s[:maxErrorLen]
	}
	return s
}
