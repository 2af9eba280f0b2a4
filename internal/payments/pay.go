package payments

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"mercato/internal/money"
	"mercato/internal/orders"
	"mercato/internal/payments/provider"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// CodeRequiresAction is the 402 code of a payment that waits for the
// customer (3-D Secure): the problem's detail names the challenge's URL;
// once done, POST /api/v1/orders/{id}/pay/confirm.
const CodeRequiresAction errs.Code = "payment_requires_action"

// CodeOutcomeUnknown is the 503 code of a charge whose answer was lost:
// retry with the same Idempotency-Key (it never charges twice).
const CodeOutcomeUnknown errs.Code = "payment_outcome_unknown"

// providerKey is the idempotency key sent to the provider for a pay
// attempt: derived from the order and the caller's key, so that a retry of
// the request asks the provider the same question; a request without a
// key is a new attempt.
func providerKey(orderID, key string) string {
	if key == "" {
		b := make([]byte, 16)
		rand.Read(b)
		key = "nokey:" + hex.EncodeToString(b)
	}
	sum := sha256.Sum256([]byte("mercato-pay\x00" + orderID + "\x00" + key))
	return "mp_" + hex.EncodeToString(sum[:20])
}

func (s *Service) provider(method string) (provider.Provider, error) {
	p, ok := s.providers[method]
	if !ok {
		return nil, errs.E("payments.provider", errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "method", Message: "is not a payment method of this shop"}})
	}
	return p, nil
}

func invalidToken(msg string) error {
	return errs.E("payments.Pay", errs.Invalid, errs.CodeValidation, "the request has invalid fields",
		[]errs.FieldError{{Field: "token", Message: msg}})
}

// Charge implements orders.PaymentMethod for callers that charge inside
// their unit: the payments module never does (it is a PaymentPreparer).
func (s *Service) Charge(context.Context, string, string, string, money.Money) (string, error) {
	return "", errs.E("payments.Charge", errs.Internal, "payments charges through PrepareCharge")
}

// PrepareCharge implements orders.PaymentPreparer. Outside any
// transaction: it records the attempt (pending, under its provider key) in
// its own unit, calls the provider, and then
//   - captured: returns the commit that records the capture and appends
//     payment.captured in the unit that moves the order to paid;
//   - declined: records the failure and payment.failed, 402 payment_declined;
//   - requires action (3-D Secure): records it, 402 payment_requires_action;
//   - answer lost: 503 payment_outcome_unknown, the attempt left pending
//     (a retry with the same key asks the provider again under the same
//     provider key; payments.reconcile settles it otherwise).
func (s *Service) PrepareCharge(ctx context.Context, a orders.PayAttempt) (orders.Charged, error) {
	const op = "payments.Pay"
	p, err := s.provider(a.Method)
	if err != nil {
		return nil, err
	}
	if cardLike(a.Token) {
		return nil, invalidToken("must be a provider's payment token: card numbers are never accepted")
	}
	key := providerKey(a.OrderID, a.Key)
	att, err := s.recordAttempt(ctx, a, key)
	if err != nil {
		return nil, err
	}
	ch, err := p.Charge(ctx, provider.ChargeRequest{Key: key, OrderID: a.OrderID, Amount: a.Amount, Token: a.Token})
	if err != nil {
		return nil, s.chargeError(ctx, att, err)
	}
	if err := s.crashAt("after_charge"); err != nil {
		return nil, err
	}
	return s.outcome(ctx, att, a.OrderID, ch)
}

// outcome turns a provider's answer for att into the pay request's answer.
func (s *Service) outcome(ctx context.Context, att Attempt, orderID string, ch provider.Charge) (orders.Charged, error) {
	const op = "payments.Pay"
	switch ch.Status {
	case provider.Captured:
		return func(ctx context.Context, tx *sqldb.Tx) ([]*event.Envelope, error) {
			ev, ok, err := s.captureTx(ctx, tx, att, ch)
			if !ok {
				return nil, err
			}
			return []*event.Envelope{&ev}, nil
		}, nil
	case provider.RequiresAction:
		if err := s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.requiresActionTx(ctx, tx, att, ch) }); err != nil {
			return nil, err
		}
		return nil, errs.E(op, errs.PaymentDeclined, CodeRequiresAction,
			"the payment requires the customer's action at "+ch.NextActionURL+
				"; then POST /api/v1/orders/"+orderID+"/pay/confirm")
	default:
		if err := s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.failTx(ctx, tx, att, ch.DeclineReason) }); err != nil {
			return nil, err
		}
		return nil, errs.E(op, errs.PaymentDeclined, errs.CodePaymentDeclined, "the payment was declined")
	}
}

