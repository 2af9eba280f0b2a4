package rates

import (
	"net/http"
	"strconv"
	"strings"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/web"
	"mercato/internal/pricing"
)

// Routes returns the rates module's HTTP routes (docs/api.md "Shipping
// and tax rates").
func (s *Service) Routes() []web.Route {
	const tag = "rates"
	read, write := web.Permission(PermRead), web.Permission(PermWrite)
	return []web.Route{
		{Method: "PUT", Path: "/api/v1/admin/shipping-rates", Summary: "Save the whole shipping table as its next version (audited)", Tag: tag,
			Description: "422 naming each bad field; overlapping zones or brackets name the entry they overlap.",
			Access:      write, Request: ShippingRequest{}, Response: ShippingDocument{}, MaxBody: 4 << 20, Handler: s.handlePutShipping},
		{Method: "GET", Path: "/api/v1/admin/shipping-rates", Summary: "The current shipping table", Tag: tag,
			Access: read, Response: ShippingDocument{}, Handler: s.handleGetShipping},
		{Method: "PUT", Path: "/api/v1/admin/tax-rates", Summary: "Save the whole tax table as its next version (audited)", Tag: tag,
			Description: "422 naming each bad field; two entries for one place name the entry they overlap.",
			Access:      write, Request: TaxRequest{}, Response: TaxDocument{}, MaxBody: 4 << 20, Handler: s.handlePutTax},
		{Method: "GET", Path: "/api/v1/admin/tax-rates", Summary: "The current tax table", Tag: tag,
			Access: read, Response: TaxDocument{}, Handler: s.handleGetTax},
		{Method: "GET", Path: "/api/v1/shipping-methods", Summary: "The shipping methods an address can have, with their prices", Tag: tag,
			Description: "`subtotal` (the cart's discounted subtotal, in minor units of the table's currency) and `weight_grams` " +
				"price the methods; both default to 0. No method for an address in no zone.",
			Access: web.Public, Query: []string{"country", "region", "postal_code", "subtotal", "weight_grams"},
			Response: Methods{}, Handler: s.handleMethods},
	}
}

// Methods is the answer of GET /api/v1/shipping-methods.
type Methods struct {
	Version  int64                  `json:"version" doc:"The shipping table's version."`
	Currency string                 `json:"currency"`
	Methods  []pricing.MethodOption `json:"methods" doc:"{method, price, zone}, in the zone's order."`
}

func (s *Service) handlePutShipping(w http.ResponseWriter, r *http.Request) {
	var in ShippingRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	d, err := s.PutShipping(r.Context(), s.actor(r), in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, d)
}

func (s *Service) handleGetShipping(w http.ResponseWriter, r *http.Request) {
	d, err := s.Shipping(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, d)
}

func (s *Service) handlePutTax(w http.ResponseWriter, r *http.Request) {
	var in TaxRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	d, err := s.PutTax(r.Context(), s.actor(r), in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, d)
}

func (s *Service) handleGetTax(w http.ResponseWriter, r *http.Request) {
	d, err := s.Tax(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, d)
}

func (s *Service) handleMethods(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var v errs.Validation
	addr := pricing.Address{Country: strings.ToUpper(q.Get("country")), Region: strings.ToUpper(q.Get("region")),
		PostalCode: q.Get("postal_code")}
	v.Check(len(addr.Country) == 2, "country", "must be an ISO 3166 alpha-2 code")
	v.Check(len(addr.Region) <= 16, "region", "must be at most 16 characters")
	v.Check(len(addr.PostalCode) <= 16, "postal_code", "must be at most 16 characters")
	count := func(name string) int64 {
		s := q.Get(name)
		if s == "" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			v.Add(name, "must be an integer of at least 0")
		}
		return n
	}
	subtotal, weight := count("subtotal"), count("weight_grams")
	if err := v.Err("rates.Methods"); err != nil {
		web.Error(w, r, err)
		return
	}
	st, currency, _, err := s.current(r.Context(), s.db.Reader(), nil)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	out := Methods{Version: st.Version, Currency: currency, Methods: []pricing.MethodOption{}}
	if currency != "" {
		sub, err := money.New(subtotal, currency)
		if err != nil {
			web.Error(w, r, errs.E("rates.Methods", errs.Invalid, errs.CodeValidation, "bad subtotal",
				[]errs.FieldError{{Field: "subtotal", Message: "is out of range"}}))
			return
		}
		if ms := st.Methods(pricing.Cart{Subtotal: sub, WeightGrams: weight}, addr); ms != nil {
			out.Methods = ms
		}
	}
	web.JSON(w, http.StatusOK, out)
}

// actor is the staff member behind r (the router has checked the
// permission).
func (s *Service) actor(r *http.Request) Actor {
	p, _ := web.PrincipalFrom(r.Context())
	return Actor{ID: p.UserID, IP: s.clientIP(r)}
}
