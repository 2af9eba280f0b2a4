package orders

import (
	"context"
	"net/http"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// ItemRequest is POST /api/v1/carts/{id}/items's body: the line's new
// quantity. Prices are never sent (a price field is 400 unknown field).
type ItemRequest struct {
	SKU      string `json:"sku" maxlen:"64"`
	Quantity int    `json:"quantity" doc:"1 to 10000: the line's quantity from now on."`
}

// maxCartToken bounds an X-Cart-Token header read; a longer one is no token.
const maxCartToken = 100

func (s *Service) routes() []web.Route {
	const tag = "orders"
	guest := "A guest sends the cart token from the answer that created the cart as `X-Cart-Token`; " +
		"a cart or order that is not the caller's is 404."
	return []web.Route{
		{Method: "POST", Path: "/api/v1/carts", Summary: "Create a cart", Tag: tag, Access: web.Public,
			Description: "Signed in: the customer's cart. Anonymous: a guest cart, whose `token` (in this answer only) is sent as `X-Cart-Token` from then on.",
			Response:    Cart{}, Status: http.StatusCreated, Handler: s.handleCreateCart},
		{Method: "GET", Path: "/api/v1/carts/{id}", Summary: "A cart, priced now", Tag: tag, Access: web.Public,
			Description: guest, Response: Cart{}, Handler: s.handleGetCart},
		{Method: "POST", Path: "/api/v1/carts/{id}/items", Summary: "Set a line's quantity", Tag: tag, Access: web.Public,
			Description: guest + " Quantity 1 to 10000; at most 100 lines; an unknown SKU is 422 unknown_sku, one not for sale 422 not_sellable, another currency 422 currency_mismatch.",
			Request:     ItemRequest{}, Response: Cart{}, Handler: s.handleSetItem},
		{Method: "DELETE", Path: "/api/v1/carts/{id}/items/{sku}", Summary: "Remove a line", Tag: tag, Access: web.Public,
			Description: guest, Response: Cart{}, Handler: s.handleRemoveItem},
		{Method: "POST", Path: "/api/v1/carts/{id}/claim", Summary: "Make a guest cart mine", Tag: tag, Access: web.Authenticated,
			Description: "Signed in, with the guest's `X-Cart-Token`: the cart becomes the customer's and its token stops working.",
			Response:    Cart{}, Handler: s.handleClaim},
		{Method: "POST", Path: "/api/v1/carts/{id}/checkout", Summary: "Place an order from a cart", Tag: tag, Access: web.Public,
			Description: guest + " Reserves every line (409 out_of_stock naming the SKUs: nothing reserved, nothing written); the order waits for payment until `expires_at`. " +
				"`coupon_codes` are applied with the codes entered on the cart, as if entered there (at most 5 in all: 422 limit_exceeded); one that cannot apply is 422 coupon_unknown, coupon_expired, coupon_not_applicable or coupon_exhausted naming it, and nothing is written.",
			Request: CheckoutRequest{}, Response: Order{}, Status: http.StatusCreated, Handler: s.handleCheckout},
		{Method: "GET", Path: "/api/v1/orders", Summary: "My orders", Tag: tag, Access: web.Authenticated,
			Description: "Newest first.", Response: web.Page[Order]{}, Query: []string{"limit", "cursor"}, Handler: s.handleMine},
		{Method: "GET", Path: "/api/v1/orders/{id}", Summary: "An order", Tag: tag, Access: web.Public,
			Description: "Its customer, its guest (`X-Cart-Token` of the cart) or staff with orders.read.",
			Response:    Order{}, Handler: s.handleGet},
		{Method: "GET", Path: "/api/v1/orders/{id}/events", Summary: "An order's events", Tag: tag, Access: web.Public,
			Description: "Oldest first; who may read the order may read them.", Response: Timeline{}, Handler: s.handleEvents},
		{Method: "POST", Path: "/api/v1/orders/{id}/pay", Summary: "Pay an order", Tag: tag, Access: web.Public,
			Description: "Sandbox: `tok_success` pays, `tok_decline` is 402 payment_declined and the order stays pending_payment. Not pending_payment: 409 invalid_transition.",
			Request:     PayRequest{}, Response: Order{}, Handler: s.handlePay},
		{Method: "POST", Path: "/api/v1/orders/{id}/cancel", Summary: "Cancel my order", Tag: tag, Access: web.Public,
			Description: "Releases the stock; a paid order is refunded in full. Once shipped: 409 invalid_transition.",
			Response:    Order{}, Handler: s.handleCancel(false)},
		{Method: "GET", Path: "/api/v1/admin/orders", Summary: "Orders", Tag: tag, Access: web.Permission(PermRead),
			Description: "Newest first. `q` matches an order number by prefix or an order id; `created_from` and `created_to` are RFC 3339 ([from, to)).",
			Response:    web.Page[Order]{}, Handler: s.handleAdminList,
			Query: []string{"status", "payment_status", "fulfillment_status", "channel", "customer", "q", "created_from", "created_to", "limit", "cursor"}},
		{Method: "GET", Path: "/api/v1/admin/orders/{id}", Summary: "Any order", Tag: tag, Access: web.Permission(PermRead),
			Response: Order{}, Handler: s.handleAdminGet},
		{Method: "POST", Path: "/api/v1/admin/orders/{id}/cancel", Summary: "Cancel any order", Tag: tag, Access: web.Permission(PermWrite),
			Description: "As the customer's cancel, by staff.", Response: Order{}, Handler: s.handleCancel(true)},
	}
}

// callerOf is the request's caller: the signed-in user, the cart token.
func callerOf(r *http.Request) Caller {
	c := Caller{Channel: "web"}
	if p, ok := web.PrincipalFrom(r.Context()); ok {
		c.CustomerID = p.UserID
		if p.Channel != "" {
			c.Channel = p.Channel
		}
	}
	if tok := r.Header.Get(HeaderCartToken); len(tok) <= maxCartToken {
		c.CartToken = tok
	}
	return c
}

// staff reports whether the caller holds perm.
func (s *Service) staff(r *http.Request, perm string) bool {
	p, ok := web.PrincipalFrom(r.Context())
	return ok && s.perms != nil && s.perms.Allowed(p, perm)
}

// run answers r through the idempotent write path; a guest's keys are
// scoped by the cart token.
func (s *Service) run(w http.ResponseWriter, r *http.Request, status int, c Caller, fn func(ctx context.Context, tx *sqldb.Tx) (any, error)) {
	s.mutate(w, r, c, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		v, err := fn(ctx, tx)
		return status, v, err
	}})
}

