package promotions

import (
	"context"
	"net/http"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// Routes returns the promotions module's HTTP routes (docs/api.md
// "Promotions"); every POST is idempotent.
func (s *Service) Routes() []web.Route {
	const tag = "promotions"
	read, write := web.Permission(PermRead), web.Permission(PermWrite)
	return []web.Route{
		{Method: "POST", Path: "/api/v1/admin/promotions", Summary: "Create a promotion (version 1, active; audited)", Tag: tag,
			Description: "422 `validation_failed` naming each bad field (a percentage off that is not 1..10000 basis points, " +
				"an unknown kind, an end before the start); 409 `code_taken` for a coupon code another promotion holds. " +
				"No codes: the promotion is automatic.",
			Access: write, Request: Rule{}, Response: Promotion{}, Status: http.StatusCreated, Handler: s.handleCreate},
		{Method: "GET", Path: "/api/v1/admin/promotions", Summary: "List promotions, newest first", Tag: tag,
			Access: read, Query: []string{"status", "limit", "cursor"}, Response: web.Page[Promotion]{}, Handler: s.handleList},
		{Method: "GET", Path: "/api/v1/admin/promotions/{id}", Summary: "A promotion's current version and usage", Tag: tag,
			Access: read, Response: Promotion{}, Handler: s.handleGet},
		{Method: "PATCH", Path: "/api/v1/admin/promotions/{id}", Summary: "Change a promotion: a new version (audited)", Tag: tag,
			Description: "Each member given replaces that whole member (conditions, window, limits, codes…). " +
				"Orders keep the version they were priced with. Limits below what was used already are 422.",
			Access: write, Request: Patch{}, Response: Promotion{}, Handler: s.handleUpdate},
		{Method: "POST", Path: "/api/v1/admin/promotions/{id}/deactivate", Summary: "Deactivate a promotion: a new version (audited)", Tag: tag,
			Description: "409 `invalid_transition` when it is inactive already. Its codes stay taken.",
			Access:      write, Response: Promotion{}, Handler: s.handleDeactivate},
	}
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request) {
	var in Rule
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	by := s.actor(r)
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		p, err := s.CreateTx(ctx, tx, by, in)
		return http.StatusCreated, p, err
	}})
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	page, err := web.PageParams(r)
	if err == nil {
		var out web.Page[Promotion]
		if out, err = s.List(r.Context(), r.URL.Query().Get("status"), page); err == nil {
			web.JSON(w, http.StatusOK, out)
			return
		}
	}
	web.Error(w, r, err)
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	p, err := s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, p)
}

func (s *Service) handleUpdate(w http.ResponseWriter, r *http.Request) {
	var in Patch
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	p, err := s.Update(r.Context(), s.actor(r), r.PathValue("id"), in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, p)
}

func (s *Service) handleDeactivate(w http.ResponseWriter, r *http.Request) {
	by, id := s.actor(r), r.PathValue("id")
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		p, err := s.DeactivateTx(ctx, tx, by, id)
		return http.StatusOK, p, err
	}})
}

// actor is the staff member behind r (the router has checked the
// permission).
func (s *Service) actor(r *http.Request) Actor {
	p, _ := web.PrincipalFrom(r.Context())
	return Actor{ID: p.UserID, IP: s.clientIP(r)}
}
