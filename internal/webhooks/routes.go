package webhooks

import (
	"context"
	"net/http"
	"time"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

const tag = "webhooks"

// Routes are the module's HTTP endpoints, all under webhooks.manage.
func (s *Service) Routes() []web.Route {
	perm := web.Permission(PermManage)
	const base = "/api/v1/admin/webhooks"
	return append([]web.Route{
		{Method: "POST", Path: base, Summary: "Register a webhook endpoint", Tag: tag, Access: perm,
			Description: "The URL is resolved (nothing is sent): one that resolves to a loopback, private or " +
				"link-local address is 422. The secret is shown in this answer only.",
			Request: CreateRequest{}, Response: Created{}, Status: http.StatusCreated, Handler: s.handleCreate},
		{Method: "GET", Path: base, Summary: "List webhook endpoints", Tag: tag, Access: perm,
			Response: web.Page[Endpoint]{}, Query: []string{"limit", "cursor"}, Handler: s.handleList},
		{Method: "GET", Path: base + "/{id}", Summary: "A webhook endpoint", Tag: tag, Access: perm,
			Response: Endpoint{}, Handler: s.handleGet},
		{Method: "PATCH", Path: base + "/{id}", Summary: "Change a webhook endpoint", Tag: tag, Access: perm,
			Request: PatchRequest{}, Response: Endpoint{}, Handler: s.handlePatch},
		{Method: "DELETE", Path: base + "/{id}", Summary: "Delete a webhook endpoint and its deliveries", Tag: tag,
			Access: perm, Status: http.StatusNoContent, Handler: s.handleDelete},
		{Method: "POST", Path: base + "/{id}/rotate-secret", Summary: "Rotate an endpoint's secret", Tag: tag,
			Description: "The old secret keeps signing beside the new one (two v1 signatures) for 24 hours.",
			Access:      perm, Response: Rotated{}, Handler: s.handleRotate},
		{Method: "POST", Path: base + "/{id}/test", Summary: "Send a test event", Tag: tag, Access: perm,
			Response: TestSent{}, Status: http.StatusAccepted, Handler: s.handleTest},
		{Method: "GET", Path: base + "/{id}/deliveries", Summary: "An endpoint's deliveries and their attempts",
			Tag: tag, Access: perm, Response: web.Page[Delivery]{}, Query: []string{"status", "limit", "cursor"},
			Handler: s.handleDeliveries},
		{Method: "POST", Path: base + "/{id}/deliveries/{delivery_id}/replay", Summary: "Replay a dead delivery",
			Tag: tag, Access: perm, Response: Replayed{}, Handler: s.handleReplay},
		{Method: "POST", Path: base + "/{id}/replay", Summary: "Replay an endpoint's dead deliveries", Tag: tag,
			Access: perm, Request: ReplayRequest{}, Response: Replayed{}, Handler: s.handleReplayAll},
		{Method: "GET", Path: "/api/v1/admin/sync/webhooks", Summary: "Per-endpoint pending, failed and dead deliveries",
			Tag: tag, Access: perm, Response: SyncStatus{}, Handler: s.handleStatus},
	}, s.connectorRoutes()...)
}

func actor(r *http.Request) string {
	p, _ := web.PrincipalFrom(r.Context())
	return p.UserID
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request) {
	var in CreateRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	s.idem.Run(w, r, s.write, web.Mutation{
		Prepare: func(ctx context.Context) error { return s.CheckCreate(ctx, in) },
		Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
			c, err := s.CreateTx(ctx, tx, actor(r), in)
			return http.StatusCreated, c, err
		}})
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	p, err := web.PageParams(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	page, err := s.List(r.Context(), p)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, page)
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	ep, err := s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, ep)
}

func (s *Service) handlePatch(w http.ResponseWriter, r *http.Request) {
	var in PatchRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	ep, err := s.Patch(r.Context(), actor(r), r.PathValue("id"), in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, ep)
}

func (s *Service) handleDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.Delete(r.Context(), actor(r), r.PathValue("id")); err != nil {
		web.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) handleRotate(w http.ResponseWriter, r *http.Request) {
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		rot, err := s.RotateSecretTx(ctx, tx, actor(r), r.PathValue("id"))
		return http.StatusOK, rot, err
	}})
}

func (s *Service) handleTest(w http.ResponseWriter, r *http.Request) {
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		t, err := s.SendTestTx(ctx, tx, actor(r), r.PathValue("id"))
		return http.StatusAccepted, t, err
	}})
}

func (s *Service) handleDeliveries(w http.ResponseWriter, r *http.Request) {
	p, err := web.PageParams(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	page, err := s.Deliveries(r.Context(), r.PathValue("id"), r.URL.Query().Get("status"), p)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, page)
}

func (s *Service) handleReplay(w http.ResponseWriter, r *http.Request) {
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		n, err := s.ReplayTx(ctx, tx, actor(r), r.PathValue("id"), r.PathValue("delivery_id"))
		return http.StatusOK, n, err
	}})
}

func (s *Service) handleReplayAll(w http.ResponseWriter, r *http.Request) {
	var in ReplayRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	var since time.Time
	if in.Since != nil {
		since = *in.Since
	}
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		n, err := s.ReplayAllTx(ctx, tx, actor(r), r.PathValue("id"), since)
		return http.StatusOK, n, err
	}})
}

func (s *Service) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.Status(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, st)
}
