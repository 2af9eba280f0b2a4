package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
)

// Channel status sync: a connector restricted to sales channels
// (Connector.Channels) receives only the events of those channels' orders
// — order.paid, order.shipped, order.cancelled, shipment.created … — and
// so carries each order's status back to the marketplace, app or till it
// came from. Only order.placed names the channel; the module learns it
// there (webhooks_order_channels, for every order not of the web shop, in
// the consumer's transaction) and looks it up for the order's later events:
// the order is the aggregate of an order.* event, or the data's order_id
// (shipments, payments). An event about no order is never selected by a
// channel-restricted endpoint. The consumer applies one order's events in
// sequence, so order.placed is always learnt before the events after it.
//
// A channel names its connector through the channels module
// (PUT /api/v1/admin/channels/{code}/connector), which calls BindChannelTx
// and UnbindChannelTx in its own unit.

// WebChannel is the code of the shop's own storefront: an order whose
// channel the module never learnt is of it.
const WebChannel = "web"

// learnChannel records the channel of an order placed on another channel
// than the web shop.
func (s *Service) learnChannel(ctx context.Context, tx *sqldb.Tx, e event.Envelope) error {
	if e.Type != "order.placed" {
		return nil
	}
	var d struct {
		OrderID string `json:"order_id"`
		Channel string `json:"channel"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil || d.Channel == "" || d.Channel == WebChannel {
		return nil // not ours to refuse: a malformed payload reaches webhooks as it is
	}
	id := cmpOr(d.OrderID, e.AggregateID)
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhooks_order_channels (order_id, channel, created_at)
		VALUES ($1, $2, $3) ON CONFLICT (order_id) DO NOTHING`, id, d.Channel, sqldb.Micros(tx.Now)); err != nil {
		return fmt.Errorf("webhooks: order channel: %w", err)
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// orderOf is the order an event is about: an order event's aggregate, or
// its data's order_id; "" for none.
func orderOf(e event.Envelope) string {
	if e.AggregateType == "order" {
		return e.AggregateID
	}
	var d struct {
		OrderID string `json:"order_id"`
	}
	if json.Unmarshal(e.Data, &d) == nil {
		return d.OrderID
	}
	return ""
}

// channelOnce looks up an event's channel at most once, when a
// channel-restricted endpoint asks.
type channelOnce struct {
	s       *Service
	tx      *sqldb.Tx
	e       event.Envelope
	done    bool
	channel string // "" for an event about no order
}

// admits reports whether t's channel restriction lets the event through.
func (c *channelOnce) admits(ctx context.Context, t *target) (bool, error) {
	if t.channels == nil {
		return true, nil
	}
	if !c.done {
		ch, err := channelOfTx(ctx, c.tx, c.e)
		if err != nil {
			return false, err
		}
		c.channel, c.done = ch, true
	}
	return c.channel != "" && slices.Contains(t.channels, c.channel), nil
}

// channelOfTx is the channel of the order e is about ("" for none).
func channelOfTx(ctx context.Context, tx *sqldb.Tx, e event.Envelope) (string, error) {
	id := orderOf(e)
	if id == "" {
		return "", nil
	}
	var ch string
	err := tx.QueryRowContext(ctx, `SELECT channel FROM webhooks_order_channels WHERE order_id = $1`, id).Scan(&ch)
	if errors.Is(err, sql.ErrNoRows) {
		return WebChannel, nil
	}
	if err != nil {
		return "", fmt.Errorf("webhooks: order channel: %w", err)
	}
	return ch, nil
}

// BindChannelTx makes connector connectorID receive the events of channel
// code's orders: the channel joins its channel restriction. A connector
// that does not exist (or a webhook's id) is 422 naming connector_id.
func (s *Service) BindChannelTx(ctx context.Context, tx *sqldb.Tx, actorID, connectorID, code string) error {
	const op = "webhooks.BindChannel"
	c, err := s.connectorFrom(ctx, tx, op, connectorID, tx.Now)
	if errs.KindOf(err) == errs.NotFound {
		return errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "connector_id", Message: "is no connector"}})
	}
	if err != nil {
		return err
	}
	if slices.Contains(c.Channels, code) {
		return nil
	}
	if len(c.Channels) >= maxChannels {
		return errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "connector_id", Message: fmt.Sprintf("the connector serves %d channels already", maxChannels)}})
	}
	return s.setChannelsTx(ctx, tx, actorID, c, append(slices.Clone(c.Channels), code), "connector.channel_bound", code)
}

// UnbindChannelTx takes channel code out of connector connectorID's
// restriction. A connector left with no channel is disabled (reason
// "unbound") rather than widened to every order's events. A connector that
// is gone, or never served the channel, is left alone.
func (s *Service) UnbindChannelTx(ctx context.Context, tx *sqldb.Tx, actorID, connectorID, code string) error {
	const op = "webhooks.UnbindChannel"
	c, err := s.connectorFrom(ctx, tx, op, connectorID, tx.Now)
	if errs.KindOf(err) == errs.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if !slices.Contains(c.Channels, code) {
		return nil
	}
	rest := slices.DeleteFunc(slices.Clone(c.Channels), func(x string) bool { return x == code })
	return s.setChannelsTx(ctx, tx, actorID, c, rest, "connector.channel_unbound", code)
}

func (s *Service) setChannelsTx(ctx context.Context, tx *sqldb.Tx, actorID string, c Connector, channels []string, action, code string) error {
	before := c
	c.Channels = channels
	if len(channels) == 0 {
		c.Enabled, c.DisabledReason = false, "unbound"
	}
	b, _ := json.Marshal(c.Channels)
	if _, err := tx.ExecContext(ctx, `UPDATE webhooks_endpoints SET channels = $2, enabled = $3, disabled_reason = $4,
		updated_at = $5 WHERE id = $1`, c.ID, string(b), boolInt(c.Enabled), c.DisabledReason, sqldb.Micros(tx.Now)); err != nil {
		return errs.E("webhooks.setChannels", errs.Internal, err)
	}
	return audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: action, TargetType: "connector", TargetID: c.ID,
		Before: before, After: map[string]any{"channel": code, "channels": c.Channels, "enabled": c.Enabled}})
}
