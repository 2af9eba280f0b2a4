package payments

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"mercato/internal/audit"
	"mercato/internal/money"
	"mercato/internal/orders"
	"mercato/internal/payments/provider"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// RefundRequest is POST /api/v1/admin/orders/{id}/refunds's body.
type RefundRequest struct {
	Amount money.Money `json:"amount" doc:"Positive, in the order's currency, at most what is captured and not yet refunded."`
	Reason string      `json:"reason" maxlen:"500" doc:"Why (kept with the refund and in the audit log)."`
}

// pendingRefund is a refund reserved and sent to the provider, to commit.
type pendingRefund struct {
	id, intentID, orderID, reason string
	amount                        money.Money
	providerRef                   string
}

// refundKey is a refund's provider idempotency key, derived from the
// order and the caller's key (random without one).
func refundKey(orderID, key string) string {
	if key == "" {
		b := make([]byte, 16)
		rand.Read(b)
		key = "nokey:" + hex.EncodeToString(b)
	}
	sum := sha256.Sum256([]byte("mercato-refund\x00" + orderID + "\x00" + key))
	return "mr_" + hex.EncodeToString(sum[:20])
}

// prepareRefund validates in, reserves the refund (a conditional UPDATE
// adding its amount to the intent's refunded only while the sum stays
// within captured: of racing refunds, never more than captured passes) in
// a unit of its own, and asks the provider for it — outside any
// transaction. A refund above what is left is 422 on amount. A provider
// that does not answer leaves the refund pending (503): a retry with the
// same key sends the same provider key and reserves nothing again.
func (s *Service) prepareRefund(ctx context.Context, orderID string, in RefundRequest, actorID, idemKey string) (pendingRefund, error) {
	const op = "payments.Refund"
	var v errs.Validation
	v.Check(in.Amount.Currency() != "", "amount", "is required")
	v.Check(in.Amount.Amount() > 0, "amount", "must be positive")
	reason := strings.TrimSpace(in.Reason)
	v.Check(reason != "", "reason", "is required")
	v.Check(!cardLike(reason), "reason", "must not hold a card number")
	if err := v.Err(op); err != nil {
		return pendingRefund{}, err
	}
	if _, err := s.orders.Get(ctx, orders.Caller{}, orderID, true); err != nil {
		return pendingRefund{}, err
	}
	above := errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
		[]errs.FieldError{{Field: "amount", Message: "exceeds what is captured and not yet refunded"}})
	intent, err := intentOf(ctx, s.db.Reader(), orderID)
	if errs.Is(err, errs.NotFound) {
		return pendingRefund{}, above
	}
	if err != nil {
		return pendingRefund{}, err
	}
	if in.Amount.Currency() != intent.Amount.Currency() {
		return pendingRefund{}, errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "amount", Message: "must be in the order's currency, " + intent.Amount.Currency()}})
	}
	key := refundKey(orderID, idemKey)
	pr := pendingRefund{intentID: intent.ID, orderID: orderID, reason: reason, amount: in.Amount}
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error {
		n, err := exec(ctx, tx, op, `INSERT INTO payments_refunds (id, intent_id, provider_key, status, amount, reason, actor_id, created_at)
			VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7) ON CONFLICT (provider_key) DO NOTHING`,
			newID(), intent.ID, key, in.Amount.Amount(), reason, actorID, sqldb.Micros(tx.Now))
		if err != nil || n == 0 {
			return err // n == 0: a retry of a refund reserved already
		}
		n, err = exec(ctx, tx, op, `UPDATE payments_intents SET refunded = refunded + $1, updated_at = $2
			WHERE id = $3 AND refunded + $1 <= captured`, in.Amount.Amount(), sqldb.Micros(tx.Now), intent.ID)
		if err == nil && n == 0 {
			err = above
		}
		return err
	})
	if err != nil {
		return pendingRefund{}, err
	}
	var status string
	var amount int64
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT id, status, amount FROM payments_refunds WHERE provider_key = $1`, key).
		Scan(&pr.id, &status, &amount); err != nil {
		return pendingRefund{}, errs.E(op, errs.Internal, err)
	}
	if status != "pending" || amount != in.Amount.Amount() {
		return pendingRefund{}, errs.E(op, errs.Conflict, errs.CodeConflict, "this refund was made already")
	}
	p, err := s.provider(intent.Provider)
	if err != nil {
		return pendingRefund{}, err
	}
	rf, err := p.Refund(ctx, provider.RefundRequest{Key: key, Ref: intent.ProviderRef, Amount: in.Amount})
	if err != nil {
		s.logger.Warn("payments: refund at the provider failed", "refund", pr.id, "err", err)
		return pendingRefund{}, errs.E(op, errs.Unavailable, CodeOutcomeUnknown,
			"the payment provider did not answer; retry with the same Idempotency-Key", err)
	}
	pr.providerRef = rf.Ref
	return pr, nil
}

// commitRefundTx records the provider's refund in tx: the refund succeeds,
// the intent's status follows its totals (refunded or partially_refunded),
// payment.refunded is appended, the staff action audited, and the order's
// payment_status moved (orders.RefundedTx; a full refund of a paid,
// unshipped order cancels it).
func (s *Service) commitRefundTx(ctx context.Context, tx *sqldb.Tx, pr pendingRefund, actorID, ip string) (Refund, error) {
	const op = "payments.Refund"
	n, err := exec(ctx, tx, op, `UPDATE payments_refunds SET status = 'succeeded', provider_ref = $1 WHERE id = $2 AND status = 'pending'`,
		pr.providerRef, pr.id)
	if err != nil {
		return Refund{}, err
	}
	rf := Refund{ID: pr.id, PaymentID: pr.intentID, OrderID: pr.orderID, Status: "succeeded", Amount: pr.amount,
		Reason: pr.reason, ProviderRef: pr.providerRef, CreatedAt: tx.Now}
	if n == 0 {
		return rf, nil // committed already (reconciliation sent it under the same key)
	}
	var refunded, captured int64
	if err := tx.QueryRowContext(ctx, `UPDATE payments_intents SET status = CASE WHEN refunded >= captured THEN 'refunded' ELSE 'partially_refunded' END,
		updated_at = $1 WHERE id = $2 RETURNING refunded, captured`, sqldb.Micros(tx.Now), pr.intentID).Scan(&refunded, &captured); err != nil {
		return Refund{}, errs.E(op, errs.Internal, err)
	}
	cur := pr.amount.Currency()
	ev, err := PaymentRefunded.New(pr.intentID, tx.Now, RefundedData{PaymentID: pr.intentID, OrderID: pr.orderID, RefundID: pr.id,
		Amount: pr.amount.Amount(), TotalRefunded: refunded, Currency: cur, Reason: pr.reason})
	if err != nil {
		return Refund{}, errs.E(op, errs.Internal, err)
	}
	if err := outbox.Append(ctx, tx, &ev); err != nil {
		return Refund{}, err
	}
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: "payment.refunded", TargetType: "order",
		TargetID: pr.orderID, IP: ip, After: rf}); err != nil {
		return Refund{}, err
	}
	if _, err := s.orders.RefundedTx(ctx, tx, pr.orderID, refunded, captured); err != nil {
		return Refund{}, err
	}
	return rf, nil
}
