package reviews

import (
	"context"
	"net/http"

	"mercato/internal/accounts"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// Routes returns the reviews module's HTTP routes (docs/api.md "Reviews");
// every POST is idempotent.
func (s *Service) Routes() []web.Route {
	const tag = "reviews"
	moderate := web.Permission(PermModerate)
	return []web.Route{
		{Method: "POST", Path: "/api/v1/products/{id}/reviews", Summary: "Review a product (customers; one review per product)", Tag: tag,
			Description: "`verified_purchase` is set by the server: the customer has a paid order with the product. " +
				"404 for a product that is missing or not active; 409 `already_reviewed` for a second review; " +
				"403 for staff and channel tokens.",
			Access: web.Authenticated, Request: CreateRequest{}, Response: Review{}, Status: http.StatusCreated, Handler: s.handleCreate},
		{Method: "GET", Path: "/api/v1/products/{id}/reviews", Summary: "A product's visible reviews, newest first", Tag: tag,
			Access: web.Public, Query: []string{"limit", "cursor"}, Response: web.Page[Review]{}, Handler: s.handleProductList},
		{Method: "GET", Path: "/api/v1/admin/reviews", Summary: "List reviews of every product and status, newest first", Tag: tag,
			Access: web.Permission(PermRead), Query: []string{"status", "product_id", "limit", "cursor"},
			Response: web.Page[StaffReview]{}, Handler: s.handleStaffList},
		{Method: "POST", Path: "/api/v1/admin/reviews/{id}/hide", Summary: "Hide a review (it leaves the public list and the rating; audited)", Tag: tag,
			Access: moderate, Request: HideRequest{}, Response: StaffReview{}, Handler: s.handleHide},
		{Method: "POST", Path: "/api/v1/admin/reviews/{id}/restore", Summary: "Restore a hidden review (audited)", Tag: tag,
			Access: moderate, Response: StaffReview{}, Handler: s.handleRestore},
	}
}

var errNotCustomer = errs.E("reviews", errs.Forbidden, "only customers review products")

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request) {
	var in CreateRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	p, _ := web.PrincipalFrom(r.Context())
	if !p.HasRole(accounts.RoleCustomer) || p.Channel != "" {
		web.Error(w, r, errNotCustomer)
		return
	}
	productID := r.PathValue("id")
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		rv, err := s.CreateTx(ctx, tx, p.UserID, productID, in)
		return http.StatusCreated, rv, err
	}})
}

func (s *Service) handleProductList(w http.ResponseWriter, r *http.Request) {
	page, err := web.PageParams(r)
	if err == nil {
		var out web.Page[Review]
		if out, err = s.ProductReviews(r.Context(), r.PathValue("id"), page); err == nil {
			web.JSON(w, http.StatusOK, out)
			return
		}
	}
	web.Error(w, r, err)
}

func (s *Service) handleStaffList(w http.ResponseWriter, r *http.Request) {
	page, err := web.PageParams(r)
	if err == nil {
		q := r.URL.Query()
		var out web.Page[StaffReview]
		if out, err = s.List(r.Context(), Filter{Status: q.Get("status"), ProductID: q.Get("product_id"), Page: page}); err == nil {
			web.JSON(w, http.StatusOK, out)
			return
		}
	}
	web.Error(w, r, err)
}

func (s *Service) handleHide(w http.ResponseWriter, r *http.Request) {
	var in HideRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	by := s.actor(r)
	id := r.PathValue("id")
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		rv, err := s.HideTx(ctx, tx, by, id, in.Reason)
		return http.StatusOK, rv, err
	}})
}

func (s *Service) handleRestore(w http.ResponseWriter, r *http.Request) {
	by := s.actor(r)
	id := r.PathValue("id")
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		rv, err := s.RestoreTx(ctx, tx, by, id)
		return http.StatusOK, rv, err
	}})
}

// actor is the staff member behind r (the router has checked the
// permission).
func (s *Service) actor(r *http.Request) Actor {
	p, _ := web.PrincipalFrom(r.Context())
	return Actor{ID: p.UserID, IP: s.clientIP(r)}
}
