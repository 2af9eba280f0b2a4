// Package syncmon is the sync monitor module: what staff see of the order
// synchronization engine — per-consumer pending, processed and failed
// counts, the outbox backlog and the dead letters (API.md "Event stream").
// It reads the platform's outbox and inbox tables through inbox.Monitor and
// owns no table of its own.
package syncmon

import (
	"net/http"

	"mercato/internal/accounts"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/module"
	"mercato/internal/platform/web"
)

// PermRead is the permission to read the sync status.
const PermRead = "sync.read"

// Monitor is the sync monitor module.
type Monitor struct {
	m         *inbox.Monitor
	reporters []Reporter
}

// New returns the module reading the status from m.
func New(m *inbox.Monitor) *Monitor { return &Monitor{m: m} }

// Module is the sync monitor's declaration.
func (s *Monitor) Module() module.Module {
	return module.Module{
		Name:        "syncmon",
		Doc:         "the sync monitor: consumer lag, failures, outbox backlog, dead letters",
		Permissions: []module.Permission{{Name: PermRead, Doc: "read the sync status", Roles: []string{accounts.RoleOperator}}},
		Routes:      []web.Route{s.statusRoute(), s.issuesRoute()},
	}
}

func (s *Monitor) statusRoute() web.Route {
	return web.Route{
		Method: "GET", Path: "/api/v1/admin/sync", Tag: "sync",
		Summary:  "Sync status: per-consumer pending/processed/failed, outbox backlog, dead letters",
		Access:   web.Permission(PermRead),
		Response: inbox.SyncStatus{},
		Handler: func(w http.ResponseWriter, r *http.Request) {
			st, err := s.m.Status(r.Context())
			if err != nil {
				web.Error(w, r, err)
				return
			}
			web.JSON(w, http.StatusOK, st)
		},
	}
}
