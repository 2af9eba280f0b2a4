package payments

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"

	"mercato/internal/orders"
	"mercato/internal/payments/provider"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/idem"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// ConfirmRequest is POST /api/v1/orders/{id}/pay/confirm's body: nothing
// (the provider knows whether the customer passed the challenge).
type ConfirmRequest struct{}

// WebhookAnswer is the answer to a provider's webhook.
type WebhookAnswer struct {
	Received bool `json:"received"`
	Applied  bool `json:"applied" doc:"Whether the event changed anything (false: known already, or about nothing of ours)."`
}

func (s *Service) routes() []web.Route {
	const tag = "payments"
	return []web.Route{
		{Method: "POST", Path: "/api/v1/orders/{id}/pay/confirm", Summary: "Confirm a payment after 3-D Secure", Tag: tag, Access: web.Public,
			Description: "After a pay answered 402 payment_requires_action and the customer completed the challenge: 200 the paid order; still not done: 402 payment_requires_action; declined: 402 payment_declined; nothing to confirm: 409 invalid_transition. Who may read the order may confirm it.",
			Request:     ConfirmRequest{}, Response: orders.Order{}, Handler: s.handleConfirm},
		{Method: "POST", Path: "/api/v1/payments/webhooks/{provider}", Summary: "A payment provider's webhook", Tag: tag, Access: web.Public,
			Description: "Signed by the provider (sandbox: `Sandbox-Signature`, Stripe: `Stripe-Signature`; a bad or stale signature is 400 and changes nothing). Idempotent by the provider's event id: a redelivery replays the first answer.",
			Response:    WebhookAnswer{}, Handler: s.handleWebhook},
		{Method: "POST", Path: "/api/v1/admin/orders/{id}/refunds", Summary: "Refund an order's payment", Tag: tag, Access: web.Permission(PermRefund),
			Description: "Full or partial; the total of refunds never exceeds what was captured (above: 422 on amount). payment_status becomes partially_refunded or refunded; a full refund of a paid order that has not shipped cancels it. Audited.",
			Request:     RefundRequest{}, Response: Refund{}, Status: http.StatusCreated, Handler: s.handleRefund},
		{Method: "GET", Path: "/api/v1/admin/orders/{id}/payment", Summary: "An order's payment", Tag: tag, Access: web.Permission(PermRead),
			Description: "The payment intent with its attempts and refunds; 404 when the order was never paid for.",
			Response:    Intent{}, Handler: s.handleGet},
	}
}

// callerOf is the request's caller as the orders module sees it.
func callerOf(r *http.Request) orders.Caller {
	c := orders.Caller{Channel: "web"}
	if p, ok := web.PrincipalFrom(r.Context()); ok {
		c.CustomerID = p.UserID
	}
	if tok := r.Header.Get(orders.HeaderCartToken); len(tok) <= 100 {
		c.CartToken = tok
	}
	return c
}

func (s *Service) handleConfirm(w http.ResponseWriter, r *http.Request) {
	var in ConfirmRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	c, id := callerOf(r), r.PathValue("id")
	var att Attempt
	var ch provider.Charge
	var method string
	m := web.Mutation{
		Prepare: func(ctx context.Context) error {
			if _, err := s.orders.Get(ctx, c, id, false); err != nil {
				return err
			}
			var err error
			if att, ch, err = s.confirmPrepare(ctx, id); err != nil {
				return err
			}
			in, err := intentOf(ctx, s.db.Reader(), id)
			if err != nil {
				return err
			}
			method = in.Provider
			if ch.Status != provider.Captured {
				_, err := s.outcome(ctx, att, id, ch)
				return err
			}
			return nil
		},
		Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
			o, err := s.paidTx(ctx, tx, att, id, method, ch)
			return http.StatusOK, o, err
		},
	}
	if c.CartToken != "" {
		sum := sha256.Sum256([]byte(c.CartToken))
		m.Scope = "cart:" + hex.EncodeToString(sum[:])
	}
	s.idem.Run(w, r, s.write, m)
}

func (s *Service) handleRefund(w http.ResponseWriter, r *http.Request) {
	var in RefundRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	p, _ := web.PrincipalFrom(r.Context())
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	id := r.PathValue("id")
	var pr pendingRefund
	s.idem.Run(w, r, s.write, web.Mutation{
		Prepare: func(ctx context.Context) (err error) {
			pr, err = s.prepareRefund(ctx, id, in, p.UserID, r.Header.Get(web.HeaderIdempotencyKey))
			return err
		},
		Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
			rf, err := s.commitRefundTx(ctx, tx, pr, p.UserID, ip)
			return http.StatusCreated, rf, err
		},
	})
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	in, err := s.Payment(r.Context(), r.PathValue("id"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, in)
}

