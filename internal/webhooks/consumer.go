package webhooks

import (
	"context"
	"encoding/json"
	"fmt"

	"mercato/internal/platform/event"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/sqldb"
)

// Consumer is the module's inbox consumer: every event, recorded as one
// pending delivery per enabled endpoint whose filters select its type.
func (s *Service) Consumer() inbox.Consumer {
	// Replayable: a delivery is recorded once per (endpoint, event), so a
	// replay records the deliveries an endpoint lacks (one added since, or
	// whose rows were pruned) and leaves the others as they are.
	return inbox.Consumer{Name: ConsumerName, Events: []string{"*"}, Handle: s.RecordTx, Replayable: true}
}

// target is an enabled endpoint's filters.
type target struct {
	id       string
	patterns []event.Pattern
	channels []string // only the events of these channels' orders; nil: every event
}

func (t target) selects(typ string) bool {
	for _, p := range t.patterns {
		if p.Match(typ) {
			return true
		}
	}
	return false
}

type targetsKey struct{}

// RecordTx records e's deliveries in tx: one row per enabled endpoint that
// selects e's type, due at once; a delivery already recorded (a redelivered
// event) is kept as it is. It reads the endpoints once per transaction (an
// inbox batch) and sends nothing: the dispatcher, woken after the commit,
// delivers.
func (s *Service) RecordTx(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
	v, err := tx.Local(targetsKey{}, func() (any, error) { return s.loadTargets(ctx, tx) })
	if err != nil {
		return err
	}
	if err := s.learnChannel(ctx, tx, e); err != nil {
		return err
	}
	var body []byte
	ch := channelOnce{s: s, tx: tx, e: e}
	for _, t := range v.([]target) {
		if !t.selects(e.Type) {
			continue
		}
		if ok, err := ch.admits(ctx, t); err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		if body == nil {
			if body, err = json.Marshal(e); err != nil {
				return fmt.Errorf("webhooks: envelope: %w", err)
			}
		}
		if err := insertDelivery(ctx, tx, t.id, e, body); err != nil {
			return err
		}
	}
	if body != nil {
		tx.AfterCommit(s.disp.Wake)
	}
	return nil
}

func insertDelivery(ctx context.Context, tx *sqldb.Tx, endpointID string, e event.Envelope, body []byte) error {
	now := sqldb.Micros(tx.Now)
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhooks_deliveries (id, endpoint_id, event_id, event_type,
			aggregate_type, aggregate_id, sequence, envelope, status, attempts, next_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $9, $9)
		ON CONFLICT (endpoint_id, event_id) DO NOTHING`,
		event.NewID(), endpointID, e.ID, e.Type, e.AggregateType, e.AggregateID, e.Sequence, string(body), now); err != nil {
		return fmt.Errorf("webhooks: record delivery: %w", err)
	}
	return nil
}

func (s *Service) loadTargets(ctx context.Context, tx *sqldb.Tx) ([]target, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, events, channels FROM webhooks_endpoints WHERE enabled = 1 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("webhooks: endpoints: %w", err)
	}
	defer rows.Close()
	var out []target
	for rows.Next() {
		var t target
		var events, channels string
		if err := rows.Scan(&t.id, &events, &channels); err != nil {
			return nil, fmt.Errorf("webhooks: endpoints: %w", err)
		}
		if err := json.Unmarshal([]byte(channels), &t.channels); err != nil {
			return nil, fmt.Errorf("webhooks: endpoint %s channels: %w", t.id, err)
		}
		if len(t.channels) == 0 {
			t.channels = nil
		}
		var fs []string
		if err := json.Unmarshal([]byte(events), &fs); err != nil {
			return nil, fmt.Errorf("webhooks: endpoint %s filters: %w", t.id, err)
		}
		for _, f := range fs {
			if p, err := event.ParsePattern(f); err == nil {
				t.patterns = append(t.patterns, p)
			}
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
