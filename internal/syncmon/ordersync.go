package syncmon

import (
	"context"
	"net/http"

	"mercato/internal/platform/inbox"
	"mercato/internal/platform/web"
	"mercato/internal/webhooks"
)

// OrderEvents lists an order's events, oldest first (the orders module's
// timeline); a missing order is a NotFound error.
type OrderEvents interface {
	OrderEvents(ctx context.Context, orderID string) ([]EventRef, error)
}

// EventRef is one event of an order.
type EventRef struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	OccurredAt string `json:"occurred_at" doc:"RFC 3339."`
}

// EventSync is where one event of an order stands with every consumer and
// webhook endpoint.
type EventSync struct {
	EventRef
	Consumers []inbox.ConsumerState    `json:"consumers"`
	Webhooks  []webhooks.DeliveryState `json:"webhooks"`
}

// OrderSync is GET /api/v1/admin/orders/{id}/sync.
type OrderSync struct {
	OrderID string      `json:"order_id"`
	Events  []EventSync `json:"events"`
}

// eventDeliveries is the webhooks module's per-event view.
type eventDeliveries interface {
	EventDeliveries(ctx context.Context, eventIDs []string) (map[string][]webhooks.DeliveryState, error)
}

// WithOrders adds the per-order view, reading the orders' events from o.
func (s *Monitor) WithOrders(o OrderEvents) *Monitor { s.orders = o; return s }

// OrderSync reports, for each event of order id, which consumers applied
// it, are retrying it or parked it, and its deliveries to webhook endpoints.
func (s *Monitor) OrderSync(ctx context.Context, id string) (OrderSync, error) {
	refs, err := s.orders.OrderEvents(ctx, id)
	if err != nil {
		return OrderSync{}, err
	}
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
	}
	states, err := s.m.EventStates(ctx, ids)
	if err != nil {
		return OrderSync{}, err
	}
	deliveries := map[string][]webhooks.DeliveryState{}
	if d, ok := s.wh.(eventDeliveries); ok {
		if deliveries, err = d.EventDeliveries(ctx, ids); err != nil {
			return OrderSync{}, err
		}
	}
	out := OrderSync{OrderID: id, Events: make([]EventSync, 0, len(refs))}
	for _, r := range refs {
		e := EventSync{EventRef: r, Consumers: states[r.ID], Webhooks: deliveries[r.ID]}
		if e.Consumers == nil {
			e.Consumers = []inbox.ConsumerState{}
		}
		if e.Webhooks == nil {
			e.Webhooks = []webhooks.DeliveryState{}
		}
		out.Events = append(out.Events, e)
	}
	return out, nil
}

func (s *Monitor) orderSyncRoute() web.Route {
	return web.Route{
		Method: "GET", Path: "/api/v1/admin/orders/{id}/sync", Tag: "sync",
		Summary:  "Where each event of an order stands: the consumers that applied, retry or parked it, its webhook deliveries",
		Access:   web.Permission(PermRead),
		Response: OrderSync{},
		Handler: func(w http.ResponseWriter, r *http.Request) {
			st, err := s.OrderSync(r.Context(), r.PathValue("id"))
			if err != nil {
				web.Error(w, r, err)
				return
			}
			web.JSON(w, http.StatusOK, st)
		},
	}
}
