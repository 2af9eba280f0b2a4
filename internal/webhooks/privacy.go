package webhooks

import (
	"context"
	"encoding/json"
	"fmt"

	"mercato/internal/platform/sqldb"
)

// EraseTx anonymises, in tx (the erasure's unit), the envelopes kept for
// deliveries (webhooks_events) whose data names customer userID: their
// customer_id becomes "", as a guest's order has it. A delivery not yet made
// (pending, retrying, dead and replayed later) then sends the anonymised
// envelope, signed over what it sends; what a receiver got before is the
// receiver's to erase (customer.erased tells it).
func (s *Service) EraseTx(ctx context.Context, tx *sqldb.Tx, userID string) error {
	rows, err := tx.QueryContext(ctx, `SELECT event_id, envelope FROM webhooks_events WHERE customer_id = $1`, userID)
	if err != nil {
		return fmt.Errorf("webhooks: erase: %w", err)
	}
	type erased struct{ id, envelope string }
	var out []erased
	for rows.Next() {
		var id, env string
		if err := rows.Scan(&id, &env); err != nil {
			rows.Close()
			return fmt.Errorf("webhooks: erase: %w", err)
		}
		env, err := anonymised(env)
		if err != nil {
			rows.Close()
			return fmt.Errorf("webhooks: erase %s: %w", id, err)
		}
		out = append(out, erased{id, env})
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("webhooks: erase: %w", err)
	}
	for _, e := range out {
		if _, err := tx.ExecContext(ctx, `UPDATE webhooks_events SET envelope = $2, customer_id = '' WHERE event_id = $1`,
			e.id, e.envelope); err != nil {
			return fmt.Errorf("webhooks: erase: %w", err)
		}
	}
	return nil
}

// anonymised is envelope with its data's customer_id emptied; its other
// fields as they were.
func anonymised(envelope string) (string, error) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal([]byte(envelope), &env); err != nil {
		return "", err
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(env["data"], &data); err != nil {
		return "", err
	}
	data["customer_id"] = json.RawMessage(`""`)
	b, err := json.Marshal(data)
	if err != nil {
		return "", err
	}
	env["data"] = b
	out, err := json.Marshal(env)
	return string(out), err
}
