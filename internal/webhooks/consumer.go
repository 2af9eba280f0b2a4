package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

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

// target is an enabled endpoint's filters, and what its deliveries need
// when the recording transaction claims them (claimTx).
type target struct {
	dueEndpoint
	patterns []event.Pattern
	channels []string // only the events of these channels' orders; nil: every event
	secrets  []string // opened on the first claim of the transaction
}

func (t *target) selects(typ string) bool {
	for _, p := range t.patterns {
		if p.Match(typ) {
			return true
		}
	}
	return false
}

type targetsKey struct{}

// RecordTx records e's deliveries in tx: one row per enabled endpoint that
// selects e's type; a delivery already recorded (a redelivered event) is
// kept as it is. It reads the endpoints once per transaction (an inbox
// batch) and sends nothing inside it.
//
// While the dispatcher runs in this process (and not Config.PollOnly), a
// new delivery to an endpoint that is not fifo, whose breaker is closed and
// whose queue has room is claimed by this very INSERT (status delivering
// under the dispatcher's lease) and handed to the dispatcher when tx
// commits: no poll, no claim UPDATE. The others are recorded pending and
// the dispatcher, woken after the commit, claims them (fifo endpoints keep
// their order that way); a handed delivery whose process died comes due
// again when its lease ends.
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
	claiming := s.disp.claiming()
	woken := false
	for _, t := range v.([]*target) {
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
		full := false // at its limit or breaker open: a step could not start it now
		if claiming && !t.fifo {
			if full = !s.disp.accepts(t.id); !full {
				if ok, err := s.claimTx(ctx, tx, t, e, body); err != nil || ok {
					if err != nil {
						return err
					}
					continue
				}
			}
		}
		if _, err := insertDelivery(ctx, tx, t.id, t.fifo, e, body, "pending", tx.Now); err != nil {
			return err
		}
		if claiming {
			// The endpoint's next settled delivery, or the poll, wakes a step.
			tx.AfterCommit(func() { s.disp.noteBacklog(t.id) })
		}
		if !woken && !full {
			woken = true
			tx.AfterCommit(s.disp.Wake)
		}
	}
	return nil
}

type handoffKey struct{}

// claimTx records e's delivery to t as claimed (delivering, under the
// lease) and queues it for the dispatcher at tx's commit. It reports false
// when t's secret does not open (the delivery is then recorded pending, and
// the dispatcher logs why it cannot send it).
func (s *Service) claimTx(ctx context.Context, tx *sqldb.Tx, t *target, e event.Envelope, body []byte) (bool, error) {
	if t.secrets == nil {
		sec, err := s.disp.secrets(t.dueEndpoint, tx.Now)
		if err != nil {
			return false, nil
		}
		t.secrets = sec
	}
	id, err := insertDelivery(ctx, tx, t.id, false, e, body, "delivering", s.disp.lease(tx.Now))
	if err != nil || id == "" {
		return true, err // "": recorded before; left as it is
	}
	v, err := tx.Local(handoffKey{}, func() (any, error) {
		js := &[]job{}
		tx.AfterCommit(func() { s.disp.handoff(*js) })
		return js, nil
	})
	if err != nil {
		return false, err
	}
	js := v.(*[]job)
	n := len(*js)
	tx.OnRollback(func() { *js = (*js)[:n] })
	*js = append(*js, job{id: id, endpointID: t.id, eventID: e.ID, envelope: string(body), url: t.url, secrets: t.secrets})
	return true, nil
}

// insertDelivery records e's delivery to endpointID (fifo: whether the
// endpoint is) with status, due at next, and returns its id; "" when the
// endpoint has it already.
func insertDelivery(ctx context.Context, tx *sqldb.Tx, endpointID string, fifo bool, e event.Envelope, body []byte, status string, next time.Time) (string, error) {
	id := event.NewID()
	res, err := tx.ExecContext(ctx, `INSERT INTO webhooks_deliveries (id, endpoint_id, event_id, event_type,
			aggregate_type, aggregate_id, sequence, envelope, status, attempts, next_at, created_at, updated_at, fifo)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, $11, $12)
		ON CONFLICT (event_id, endpoint_id) DO NOTHING`,
		id, endpointID, e.ID, e.Type, e.AggregateType, e.AggregateID, e.Sequence, string(body), status,
		sqldb.Micros(next), sqldb.Micros(tx.Now), boolInt(fifo))
	if err != nil {
		return "", fmt.Errorf("webhooks: record delivery: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return "", err
	}
	return id, nil
}

// setDeliveriesFIFO keeps the undelivered deliveries of endpoint id (dead
// ones too: a replay makes them pending) in step with its fifo setting (the
// per-aggregate index holds fifo ones only).
func setDeliveriesFIFO(ctx context.Context, tx *sqldb.Tx, id string, fifo bool) error {
	_, err := tx.ExecContext(ctx, `UPDATE webhooks_deliveries SET fifo = $2
		WHERE endpoint_id = $1 AND status <> 'delivered' AND fifo <> $2`, id, boolInt(fifo))
	return err
}

func (s *Service) loadTargets(ctx context.Context, tx *sqldb.Tx) ([]*target, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, events, channels, url, fifo, secret_sealed, previous_secret_sealed,
			previous_secret_until FROM webhooks_endpoints WHERE enabled = 1 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("webhooks: endpoints: %w", err)
	}
	defer rows.Close()
	var out []*target
	for rows.Next() {
		t := &target{}
		var events, channels string
		var fifo int
		if err := rows.Scan(&t.id, &events, &channels, &t.url, &fifo, &t.sealed, &t.prevSealed, &t.prevUntil); err != nil {
			return nil, fmt.Errorf("webhooks: endpoints: %w", err)
		}
		t.fifo = fifo == 1
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
