package payments

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// Status is a payment intent's status.
type Status string

// The intent statuses. The providers capture at once today, so an intent
// goes requires_action → captured (or failed); authorized is reserved for
// a manual capture.
const (
	StatusRequiresAction    Status = "requires_action"
	StatusAuthorized        Status = "authorized"
	StatusCaptured          Status = "captured"
	StatusFailed            Status = "failed"
	StatusRefunded          Status = "refunded"
	StatusPartiallyRefunded Status = "partially_refunded"
)

// Intent is an order's payment: what is owed, captured and refunded.
type Intent struct {
	ID          string      `json:"id"`
	OrderID     string      `json:"order_id"`
	Provider    string      `json:"provider"`
	ProviderRef string      `json:"provider_ref,omitempty"`
	Status      Status      `json:"status"`
	Amount      money.Money `json:"amount"`
	Captured    money.Money `json:"captured"`
	Refunded    money.Money `json:"refunded"`
	Attempts    []Attempt   `json:"attempts"`
	Refunds     []Refund    `json:"refunds"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`

	customerID sql.NullString
}

// Attempt is one pay request's charge at the provider.
type Attempt struct {
	ID          string    `json:"id"`
	Status      string    `json:"status" doc:"pending, requires_action, captured, failed or voided."`
	ProviderRef string    `json:"provider_ref,omitempty"`
	Failure     string    `json:"failure,omitempty"`
	CreatedAt   time.Time `json:"created_at"`

	intentID, providerKey, token string
}

// Refund is one refund of a captured payment.
type Refund struct {
	ID          string      `json:"id"`
	PaymentID   string      `json:"payment_id"`
	OrderID     string      `json:"order_id"`
	Status      string      `json:"status" doc:"pending or succeeded."`
	Amount      money.Money `json:"amount"`
	Reason      string      `json:"reason"`
	ProviderRef string      `json:"provider_ref,omitempty"`
	CreatedAt   time.Time   `json:"created_at"`
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

const intentCols = `id, order_id, customer_id, provider, COALESCE(provider_ref, ''), status, currency, amount, captured, refunded, created_at, updated_at`

func scanIntent(row interface{ Scan(...any) error }) (Intent, error) {
	var in Intent
	var cur string
	var amount, captured, refunded, created, updated int64
	if err := row.Scan(&in.ID, &in.OrderID, &in.customerID, &in.Provider, &in.ProviderRef, &in.Status, &cur,
		&amount, &captured, &refunded, &created, &updated); err != nil {
		return Intent{}, err
	}
	var err error
	if in.Amount, err = money.New(amount, cur); err != nil {
		return Intent{}, err
	}
	in.Captured, in.Refunded = money.MustNew(captured, cur), money.MustNew(refunded, cur)
	in.CreatedAt, in.UpdatedAt = sqldb.FromMicros(created), sqldb.FromMicros(updated)
	return in, nil
}

// intentOf reads order orderID's intent (NotFound when it has none).
func intentOf(ctx context.Context, q querier, orderID string) (Intent, error) {
	in, err := scanIntent(q.QueryRowContext(ctx, `SELECT `+intentCols+` FROM payments_intents WHERE order_id = $1`, orderID))
	if errors.Is(err, sql.ErrNoRows) {
		return Intent{}, errs.E("payments.intent", errs.NotFound, "the order has no payment")
	}
	if err != nil {
		return Intent{}, errs.E("payments.intent", errs.Internal, err)
	}
	return in, nil
}

// withDetail fills in's attempts and refunds.
func withDetail(ctx context.Context, q querier, in *Intent) error {
	const op = "payments.detail"
	rows, err := q.QueryContext(ctx, `SELECT id, status, COALESCE(provider_ref, ''), COALESCE(failure, ''), created_at
		FROM payments_attempts WHERE intent_id = $1 ORDER BY created_at, id`, in.ID)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	in.Attempts = []Attempt{}
	for rows.Next() {
		var a Attempt
		var at int64
		if err := rows.Scan(&a.ID, &a.Status, &a.ProviderRef, &a.Failure, &at); err != nil {
			rows.Close()
			return errs.E(op, errs.Internal, err)
		}
		a.CreatedAt = sqldb.FromMicros(at)
		in.Attempts = append(in.Attempts, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	in.Refunds, err = refundsOf(ctx, q, *in)
	return err
}

func refundsOf(ctx context.Context, q querier, in Intent) ([]Refund, error) {
	const op = "payments.refunds"
	rows, err := q.QueryContext(ctx, `SELECT id, status, amount, reason, COALESCE(provider_ref, ''), created_at
		FROM payments_refunds WHERE intent_id = $1 ORDER BY created_at, id`, in.ID)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	out := []Refund{}
	for rows.Next() {
		rf := Refund{PaymentID: in.ID, OrderID: in.OrderID}
		var amount, at int64
		if err := rows.Scan(&rf.ID, &rf.Status, &amount, &rf.Reason, &rf.ProviderRef, &at); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		rf.Amount, rf.CreatedAt = money.MustNew(amount, in.Amount.Currency()), sqldb.FromMicros(at)
		out = append(out, rf)
	}
	return out, rows.Err()
}

// Payment returns order orderID's payment with its attempts and refunds
// (staff; NotFound when the order was never paid for).
func (s *Service) Payment(ctx context.Context, orderID string) (Intent, error) {
	in, err := intentOf(ctx, s.db.Reader(), orderID)
	if err != nil {
		return Intent{}, err
	}
	return in, withDetail(ctx, s.db.Reader(), &in)
}

// attemptByKey reads the attempt made under providerKey.
func attemptByKey(ctx context.Context, q querier, key string) (Attempt, error) {
	var a Attempt
	var at int64
	err := q.QueryRowContext(ctx, `SELECT id, intent_id, provider_key, token, status, COALESCE(provider_ref, ''), created_at
		FROM payments_attempts WHERE provider_key = $1`, key).Scan(&a.ID, &a.intentID, &a.providerKey, &a.token, &a.Status, &a.ProviderRef, &at)
	if err != nil {
		return Attempt{}, errs.E("payments.attempt", errs.Internal, err)
	}
	a.CreatedAt = sqldb.FromMicros(at)
	return a, nil
}

// exec runs one statement in tx and reports the rows it affected.
func exec(ctx context.Context, tx *sqldb.Tx, op, q string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	return n, nil
}

// export is the customer's part of a data export: their orders' payments
// with attempts and refunds.
func (s *Service) export(ctx context.Context, userID string) (any, error) {
	const op = "payments.export"
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+intentCols+` FROM payments_intents WHERE customer_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	out := []Intent{}
	for rows.Next() {
		in, err := scanIntent(rows)
		if err != nil {
			rows.Close()
			return nil, errs.E(op, errs.Internal, err)
		}
		out = append(out, in)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	for i := range out {
		if err := withDetail(ctx, s.db.Reader(), &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// erase anonymises userID's payments in tx: the customer id goes; the
// amounts, attempts and refunds stay (accounting facts, tied to the order).
func (s *Service) erase(ctx context.Context, tx *sqldb.Tx, userID string) error {
	_, err := exec(ctx, tx, "payments.erase", `UPDATE payments_intents SET customer_id = NULL WHERE customer_id = $1`, userID)
	return err
}