// mutate answers r with m through the idempotent write path, a guest's
// keys scoped by the cart token.
func (s *Service) mutate(w http.ResponseWriter, r *http.Request, c Caller, m web.Mutation) {
	if c.CartToken != "" {
		m.Scope = "cart:" + c.tokenHash()
	}
	s.idem.Run(w, r, s.write, m)
}

// do answers r with one unit of the write path (no idempotency: GET, DELETE).
func (s *Service) do(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context, tx *sqldb.Tx) (any, error)) {
	var v any
	err := s.write.Do(r.Context(), func(tx *sqldb.Tx) (err error) { v, err = fn(r.Context(), tx); return err })
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, v)
}

func (s *Service) handleCreateCart(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	s.run(w, r, http.StatusCreated, c, func(ctx context.Context, tx *sqldb.Tx) (any, error) { return s.CreateCartTx(ctx, tx, c) })
}

// handleGetCart quotes in a read transaction: the catalog is read inside a
// transaction (the Catalog contract), and nothing is written.
func (s *Service) handleGetCart(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	s.view(w, r, func(ctx context.Context, tx *sqldb.Tx) (any, error) { return s.CartTx(ctx, tx, c, r.PathValue("id")) })
}

// view answers r from a read transaction on the reader pool (quotes: the
// same reads checkout makes in its unit, with nothing to write).
func (s *Service) view(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context, tx *sqldb.Tx) (any, error)) {
	var v any
	err := s.db.ReadTx(r.Context(), func(tx *sqldb.Tx) (err error) { v, err = fn(r.Context(), tx); return err })
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, v)
}

func (s *Service) handleSetItem(w http.ResponseWriter, r *http.Request) {
	var in ItemRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	c := callerOf(r)
	var known *Variant // read from the reader pool before the unit: one writer statement fewer
	s.mutate(w, r, c, web.Mutation{
		Prepare: func(ctx context.Context) error {
			if in.SKU != "" {
				known = s.sellableVariant(ctx, in.SKU)
			}
			return nil
		},
		Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
			v, err := s.setItemTx(ctx, tx, c, r.PathValue("id"), in.SKU, in.Quantity, known)
			return http.StatusOK, v, err
		},
	})
}

