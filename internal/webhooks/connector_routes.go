package webhooks

import (
	"context"
	"net/http"
	"time"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

const connectorTag = "connectors"

// connectorRoutes are /api/v1/admin/connectors and the replays since a
// time, all under webhooks.manage like the webhooks' routes.
func (s *Service) connectorRoutes() []web.Route {
	perm := web.Permission(PermManage)
	const base = "/api/v1/admin/connectors"
	return []web.Route{
		{Method: "POST", Path: base, Summary: "Register a connector (http_json or file_drop)", Tag: connectorTag, Access: perm,
			Description: "The mapping template is checked (422 invalid_template naming the problem); an http_json URL is " +
				"resolved (nothing is sent) and guarded like a webhook's. An http_json connector's secret is shown in this answer only.",
			Request: ConnectorRequest{}, Response: ConnectorCreated{}, Status: http.StatusCreated, Handler: s.handleCreateConnector},
		{Method: "GET", Path: base, Summary: "List connectors", Tag: connectorTag, Access: perm,
			Response: web.Page[Connector]{}, Query: []string{"limit", "cursor"}, Handler: s.handleListConnectors},
		{Method: "GET", Path: base + "/{id}", Summary: "A connector", Tag: connectorTag, Access: perm,
			Response: Connector{}, Handler: s.handleGetConnector},
		{Method: "PATCH", Path: base + "/{id}", Summary: "Change a connector", Tag: connectorTag, Access: perm,
			Request: ConnectorPatch{}, Response: Connector{}, Handler: s.handlePatchConnector},
		{Method: "DELETE", Path: base + "/{id}", Summary: "Delete a connector and its deliveries", Tag: connectorTag,
			Access: perm, Status: http.StatusNoContent, Handler: s.handleDeleteConnector},
		{Method: "POST", Path: base + "/{id}/rotate-secret", Summary: "Rotate an http_json connector's secret", Tag: connectorTag,
			Access: perm, Response: Rotated{}, Handler: s.handleRotateConnector},
		{Method: "POST", Path: base + "/{id}/test", Summary: "Send a test event through a connector", Tag: connectorTag,
			Access: perm, Response: TestSent{}, Status: http.StatusAccepted, Handler: s.handleTestConnector},
		{Method: "GET", Path: base + "/{id}/deliveries", Summary: "A connector's deliveries and their attempts",
			Tag: connectorTag, Access: perm, Response: web.Page[Delivery]{}, Query: []string{"status", "limit", "cursor"},
			Handler: s.handleConnectorDeliveries("")},
		{Method: "GET", Path: base + "/{id}/dead-letters", Summary: "A connector's dead deliveries",
			Tag: connectorTag, Access: perm, Response: web.Page[Delivery]{}, Query: []string{"limit", "cursor"},
			Handler: s.handleConnectorDeliveries("dead")},
		{Method: "POST", Path: base + "/{id}/deliveries/{delivery_id}/replay", Summary: "Replay a connector's dead delivery",
			Tag: connectorTag, Access: perm, Response: Replayed{}, Handler: s.handleReplayConnector},
		{Method: "POST", Path: base + "/{id}/replay", Summary: "Replay a connector's dead deliveries", Tag: connectorTag,
			Access: perm, Request: ReplayRequest{}, Response: Replayed{}, Handler: s.handleReplayAllConnector},
		{Method: "POST", Path: base + "/{id}/replay-events", Summary: "Send a connector every retained event since a time again",
			Tag: connectorTag, Access: perm, Request: ReplayEventsRequest{}, Response: ReplayedEvents{}, Status: http.StatusAccepted,
			Handler: s.handleReplayEvents(connectorsOnly)},
		{Method: "POST", Path: "/api/v1/admin/webhooks/{id}/replay-events", Summary: "Send an endpoint every retained event since a time again",
			Description: "Re-records a delivery of every event still in the outbox since then that the endpoint's filters select " +
				"(pending ones are left alone); at most 5000 events a request, continued with next_cursor.",
			Tag: tag, Access: perm, Request: ReplayEventsRequest{}, Response: ReplayedEvents{}, Status: http.StatusAccepted,
			Handler: s.handleReplayEvents(webhooksOnly)},
	}
}

func (s *Service) handleCreateConnector(w http.ResponseWriter, r *http.Request) {
	var in ConnectorRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	s.idem.Run(w, r, s.write, web.Mutation{
		Prepare: func(ctx context.Context) error { return s.CheckConnector(ctx, in) },
		Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
			c, err := s.CreateConnectorTx(ctx, tx, actor(r), in)
			return http.StatusCreated, c, err
		}})
}

func (s *Service) handleListConnectors(w http.ResponseWriter, r *http.Request) {
	p, err := web.PageParams(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	page, err := s.Connectors(r.Context(), p)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, page)
}

func (s *Service) handleGetConnector(w http.ResponseWriter, r *http.Request) {
	c, err := s.Connector(r.Context(), r.PathValue("id"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, c)
}

func (s *Service) handlePatchConnector(w http.ResponseWriter, r *http.Request) {
	var in ConnectorPatch
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	c, err := s.PatchConnector(r.Context(), actor(r), r.PathValue("id"), in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, c)
}

func (s *Service) handleDeleteConnector(w http.ResponseWriter, r *http.Request) {
	if err := s.DeleteConnector(r.Context(), actor(r), r.PathValue("id")); err != nil {
		web.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) handleRotateConnector(w http.ResponseWriter, r *http.Request) {
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		rot, err := s.rotateSecretTx(ctx, tx, actor(r), r.PathValue("id"), httpConnectorsOnly)
		return http.StatusOK, rot, err
	}})
}

func (s *Service) handleTestConnector(w http.ResponseWriter, r *http.Request) {
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		t, err := s.sendTestTx(ctx, tx, actor(r), r.PathValue("id"), connectorsOnly)
		return http.StatusAccepted, t, err
	}})
}

func (s *Service) handleConnectorDeliveries(status string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := web.PageParams(r)
		if err != nil {
			web.Error(w, r, err)
			return
		}
		st := status
		if st == "" {
			st = r.URL.Query().Get("status")
		}
		page, err := s.deliveries(r.Context(), r.PathValue("id"), st, p, connectorsOnly)
		if err != nil {
			web.Error(w, r, err)
			return
		}
		web.JSON(w, http.StatusOK, page)
	}
}

func (s *Service) handleReplayConnector(w http.ResponseWriter, r *http.Request) {
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		n, err := s.replayTx(ctx, tx, actor(r), r.PathValue("id"), r.PathValue("delivery_id"), connectorsOnly)
		return http.StatusOK, n, err
	}})
}

func (s *Service) handleReplayAllConnector(w http.ResponseWriter, r *http.Request) {
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
		n, err := s.replayAllTx(ctx, tx, actor(r), r.PathValue("id"), since, connectorsOnly)
		return http.StatusOK, n, err
	}})
}

func (s *Service) handleReplayEvents(fam family) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in ReplayEventsRequest
		if err := web.Decode(r, &in); err != nil {
			web.Error(w, r, err)
			return
		}
		var pg replayPage
		s.idem.Run(w, r, s.write, web.Mutation{
			Prepare: func(ctx context.Context) (err error) { pg, err = s.readReplay(ctx, in); return err },
			Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
				out, err := s.replayEventsTx(ctx, tx, actor(r), r.PathValue("id"), fam, pg)
				return http.StatusAccepted, out, err
			}})
	}
}
