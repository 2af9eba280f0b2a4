// Package syncmon is the sync monitor module: what staff see of the order
// synchronization engine — per-consumer pending, processed and failed
// counts, the outbox backlog and the dead letters (API.md "Event stream"),
// and each webhook endpoint's pending, failed and dead deliveries. It reads
// the platform's outbox and inbox tables through inbox.Monitor and the
// webhooks module's counts through its Status, and owns no table of its own.
//
// Staff with sync.replay replay every retained event since a point in time
// to one consumer that declares itself replayable (inbox.Replays: the
// replay is recorded and audited in the request's unit, runs in the
// background where the consumer runs, and is listed while it runs).
package syncmon

import (
	"context"
	"net/http"

	"mercato/internal/accounts"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/module"
	"mercato/internal/platform/web"
	"mercato/internal/webhooks"
)

// PermRead is the permission to read the sync status.
const PermRead = "sync.read"

// Monitor is the sync monitor module.
type Monitor struct {
	m         *inbox.Monitor
	reporters []Reporter
	wh        WebhookCounts // nil: no webhook part
	orders    OrderEvents   // nil: no per-order view
	replays   *replaying    // nil: no replays
}

// WebhookCounts reports the webhook deliveries' counts (*webhooks.Service).
type WebhookCounts interface {
	Status(ctx context.Context) (webhooks.SyncStatus, error)
}

// Status is the sync monitor's report: the consumers, outbox and dead
// letters, and the webhook endpoints' deliveries (empty, never null).
type Status struct {
	inbox.SyncStatus
	Webhooks []webhooks.EndpointStatus `json:"webhooks"`
	// Replays are the replays to consumers running now.
	Replays []inbox.Replay `json:"replays"`
}

// New returns the module reading the status from m.
func New(m *inbox.Monitor) *Monitor { return &Monitor{m: m} }

// WithWebhooks adds the webhook endpoints' counts from wh to the status.
func (s *Monitor) WithWebhooks(wh WebhookCounts) *Monitor { s.wh = wh; return s }

// Status reads the whole report.
func (s *Monitor) Status(ctx context.Context) (Status, error) {
	st, err := s.m.Status(ctx)
	if err != nil {
		return Status{}, err
	}
	out := Status{SyncStatus: st, Webhooks: []webhooks.EndpointStatus{}, Replays: []inbox.Replay{}}
	if s.replays != nil {
		if out.Replays, err = s.replays.r.Running(ctx); err != nil {
			return Status{}, err
		}
	}
	if s.wh != nil {
		w, err := s.wh.Status(ctx)
		if err != nil {
			return Status{}, err
		}
		out.Webhooks = w.Endpoints
	}
	return out, nil
}

// Module is the sync monitor's declaration.
func (s *Monitor) Module() module.Module {
	return module.Module{
		Name: "syncmon",
		Doc:  "the sync monitor: consumer lag, failures, outbox backlog, dead letters, replays",
		Permissions: []module.Permission{
			{Name: PermRead, Doc: "read the sync status", Roles: []string{accounts.RoleOperator}},
			{Name: PermReplay, Doc: "replay past events to a consumer", Roles: []string{accounts.RoleOperator}},
		},
		Routes: s.routes(),
	}
}

func (s *Monitor) statusRoute() web.Route {
	return web.Route{
		Method: "GET", Path: "/api/v1/admin/sync", Tag: "sync",
		Summary:  "Sync status: per-consumer pending/processed/failed, outbox backlog, dead letters, webhook deliveries",
		Access:   web.Permission(PermRead),
		Response: Status{},
		Handler: func(w http.ResponseWriter, r *http.Request) {
			st, err := s.Status(r.Context())
			if err != nil {
				web.Error(w, r, err)
				return
			}
			web.JSON(w, http.StatusOK, st)
		},
	}
}

func (s *Monitor) routes() []web.Route {
	rs := []web.Route{s.statusRoute(), s.issuesRoute()}
	if s.orders != nil {
		rs = append(rs, s.orderSyncRoute())
	}
	if s.replays != nil {
		rs = append(rs, s.replayRoutes()...)
	}
	return rs
}