func (s *Service) chargeError(ctx context.Context, att Attempt, err error) error {
	const op = "payments.Pay"
	if errors.Is(err, provider.ErrUnknownToken) {
		// Nothing was charged: the attempt is void, and the 422 leaves no trace.
		_ = s.write.Do(ctx, func(tx *sqldb.Tx) error {
			_, err := exec(ctx, tx, op, `UPDATE payments_attempts SET status = 'failed', failure = 'unknown_token', updated_at = $1
				WHERE id = $2 AND status = 'pending'`, sqldb.Micros(tx.Now), att.ID)
			return err
		})
		return invalidToken("is not a token of this payment method")
	}
	s.logger.Warn("payments: provider call failed", "attempt", att.ID, "err", err)
	return errs.E(op, errs.Unavailable, CodeOutcomeUnknown,
		"the payment provider did not answer; retry with the same Idempotency-Key", err)
}

func (s *Service) crashAt(point string) error {
	if s.crash == nil {
		return nil
	}
	return s.crash(point)
}

// recordAttempt writes order a.OrderID's intent (once) and the attempt
// under key (once: a retry of the same request finds it) in a unit of its
// own, committed before the provider is called. On the first pay of an
// order it writes two rows and reads nothing: what it inserted is what
// it answers. The unit is Prompt: tiny, and the pay has the provider call
// and the capture's unit still to go once it is durable, so the batcher
// commits it right after the batch in progress instead of with the next
// full one.
func (s *Service) recordAttempt(ctx context.Context, a orders.PayAttempt, key string) (Attempt, error) {
	const op = "payments.recordAttempt"
	var att Attempt
	err := s.write.Run(ctx, sqldb.Unit{Prompt: true, Run: func(tx *sqldb.Tx) error {
		now := sqldb.Micros(tx.Now)
		var cust any
		if a.CustomerID != "" {
			cust = a.CustomerID
		}
		intentID := newID()
		n, err := exec(ctx, tx, op, `INSERT INTO payments_intents (id, order_id, customer_id, provider, currency, amount, status, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'requires_action', $7, $7) ON CONFLICT (order_id) DO NOTHING`,
			intentID, a.OrderID, cust, a.Method, a.Amount.Currency(), a.Amount.Amount(), now)
		if err != nil {
			return err
		}
		if n == 0 { // the order's intent exists: an earlier attempt, or paid meanwhile
			in, err := intentOf(ctx, tx, a.OrderID)
			if err != nil {
				return err
			}
			if in.Amount != a.Amount {
				return errs.E(op, errs.Internal, "the order's total differs from its payment's amount")
			}
			if in.Captured.Amount() > 0 {
				// Paid meanwhile by another request: charge nothing more.
				return errs.E(op, errs.Conflict, errs.CodeInvalidTransition, "the order is paid already")
			}
			intentID = in.ID
		}
		att = Attempt{ID: newID(), Status: "pending", CreatedAt: sqldb.FromMicros(now), intentID: intentID, providerKey: key, token: a.Token}
		if n, err = exec(ctx, tx, op, `INSERT INTO payments_attempts (id, intent_id, provider_key, token, status, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 'pending', $5, $5) ON CONFLICT (provider_key) DO NOTHING`, att.ID, intentID, key, a.Token, now); err != nil {
			return err
		}
		if n == 0 { // a retry of the request: its attempt, as it stands
			att, err = attemptByKey(ctx, tx, key)
		}
		return err
	}})
	if err != nil {
		return Attempt{}, err
	}
	return att, nil
}

// captureTx records in tx that the provider captured att: the attempt and
// its intent move to captured. It returns payment.captured for the caller
// to append (with order.paid: one outbox.Append). It reports false (and
// changes nothing) when att was captured already: a webhook, a confirm
// and a reconciliation may all report one capture.
func (s *Service) captureTx(ctx context.Context, tx *sqldb.Tx, att Attempt, ch provider.Charge) (event.Envelope, bool, error) {
	const op = "payments.capture"
	n, err := exec(ctx, tx, op, `UPDATE payments_attempts SET status = 'captured', provider_ref = $1, updated_at = $2
		WHERE id = $3 AND status IN ('pending', 'requires_action')`, ch.Ref, sqldb.Micros(tx.Now), att.ID)
	if err != nil || n == 0 {
		return event.Envelope{}, false, err
	}
	var orderID, prov, cur string
	var amount int64
	if err := tx.QueryRowContext(ctx, `UPDATE payments_intents SET status = 'captured', captured = amount, provider_ref = $1, updated_at = $2
		WHERE id = $3 AND captured = 0 RETURNING order_id, provider, currency, amount`, ch.Ref, sqldb.Micros(tx.Now), att.intentID).
		Scan(&orderID, &prov, &cur, &amount); err != nil {
		// Captured already by another attempt: a second capture at the
		// provider, which reconciliation reports.
		return event.Envelope{}, false, errs.E(op, errs.Conflict, errs.CodeInvalidTransition, "the order's payment is captured already", err)
	}
	ev, err := PaymentCaptured.New(att.intentID, tx.Now, CapturedData{PaymentID: att.intentID, OrderID: orderID, Provider: prov,
		ProviderRef: ch.Ref, Amount: amount, Currency: cur})
	if err != nil {
		return event.Envelope{}, false, errs.E(op, errs.Internal, err)
	}
	return ev, true, nil
}

