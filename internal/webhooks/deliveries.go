package webhooks

import (
	"context"
	"encoding/json"
	"time"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// Delivery is one event's delivery to one endpoint, with its attempts.
type Delivery struct {
	ID        string `json:"id"`
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	// Status is pending, delivering, delivered or dead.
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts" doc:"Tries that used up the schedule."`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	Log           []Attempt  `json:"log"`
}

// Attempt is one try's record.
type Attempt struct {
	Attempt     int       `json:"attempt"`
	AttemptedAt time.Time `json:"attempted_at"`
	StatusCode  int       `json:"status_code,omitempty"`
	LatencyMS   float64   `json:"latency_ms"`
	Response    string    `json:"response,omitempty" doc:"The start of the response body (at most 1 KiB)."`
	Error       string    `json:"error,omitempty"`
}

// Deliveries returns a page of an endpoint's deliveries, newest first,
// optionally only those of one status.
func (s *Service) Deliveries(ctx context.Context, endpointID, status string, p web.PageRequest) (web.Page[Delivery], error) {
	return s.deliveries(ctx, endpointID, status, p, webhooksOnly)
}

func (s *Service) deliveries(ctx context.Context, endpointID, status string, p web.PageRequest, fam family) (web.Page[Delivery], error) {
	const op = "webhooks.Deliveries"
	if err := s.exists(ctx, s.db.Reader(), op, endpointID, fam); err != nil {
		return web.Page[Delivery]{}, err
	}
	switch status {
	case "", "pending", "delivering", "delivered", "dead":
	default:
		return web.Page[Delivery]{}, errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "status", Message: "must be pending, delivering, delivered or dead"}})
	}
	before := ""
	if _, err := p.After(&before); err != nil {
		return web.Page[Delivery]{}, err
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT id, event_id, event_type, status, attempts, next_at,
			last_status, last_error, created_at, updated_at, last_latency_us, last_response FROM webhooks_deliveries
		WHERE endpoint_id = $1 AND ($2 = '' OR id < $2) AND ($3 = '' OR status = $3) ORDER BY id DESC LIMIT $4`,
		endpointID, before, status, p.Limit+1)
	if err != nil {
		return web.Page[Delivery]{}, errs.E(op, errs.Internal, err)
	}
	var out []Delivery
	var last []Attempt // per item: its successful try when delivered
	for rows.Next() {
		var dl Delivery
		var next, created, updated, latency int64
		var resp string
		if err := rows.Scan(&dl.ID, &dl.EventID, &dl.EventType, &dl.Status, &dl.Attempts, &next, &dl.LastStatus,
			&dl.LastError, &created, &updated, &latency, &resp); err != nil {
			rows.Close()
			return web.Page[Delivery]{}, errs.E(op, errs.Internal, err)
		}
		if dl.Status == "pending" {
			t := sqldb.FromMicros(next)
			dl.NextAttemptAt = &t
		}
		dl.CreatedAt, dl.Log = sqldb.FromMicros(created), []Attempt{}
		out = append(out, dl)
		// A delivered delivery's successful try is kept in its row.
		last = append(last, Attempt{Attempt: dl.Attempts, AttemptedAt: sqldb.FromMicros(updated), StatusCode: dl.LastStatus,
			LatencyMS: float64(latency) / 1000, Response: resp})
	}
	if err := rows.Close(); err != nil {
		return web.Page[Delivery]{}, errs.E(op, errs.Internal, err)
	}
	page := web.NewPage(out, p.Limit, func(last Delivery) any { return last.ID })
	for i := range page.Items {
		if page.Items[i].Log, err = s.attempts(ctx, page.Items[i].ID); err != nil {
			return web.Page[Delivery]{}, errs.E(op, errs.Internal, err)
		}
		if page.Items[i].Status == "delivered" {
			page.Items[i].Log = append(page.Items[i].Log, last[i])
		}
	}
	return page, nil
}

func (s *Service) attempts(ctx context.Context, deliveryID string) ([]Attempt, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT attempt, attempted_at, status_code, latency_us, response, error
		FROM webhooks_attempts WHERE delivery_id = $1 ORDER BY id`, deliveryID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Attempt{}
	for rows.Next() {
		var a Attempt
		var at, lat int64
		if err := rows.Scan(&a.Attempt, &at, &a.StatusCode, &lat, &a.Response, &a.Error); err != nil {
			return nil, err
		}
		a.AttemptedAt, a.LatencyMS = sqldb.FromMicros(at), float64(lat)/1000
		out = append(out, a)
	}
	return out, rows.Err()
}

