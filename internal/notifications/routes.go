package notifications

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// Preferences are a customer's notification preferences. Transactional
// mail (about their orders) always goes; Marketing opts in to the rest.
type Preferences struct {
	Locale    string `json:"locale" doc:"en or zh-CN: the language of the customer's e-mail (default en)."`
	Marketing bool   `json:"marketing" doc:"Whether the customer accepts non-transactional mail (default false)."`
}

// PreferencesRequest is the body of PUT /api/v1/me/notification-preferences.
type PreferencesRequest struct {
	Locale    string `json:"locale" maxlen:"16" doc:"en or zh-CN."`
	Marketing *bool  `json:"marketing" doc:"Required."`
}

// Message is one entry of the notification log (no bodies).
type Message struct {
	ID         string     `json:"id"`
	CustomerID string     `json:"customer_id" doc:"Empty for a staff alert."`
	Recipient  string     `json:"recipient"`
	Kind       string     `json:"kind" doc:"order_placed, order_paid, order_shipped, order_delivered, order_cancelled, payment_refunded or low_stock."`
	OrderID    string     `json:"order_id" doc:"Empty for a staff alert."`
	Status     string     `json:"status" doc:"queued, sent, failed or skipped."`
	Attempts   int        `json:"attempts"`
	LastError  string     `json:"last_error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	SentAt     *time.Time `json:"sent_at,omitempty"`
}

// queryer is a *sql.DB or a unit's transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// preferences reads customerID's preferences (the defaults when unset).
func (s *Service) preferences(ctx context.Context, q queryer, customerID string) (Preferences, error) {
	p := Preferences{Locale: LocaleEN}
	var marketing int64
	err := q.QueryRowContext(ctx, `SELECT locale, marketing FROM notifications_preferences WHERE customer_id = $1`, customerID).
		Scan(&p.Locale, &marketing)
	if errors.Is(err, sql.ErrNoRows) {
		return p, nil
	}
	if err != nil {
		return Preferences{}, errs.E("notifications.preferences", errs.Internal, err)
	}
	p.Marketing = marketing == 1
	return p, nil
}

// Preferences returns customerID's preferences.
func (s *Service) Preferences(ctx context.Context, customerID string) (Preferences, error) {
	return s.preferences(ctx, s.db.Reader(), customerID)
}

// MayMarket reports whether customerID opted in to non-transactional mail
// (false until they do). Transactional mail does not ask.
func (s *Service) MayMarket(ctx context.Context, customerID string) (bool, error) {
	p, err := s.Preferences(ctx, customerID)
	return p.Marketing, err
}

// SetPreferencesTx validates in and stores it as customerID's preferences.
func (s *Service) SetPreferencesTx(ctx context.Context, tx *sqldb.Tx, customerID string, in PreferencesRequest) (Preferences, error) {
	const op = "notifications.SetPreferences"
	var v errs.Validation
	v.Check(in.Locale == LocaleEN || in.Locale == LocaleZH, "locale", "must be en or zh-CN")
	v.Check(in.Marketing != nil, "marketing", "is required (true or false)")
	if err := v.Err(op); err != nil {
		return Preferences{}, err
	}
	m := int64(0)
	if *in.Marketing {
		m = 1
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO notifications_preferences (customer_id, locale, marketing, updated_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (customer_id) DO UPDATE SET locale = excluded.locale,
		marketing = excluded.marketing, updated_at = excluded.updated_at`, customerID, in.Locale, m, sqldb.Micros(tx.Now)); err != nil {
		return Preferences{}, errs.E(op, errs.Internal, err)
	}
	if err := s.preferencesChanged(ctx, tx, customerID); err != nil {
		return Preferences{}, err
	}
	return Preferences{Locale: in.Locale, Marketing: *in.Marketing}, nil
}

// SetPreferences is SetPreferencesTx as one unit of the write path.
func (s *Service) SetPreferences(ctx context.Context, customerID string, in PreferencesRequest) (p Preferences, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { p, err = s.SetPreferencesTx(ctx, tx, customerID, in); return err })
	return p, err
}

func (s *Service) handleGetPrefs(w http.ResponseWriter, r *http.Request) {
	p, _ := web.PrincipalFrom(r.Context())
	prefs, err := s.Preferences(r.Context(), p.UserID)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, prefs)
}