// failTx records in tx that att was declined (payment.failed).
func (s *Service) failTx(ctx context.Context, tx *sqldb.Tx, att Attempt, reason string) error {
	const op = "payments.fail"
	if reason == "" {
		reason = "declined"
	}
	n, err := exec(ctx, tx, op, `UPDATE payments_attempts SET status = 'failed', failure = $1, updated_at = $2
		WHERE id = $3 AND status IN ('pending', 'requires_action')`, reason, sqldb.Micros(tx.Now), att.ID)
	if err != nil || n == 0 {
		return err
	}
	var orderID, prov string
	if err := tx.QueryRowContext(ctx, `SELECT order_id, provider FROM payments_intents WHERE id = $1`, att.intentID).Scan(&orderID, &prov); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if _, err := exec(ctx, tx, op, `UPDATE payments_intents SET status = 'failed', updated_at = $1 WHERE id = $2 AND captured = 0`,
		sqldb.Micros(tx.Now), att.intentID); err != nil {
		return err
	}
	ev, err := PaymentFailed.New(att.intentID, tx.Now, FailedData{PaymentID: att.intentID, OrderID: orderID, Provider: prov, Reason: reason})
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	return outbox.Append(ctx, tx, &ev)
}

func (s *Service) requiresActionTx(ctx context.Context, tx *sqldb.Tx, att Attempt, ch provider.Charge) error {
	const op = "payments.requiresAction"
	if _, err := exec(ctx, tx, op, `UPDATE payments_attempts SET status = 'requires_action', provider_ref = $1, updated_at = $2
		WHERE id = $3 AND status = 'pending'`, ch.Ref, sqldb.Micros(tx.Now), att.ID); err != nil {
		return err
	}
	_, err := exec(ctx, tx, op, `UPDATE payments_intents SET status = 'requires_action', provider_ref = $1, updated_at = $2
		WHERE id = $3 AND captured = 0`, ch.Ref, sqldb.Micros(tx.Now), att.intentID)
	return err
}

// Confirm completes order orderID's payment that required the customer's
// action (3-D Secure) for caller: the provider is asked outside any
// transaction; a capture commits with order.paid in one unit. It is the
// work of POST /api/v1/orders/{id}/pay/confirm (see routes.go).
func (s *Service) confirmPrepare(ctx context.Context, orderID string) (Attempt, provider.Charge, error) {
	const op = "payments.Confirm"
	in, err := intentOf(ctx, s.db.Reader(), orderID)
	if err != nil {
		return Attempt{}, provider.Charge{}, errs.E(op, errs.Conflict, errs.CodeInvalidTransition, "the order's payment requires no action")
	}
	var key string
	err = s.db.Reader().QueryRowContext(ctx, `SELECT provider_key FROM payments_attempts WHERE intent_id = $1 AND status = 'requires_action'
		ORDER BY created_at DESC, id DESC LIMIT 1`, in.ID).Scan(&key)
	if err != nil {
		return Attempt{}, provider.Charge{}, errs.E(op, errs.Conflict, errs.CodeInvalidTransition, "the order's payment requires no action")
	}
	att, err := attemptByKey(ctx, s.db.Reader(), key)
	if err != nil {
		return Attempt{}, provider.Charge{}, err
	}
	p, err := s.provider(in.Provider)
	if err != nil {
		return Attempt{}, provider.Charge{}, err
	}
	ch, err := p.Confirm(ctx, key, att.ProviderRef)
	if err != nil {
		return Attempt{}, provider.Charge{}, errs.E(op, errs.Unavailable, CodeOutcomeUnknown,
			"the payment provider did not answer; retry with the same Idempotency-Key", err)
	}
	return att, ch, nil
}

// paidTx records the capture of att and moves the order to paid in tx,
// payment.captured appended with order.paid.
func (s *Service) paidTx(ctx context.Context, tx *sqldb.Tx, att Attempt, orderID, method string, ch provider.Charge) (orders.Order, error) {
	ev, ok, err := s.captureTx(ctx, tx, att, ch)
	if err != nil {
		return orders.Order{}, err
	}
	if !ok {
		return s.orders.MarkPaidTx(ctx, tx, orderID, method)
	}
	return s.orders.MarkPaidTx(ctx, tx, orderID, method, &ev)
}

// cardLike reports whether s holds a run of 12 to 19 digits (spaces and
// dashes between them allowed) that passes the Luhn check: what a card
// number looks like. mercato never receives card numbers (card entry is
// the provider's hosted page), so such input is refused wherever a client
// may type text: tokens, refund reasons.
func cardLike(s string) bool {
	var digits []byte
	flush := func() bool {
		ok := len(digits) >= 12 && len(digits) <= 19 && luhn(digits)
		digits = digits[:0]
		return ok
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case (c == ' ' || c == '-') && len(digits) > 0:
			// a separator inside a number
		default:
			if flush() {
				return true
			}
		}
	}
	return flush()
}

// luhn reports whether digits pass the Luhn checksum.
func luhn(digits []byte) bool {
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}
