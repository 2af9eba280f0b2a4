package inventory

import (
	"context"
	"net/http"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// Routes returns inventory's HTTP routes (docs/api.md "Inventory").
func (s *Service) Routes() []web.Route {
	const tag = "inventory"
	read, write := web.Permission(PermRead), web.Permission(PermWrite)
	return []web.Route{
		{Method: "GET", Path: "/api/v1/admin/inventory/locations", Summary: "List the stock locations", Tag: tag, Access: read,
			Query: []string{"limit", "cursor"}, Response: web.Page[Location]{}, Handler: s.handleLocations},
		{Method: "POST", Path: "/api/v1/admin/inventory/locations", Summary: "Create a stock location", Tag: tag, Access: write,
			Request: LocationRequest{}, Response: Location{}, Status: http.StatusCreated, Handler: s.handleCreateLocation,
			Description: "409 `location_exists` when the code is taken. `default` always exists."},
		{Method: "GET", Path: "/api/v1/admin/inventory/{sku}", Summary: "A SKU's stock per location", Tag: tag, Access: read,
			Response: Level{}, Handler: s.handleStock},
		{Method: "PUT", Path: "/api/v1/admin/inventory/{sku}", Summary: "Set a SKU's on-hand units at a location", Tag: tag, Access: write,
			Request: SetStockRequest{}, Response: Level{}, Handler: s.handleSetStock,
			Description: "Writes a `receipt` (raised) or `adjustment` (lowered) ledger row. 409 `below_reserved` when `on_hand` is " +
				"below the units reserved there; 422 for an unknown location."},
		{Method: "GET", Path: "/api/v1/admin/inventory/{sku}/ledger", Summary: "A SKU's stock ledger, newest first", Tag: tag, Access: read,
			Query: []string{"limit", "cursor"}, Response: web.Page[LedgerEntry]{}, Handler: s.handleLedger},
		{Method: "GET", Path: "/api/v1/admin/inventory/{sku}/guard", Summary: "A SKU's flash-sale guard and low-stock threshold", Tag: tag,
			Access: read, Response: Guard{}, Handler: s.handleGuard},
		{Method: "PUT", Path: "/api/v1/admin/inventory/{sku}/guard", Summary: "Replace a SKU's flash-sale guard and low-stock threshold", Tag: tag,
			Access: write, Request: GuardRequest{}, Response: Guard{}, Handler: s.handleSetGuard,
			Description: "An absent field is unset. Reservations before `sale_starts_at` are 409 `sale_not_started`, from `sale_ends_at` " +
				"409 `sale_ended`; more than `per_customer_limit` units reserved or committed by one customer is 422 `limit_exceeded`."},
	}
}

func actor(r *http.Request) string {
	p, _ := web.PrincipalFrom(r.Context())
	return p.UserID
}

func (s *Service) handleLocations(w http.ResponseWriter, r *http.Request) {
	p, err := web.PageParams(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	page, err := s.Locations(r.Context(), p)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, page)
}

func (s *Service) handleCreateLocation(w http.ResponseWriter, r *http.Request) {
	var in LocationRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	by := actor(r)
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		loc, err := s.CreateLocationTx(ctx, tx, in, by)
		return http.StatusCreated, loc, err
	}})
}

func (s *Service) handleStock(w http.ResponseWriter, r *http.Request) {
	lv, err := s.Stock(r.Context(), r.PathValue("sku"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, lv)
}

func (s *Service) handleSetStock(w http.ResponseWriter, r *http.Request) {
	var in SetStockRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	if in.OnHand == nil {
		web.Error(w, r, errs.E("inventory.SetStock", errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "on_hand", Message: "is required"}}))
		return
	}
	lv, err := s.SetStock(r.Context(), r.PathValue("sku"), in.Location, *in.OnHand, actor(r))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, lv)
}

func (s *Service) handleLedger(w http.ResponseWriter, r *http.Request) {
	p, err := web.PageParams(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	page, err := s.Ledger(r.Context(), r.PathValue("sku"), p)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, page)
}

func (s *Service) handleGuard(w http.ResponseWriter, r *http.Request) {
	g, err := s.Guard(r.Context(), r.PathValue("sku"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, g)
}

func (s *Service) handleSetGuard(w http.ResponseWriter, r *http.Request) {
	var in GuardRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	sku := r.PathValue("sku")
	var g Guard
	err := s.write.Do(r.Context(), func(tx *sqldb.Tx) (err error) {
		g, err = s.SetGuardTx(r.Context(), tx, sku, in, actor(r))
		return err
	})
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, g)
}
