package syncmon

import (
	"context"
	"net/http"
	"time"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/inbox"
	"mercato/internal/platform/module"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// PermReplay is the permission to replay past events to a consumer.
const PermReplay = "sync.replay"

// ReplayRequest is POST /api/v1/admin/sync/consumers/{name}/replay's body.
type ReplayRequest struct {
	Since time.Time `json:"since" doc:"RFC 3339: replay the retained events that occurred at or after it (the outbox keeps 7 days)."`
}

// replaying is what the replay routes need.
type replaying struct {
	r     *inbox.Replays
	write sqldb.Committer
	idem  *web.Idempotency
}

// WithReplays adds the replays of past events to one consumer (POST
// …/consumers/{name}/replay, GET …/replays) and the running ones to the
// status, recorded through p's write path and idempotency.
func (s *Monitor) WithReplays(p module.Platform, r *inbox.Replays) *Monitor {
	s.replays = &replaying{r: r, write: p.Write, idem: p.Idem}
	return s
}

func (s *Monitor) replayRoutes() []web.Route {
	read := web.Permission(PermRead)
	return []web.Route{
		{Method: "POST", Path: "/api/v1/admin/sync/consumers/{name}/replay", Tag: "sync",
			Summary: "Replay every retained event since a point in time to one consumer",
			Description: "Only consumers that declare themselves replayable (re-running their handler on an event they applied changes " +
				"nothing twice: the search indexer, the webhooks fan-out, the fulfilment opener) accept; others are 409 " +
				"`consumer_not_replayable`, an unknown consumer 404. 409 `replay_running` while a replay of the consumer runs; 422 for a " +
				"`since` in the future or older than the outbox keeps events. Answers 202 with the replay and the number of events queued; " +
				"it runs in the background through the write path, in chunks, in per-aggregate order, and shows in `GET /api/v1/admin/sync` " +
				"while it runs. Audited.",
			Access: web.Permission(PermReplay), Request: ReplayRequest{}, Response: inbox.Replay{}, Status: http.StatusAccepted,
			Handler: s.handleReplay},
		{Method: "GET", Path: "/api/v1/admin/sync/replays", Tag: "sync", Summary: "Replays to consumers, newest first",
			Access: read, Query: []string{"limit", "cursor"}, Response: web.Page[inbox.Replay]{}, Handler: s.handleReplays},
		{Method: "GET", Path: "/api/v1/admin/sync/replays/{id}", Tag: "sync", Summary: "A replay and how far it got",
			Access: read, Response: inbox.Replay{}, Handler: s.handleGetReplay},
	}
}

func (s *Monitor) handleReplay(w http.ResponseWriter, r *http.Request) {
	const op = "syncmon.Replay"
	var in ReplayRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	if in.Since.IsZero() {
		web.Error(w, r, errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "since", Message: "is required"}}))
		return
	}
	name := r.PathValue("name")
	p, _ := web.PrincipalFrom(r.Context())
	var plan inbox.ReplayPlan
	s.replays.idem.Run(w, r, s.replays.write, web.Mutation{
		Prepare: func(ctx context.Context) (err error) {
			plan, err = s.replays.r.Plan(ctx, name, in.Since)
			return err
		},
		Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
			rep, err := s.replays.r.StartTx(ctx, tx, plan, p.UserID)
			if err != nil {
				return 0, nil, err
			}
			if err := audit.Record(ctx, tx, audit.Entry{ActorID: p.UserID, Action: "consumer.replay_requested", TargetType: "consumer",
				TargetID: name, After: map[string]any{"replay_id": rep.ID, "since": rep.Since, "queued": rep.Queued}}); err != nil {
				return 0, nil, err
			}
			return http.StatusAccepted, rep, nil
		},
	})
}

func (s *Monitor) handleReplays(w http.ResponseWriter, r *http.Request) {
	p, err := web.PageParams(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	items, next, err := s.replays.r.List(r.Context(), p.Limit, p.Cursor)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, web.Page[inbox.Replay]{Items: items, NextCursor: next})
}

func (s *Monitor) handleGetReplay(w http.ResponseWriter, r *http.Request) {
	rep, err := s.replays.r.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, rep)
}