// handleWebhook verifies a provider's webhook and applies it once: it runs
// through the idempotency store keyed by the provider's event id (scope
// "webhook:<provider>"), so a redelivery replays the first answer and
// changes nothing.
func (s *Service) handleWebhook(w http.ResponseWriter, r *http.Request) {
	const op = "payments.Webhook"
	p, ok := s.providers[r.PathValue("provider")]
	if !ok {
		web.Error(w, r, errs.E(op, errs.NotFound, "no such payment provider"))
		return
	}
	body, err := web.Body(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	ev, err := p.ParseWebhook(body, r.Header)
	if err != nil {
		web.Error(w, r, errs.E(op, errs.Malformed, "the webhook's signature does not verify", err))
		return
	}
	if len(ev.ID) > web.MaxIdempotencyKey {
		web.Error(w, r, errs.E(op, errs.Malformed, "the webhook's event id is too long"))
		return
	}
	res, err := s.idem.Store().Do(r.Context(), s.write, idem.Request{Scope: "webhook:" + p.Name(), Key: ev.ID, Material: body},
		func(ctx context.Context, tx *sqldb.Tx) (idem.Outcome, error) {
			applied, err := s.applyEventTx(ctx, tx, p, ev)
			if err != nil {
				return idem.Outcome{}, err
			}
			b, _ := json.Marshal(WebhookAnswer{Received: true, Applied: applied})
			return idem.Outcome{Status: http.StatusOK, ContentType: "application/json", Body: b}, nil
		})
	switch {
	case errors.Is(err, idem.ErrKeyReused):
		web.Error(w, r, errs.E(op, errs.Malformed, "another webhook carried this event id"))
		return
	case errors.Is(err, idem.ErrKeyInUse):
		web.Error(w, r, errs.E(op, errs.Conflict, errs.CodeIdemInUse, "this event is being processed; retry later"))
		return
	case err != nil:
		web.Error(w, r, err)
		return
	}
	if res.Replayed {
		w.Header().Set(web.HeaderReplayed, "true")
	}
	w.Header().Set("Content-Type", res.ContentType)
	w.WriteHeader(res.Status)
	w.Write(res.Body)
}

// applyEventTx applies a verified webhook in tx: a capture records it and
// pays the order (when still pending_payment; otherwise reconciliation
// refunds it), a failure records the decline. It reports whether anything
// changed.
func (s *Service) applyEventTx(ctx context.Context, tx *sqldb.Tx, p provider.Provider, ev provider.Event) (bool, error) {
	const op = "payments.applyEvent"
	if ev.Type != provider.EventCaptured && ev.Type != provider.EventFailed {
		return false, nil
	}
	var key, orderID string
	err := tx.QueryRowContext(ctx, `SELECT a.provider_key, i.order_id FROM payments_attempts a JOIN payments_intents i ON i.id = a.intent_id
		WHERE i.provider = $1 AND (a.provider_ref = $2 OR a.provider_key = $3) ORDER BY a.created_at DESC LIMIT 1`,
		p.Name(), ev.Ref, ev.Key).Scan(&key, &orderID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, errs.E(op, errs.Internal, err)
	}
	att, err := attemptByKey(ctx, tx, key)
	if err != nil {
		return false, err
	}
	if ev.Type == provider.EventFailed {
		if att.Status != "pending" && att.Status != "requires_action" {
			return false, nil
		}
		return true, s.failTx(ctx, tx, att, ev.Reason)
	}
	captured, done, err := s.captureTx(ctx, tx, att, provider.Charge{Ref: ev.Ref, Status: provider.Captured})
	if err != nil || !done {
		return false, err
	}
	_, err = s.orders.MarkPaidTx(ctx, tx, orderID, p.Name(), &captured)
	if errs.CodeOf(err) == errs.CodeInvalidTransition {
		// Not payable any more (reconciliation refunds the capture): the
		// capture is recorded alone, and MarkPaidTx appended nothing.
		return true, outbox.Append(ctx, tx, &captured)
	}
	return err == nil, err
}
