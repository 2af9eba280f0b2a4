package syncmon

import (
	"context"
	"net/http"
	"sort"
	"time"

	"mercato/internal/platform/web"
)

// Issue is a discrepancy a module's reconciliation found and could not fix
// safely (the payments module: an order marked paid with no capture), for
// staff to settle.
type Issue struct {
	Source  string    `json:"source" doc:"The module that found it."`
	Kind    string    `json:"kind"`
	Subject string    `json:"subject" doc:"What it is about (an order id)."`
	Detail  string    `json:"detail"`
	FoundAt time.Time `json:"found_at"`
}

// Issues is GET /api/v1/admin/sync/issues's answer, oldest first.
type Issues struct {
	Items []Issue `json:"items"`
}

// Reporter is a module that reports issues to the sync monitor.
type Reporter interface {
	SyncIssues(ctx context.Context) ([]Issue, error)
}

// Report adds reporters whose issues the monitor lists. Call it before serving.
func (s *Monitor) Report(r ...Reporter) { s.reporters = append(s.reporters, r...) }

func (s *Monitor) issuesRoute() web.Route {
	return web.Route{
		Method: "GET", Path: "/api/v1/admin/sync/issues", Tag: "sync",
		Summary:  "Discrepancies the modules' reconciliation jobs found and left to staff",
		Access:   web.Permission(PermRead),
		Response: Issues{},
		Handler: func(w http.ResponseWriter, r *http.Request) {
			out := Issues{Items: []Issue{}}
			for _, rep := range s.reporters {
				is, err := rep.SyncIssues(r.Context())
				if err != nil {
					web.Error(w, r, err)
					return
				}
				out.Items = append(out.Items, is...)
			}
			sort.SliceStable(out.Items, func(i, j int) bool { return out.Items[i].FoundAt.Before(out.Items[j].FoundAt) })
			web.JSON(w, http.StatusOK, out)
		},
	}
}