func (s *Service) handleRemoveItem(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	s.do(w, r, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return s.RemoveItemTx(ctx, tx, c, r.PathValue("id"), r.PathValue("sku"))
	})
}

func (s *Service) handleClaim(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	s.run(w, r, http.StatusOK, c, func(ctx context.Context, tx *sqldb.Tx) (any, error) { return s.ClaimTx(ctx, tx, c, r.PathValue("id")) })
}

func (s *Service) handleCheckout(w http.ResponseWriter, r *http.Request) {
	var in CheckoutRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	if err := in.validate(); err != nil {
		web.Error(w, r, err)
		return
	}
	c := callerOf(r)
	s.run(w, r, http.StatusCreated, c, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return s.CheckoutTx(ctx, tx, c, r.PathValue("id"), in)
	})
}

func (s *Service) handleMine(w http.ResponseWriter, r *http.Request) {
	page, err := web.PageParams(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	c := callerOf(r)
	if c.CustomerID == "" {
		web.JSON(w, http.StatusOK, web.Page[Order]{})
		return
	}
	p, err := s.List(r.Context(), Filter{CustomerID: c.CustomerID}, page)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, p)
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	o, err := s.Get(r.Context(), callerOf(r), r.PathValue("id"), s.staff(r, PermRead))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, o)
}

func (s *Service) handleAdminGet(w http.ResponseWriter, r *http.Request) {
	o, err := s.Get(r.Context(), Caller{}, r.PathValue("id"), true)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, o)
}

func (s *Service) handleEvents(w http.ResponseWriter, r *http.Request) {
	t, err := s.Events(r.Context(), callerOf(r), r.PathValue("id"), s.staff(r, PermRead))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, t)
}

func (s *Service) handlePay(w http.ResponseWriter, r *http.Request) {
	var in PayRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	c := callerOf(r)
	if pp, ok := s.payment.(PaymentPreparer); ok {
		s.handlePrepared(w, r, c, in, pp)
		return
	}
	s.run(w, r, http.StatusOK, c, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return s.PayTx(ctx, tx, c, r.PathValue("id"), in)
	})
}

func (s *Service) handleCancel(staff bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r)
		s.run(w, r, http.StatusOK, c, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
			return s.CancelTx(ctx, tx, c, r.PathValue("id"), staff)
		})
	}
}

func (s *Service) handleAdminList(w http.ResponseWriter, r *http.Request) {
	page, err := web.PageParams(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	f, err := parseFilter(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	p, err := s.List(r.Context(), f, page)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, p)
}

// parseFilter reads the staff list's query; an unknown status or a time
// that is not RFC 3339 is 422 naming the parameter.
func parseFilter(r *http.Request) (Filter, error) {
	q := r.URL.Query()
	var v errs.Validation
	f := Filter{Status: Status(q.Get("status")), PaymentStatus: PaymentStatus(q.Get("payment_status")),
		FulfillmentStatus: FulfillmentStatus(q.Get("fulfillment_status")), Channel: q.Get("channel"),
		CustomerID: q.Get("customer"), Q: q.Get("q")}
	oneOf := func(field, val string, allowed ...string) {
		if val == "" {
			return
		}
		for _, a := range allowed {
			if a == val {
				return
			}
		}
		v.Add(field, "is not a known value")
	}
	var sts []string
	for _, st := range Statuses {
		sts = append(sts, string(st))
	}
	oneOf("status", string(f.Status), sts...)
	oneOf("payment_status", string(f.PaymentStatus), "unpaid", "paid", "partially_refunded", "refunded")
	oneOf("fulfillment_status", string(f.FulfillmentStatus), "unfulfilled", "partially_shipped", "shipped", "delivered", "returned")
	for _, tc := range []struct {
		name string
		dst  *time.Time
	}{{"created_from", &f.CreatedFrom}, {"created_to", &f.CreatedTo}} {
		if s := q.Get(tc.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				v.Add(tc.name, "must be an RFC 3339 time")
			}
			*tc.dst = t
		}
	}
	return f, v.Err("orders.parseFilter")
}