func (s *Service) handlePutPrefs(w http.ResponseWriter, r *http.Request) {
	var in PreferencesRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	p, _ := web.PrincipalFrom(r.Context())
	prefs, err := s.SetPreferences(r.Context(), p.UserID, in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, prefs)
}

// listKey is the log's keyset position (newest first).
type listKey struct {
	At int64  `json:"at"`
	ID string `json:"id"`
}

// List returns the log, newest first, filtered by customer and status.
func (s *Service) List(ctx context.Context, customerID, status string, page web.PageRequest) (web.Page[Message], error) {
	const op = "notifications.List"
	var v errs.Validation
	v.Check(len(customerID) <= 64, "customer_id", "at most 64 characters")
	v.Check(status == "" || status == StatusQueued || status == StatusSent || status == StatusFailed || status == StatusSkipped,
		"status", "must be queued, sent, failed or skipped")
	if err := v.Err(op); err != nil {
		return web.Page[Message]{}, err
	}
	var k listKey
	after, err := page.After(&k)
	if err != nil {
		return web.Page[Message]{}, err
	}
	if !after {
		k = listKey{At: 1<<62 - 1}
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT id, customer_id, recipient, kind, order_id, status, attempts, last_error, created_at, sent_at
		FROM notifications_messages
		WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR status = $2) AND (created_at < $3 OR (created_at = $3 AND id < $4))
		ORDER BY created_at DESC, id DESC LIMIT $5`, customerID, status, k.At, k.ID, page.Limit+1)
	if err != nil {
		return web.Page[Message]{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var m Message
		var created int64
		var sent sql.NullInt64
		if err := rows.Scan(&m.ID, &m.CustomerID, &m.Recipient, &m.Kind, &m.OrderID, &m.Status, &m.Attempts, &m.LastError, &created, &sent); err != nil {
			return web.Page[Message]{}, errs.E(op, errs.Internal, err)
		}
		m.CreatedAt = time.UnixMicro(created).UTC()
		if sent.Valid {
			t := time.UnixMicro(sent.Int64).UTC()
			m.SentAt = &t
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return web.Page[Message]{}, errs.E(op, errs.Internal, err)
	}
	return web.NewPage(out, page.Limit, func(m Message) any { return listKey{At: m.CreatedAt.UnixMicro(), ID: m.ID} }), nil
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	page, err := web.PageParams(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	q := r.URL.Query()
	p, err := s.List(r.Context(), q.Get("customer_id"), q.Get("status"), page)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, p)
}

// ExportedMessage is one message in a customer's data export (no bodies).
type ExportedMessage struct {
	Kind      string     `json:"kind"`
	OrderID   string     `json:"order_id"`
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
}

// export is the module's part of a customer's data export.
func (s *Service) export(ctx context.Context, userID string) (any, error) {
	const op = "notifications.export"
	prefs, err := s.Preferences(ctx, userID)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT kind, order_id, status, created_at, sent_at FROM notifications_messages
		WHERE customer_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	msgs := []ExportedMessage{}
	for rows.Next() {
		var m ExportedMessage
		var created int64
		var sent sql.NullInt64
		if err := rows.Scan(&m.Kind, &m.OrderID, &m.Status, &created, &sent); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		m.CreatedAt = time.UnixMicro(created).UTC()
		if sent.Valid {
			t := time.UnixMicro(sent.Int64).UTC()
			m.SentAt = &t
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	return map[string]any{"preferences": prefs, "messages": msgs}, nil
}

// erase deletes the customer's messages and preferences in the erasure's
// unit, the messages its transaction has yet to insert among them.
func (s *Service) erase(ctx context.Context, tx *sqldb.Tx, userID string) error {
	const op = "notifications.erase"
	sqldb.Unqueue(tx, messagesKey{}, func(m message) bool { return m.customerID == userID })
	if err := s.preferencesChanged(ctx, tx, userID); err != nil {
		return err
	}
	for _, q := range []string{`DELETE FROM notifications_messages WHERE customer_id = $1`,
		`DELETE FROM notifications_preferences WHERE customer_id = $1`} {
		if _, err := tx.ExecContext(ctx, q, userID); err != nil {
			return errs.E(op, errs.Internal, err)
		}
	}
	return nil
}