// Replayed is the answer of a replay: how many dead deliveries are pending
// again.
type Replayed struct {
	Replayed int64 `json:"replayed"`
}

// ReplayRequest asks for the dead deliveries recorded since a time.
type ReplayRequest struct {
	Since *time.Time `json:"since,omitempty" doc:"Replay the dead deliveries of events recorded at or after this time (default: all)."`
}

// ReplayTx makes one dead delivery of the endpoint pending again with a
// fresh schedule. NotFound when the endpoint or delivery is missing,
// Conflict when the delivery is not dead.
func (s *Service) ReplayTx(ctx context.Context, tx *sqldb.Tx, actorID, endpointID, deliveryID string) (Replayed, error) {
	return s.replayTx(ctx, tx, actorID, endpointID, deliveryID, webhooksOnly)
}

func (s *Service) replayTx(ctx context.Context, tx *sqldb.Tx, actorID, endpointID, deliveryID string, fam family) (Replayed, error) {
	const op = "webhooks.Replay"
	if err := s.exists(ctx, tx, op, endpointID, fam); err != nil {
		return Replayed{}, err
	}
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM webhooks_deliveries WHERE id = $1 AND endpoint_id = $2`,
		deliveryID, endpointID).Scan(&status)
	if err != nil {
		return Replayed{}, errs.E(op, errs.NotFound, "no such delivery of this endpoint")
	}
	if status != "dead" {
		return Replayed{}, errs.E(op, errs.Conflict, "only a dead delivery can be replayed", errNotDead)
	}
	n, err := s.replay(ctx, tx, `id = $3`, endpointID, deliveryID)
	if err != nil {
		return Replayed{}, errs.E(op, errs.Internal, err)
	}
	return Replayed{n}, audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: fam.action("delivery_replayed"),
		TargetType: "webhook_delivery", TargetID: deliveryID})
}

// ReplayAllTx makes every dead delivery of the endpoint recorded at or
// after since (zero: all) pending again.
func (s *Service) ReplayAllTx(ctx context.Context, tx *sqldb.Tx, actorID, endpointID string, since time.Time) (Replayed, error) {
	return s.replayAllTx(ctx, tx, actorID, endpointID, since, webhooksOnly)
}

func (s *Service) replayAllTx(ctx context.Context, tx *sqldb.Tx, actorID, endpointID string, since time.Time, fam family) (Replayed, error) {
	const op = "webhooks.ReplayAll"
	if err := s.exists(ctx, tx, op, endpointID, fam); err != nil {
		return Replayed{}, err
	}
	n, err := s.replay(ctx, tx, `created_at >= $3`, endpointID, sqldb.Micros(since))
	if err != nil {
		return Replayed{}, errs.E(op, errs.Internal, err)
	}
	return Replayed{n}, audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: fam.action("deliveries_replayed"),
		TargetType: fam.target(), TargetID: endpointID, After: map[string]any{"since": since, "replayed": n}})
}

func (s *Service) replay(ctx context.Context, tx *sqldb.Tx, where string, endpointID string, arg any) (int64, error) {
	res, err := tx.ExecContext(ctx, `UPDATE webhooks_deliveries SET status = 'pending', attempts = 0, next_at = $2,
		updated_at = $2 WHERE endpoint_id = $1 AND status = 'dead' AND `+where, endpointID, sqldb.Micros(tx.Now), arg)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if n > 0 {
		tx.AfterCommit(s.disp.Wake)
	}
	return n, err
}

// TestEventType is the type of the event "send test event" delivers.
const TestEventType = "webhook.test"

// TestSent is the answer of "send test event".
type TestSent struct {
	DeliveryID string `json:"delivery_id"`
	EventID    string `json:"event_id"`
}

// SendTestTx records a delivery of a webhook.test event to the endpoint
// (whatever its filters), due at once.
func (s *Service) SendTestTx(ctx context.Context, tx *sqldb.Tx, actorID, endpointID string) (TestSent, error) {
	return s.sendTestTx(ctx, tx, actorID, endpointID, webhooksOnly)
}

func (s *Service) sendTestTx(ctx context.Context, tx *sqldb.Tx, actorID, endpointID string, fam family) (TestSent, error) {
	const op = "webhooks.SendTest"
	if err := s.exists(ctx, tx, op, endpointID, fam); err != nil {
		return TestSent{}, err
	}
	data, _ := json.Marshal(map[string]string{"endpoint_id": endpointID, "message": "a test event from mercato"})
	e := event.Envelope{ID: event.NewID(), Type: TestEventType, SchemaVersion: 1, AggregateType: "webhook",
		AggregateID: endpointID, Sequence: 0, OccurredAt: tx.Now, Data: data}
	body, err := json.Marshal(e)
	if err != nil {
		return TestSent{}, errs.E(op, errs.Internal, err)
	}
	var fifo int
	if err := tx.QueryRowContext(ctx, `SELECT fifo FROM webhooks_endpoints WHERE id = $1`, endpointID).Scan(&fifo); err != nil {
		return TestSent{}, errs.E(op, errs.Internal, err)
	}
	id, err := insertDelivery(ctx, tx, endpointID, fifo == 1, e, body, "pending", tx.Now)
	if err != nil {
		return TestSent{}, errs.E(op, errs.Internal, err)
	}
	tx.AfterCommit(s.disp.Wake)
	return TestSent{DeliveryID: id, EventID: e.ID}, audit.Record(ctx, tx, audit.Entry{ActorID: actorID,
		Action: fam.action("test_sent"), TargetType: fam.target(), TargetID: endpointID})
}

// EndpointStatus is one endpoint's part of the sync monitor.
type EndpointStatus struct {
	EndpointID string `json:"endpoint_id"`
	Kind       string `json:"kind" doc:"webhook, or a connector's kind (http_json, file_drop)."`
	Name       string `json:"name,omitempty" doc:"A connector's name."`
	URL        string `json:"url" doc:"A file_drop connector's is file:<file>."`
	Enabled    bool   `json:"enabled"`
	Pending    int64  `json:"pending" doc:"Deliveries not yet made (retrying and in flight included)."`
	Failed     int64  `json:"failed" doc:"Pending deliveries with at least one failed try."`
	Dead       int64  `json:"dead" doc:"Deliveries in the dead letters."`
}

// SyncStatus is the webhooks part of the sync monitor.
type SyncStatus struct {
	Endpoints []EndpointStatus `json:"endpoints"`
}

// Status reports every endpoint's pending, failed and dead counts.
func (s *Service) Status(ctx context.Context) (SyncStatus, error) {
	const op = "webhooks.Status"
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT e.id, e.kind, e.name, e.url, e.enabled,
			COALESCE(SUM(CASE WHEN d.status IN ('pending', 'delivering') THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN d.status IN ('pending', 'delivering') AND d.attempts > 0 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN d.status = 'dead' THEN 1 ELSE 0 END), 0)
		FROM webhooks_endpoints e LEFT JOIN webhooks_deliveries d ON d.endpoint_id = e.id
		GROUP BY e.id, e.kind, e.name, e.url, e.enabled ORDER BY e.id`)
	if err != nil {
		return SyncStatus{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	st := SyncStatus{Endpoints: []EndpointStatus{}}
	for rows.Next() {
		var es EndpointStatus
		var enabled int
		if err := rows.Scan(&es.EndpointID, &es.Kind, &es.Name, &es.URL, &enabled, &es.Pending, &es.Failed, &es.Dead); err != nil {
			return SyncStatus{}, errs.E(op, errs.Internal, err)
		}
		es.Enabled = enabled == 1
		st.Endpoints = append(st.Endpoints, es)
	}
	if err := rows.Err(); err != nil {
		return SyncStatus{}, errs.E(op, errs.Internal, err)
	}
	return st, nil
}

// DeliveryState is where one event stands with one endpoint.
type DeliveryState struct {
	EndpointID string `json:"endpoint_id"`
	Status     string `json:"status" doc:"pending, delivering, delivered or dead."`
	Attempts   int    `json:"attempts"`
	LastStatus int    `json:"last_status,omitempty" doc:"The HTTP status of the last try (0: none, or no answer)."`
}

// EventDeliveries reports, for each of eventIDs, its deliveries to every
// endpoint that selected it (delivered rows go after 30 days). One query.
func (s *Service) EventDeliveries(ctx context.Context, eventIDs []string) (map[string][]DeliveryState, error) {
	const op = "webhooks.EventDeliveries"
	out := map[string][]DeliveryState{}
	if len(eventIDs) == 0 {
		return out, nil
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT event_id, endpoint_id, status, attempts, last_status
		FROM webhooks_deliveries WHERE event_id IN (`+sqldb.Placeholders(1, len(eventIDs))+`) ORDER BY endpoint_id`, sqldb.Args(eventIDs)...)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var d DeliveryState
		if err := rows.Scan(&id, &d.EndpointID, &d.Status, &d.Attempts, &d.LastStatus); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		out[id] = append(out[id], d)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	return out, nil
}
