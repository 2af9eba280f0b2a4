package channels

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"mercato/internal/accounts"
	"mercato/internal/orders"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/idem"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

func (s *Service) routes() []web.Route {
	manage := web.Permission(PermManage)
	return []web.Route{
		{Method: "POST", Path: "/api/v1/admin/channels", Summary: "Register a sales channel", Tag: "channels",
			Description: "A code taken is 409 channel_exists.",
			Access:      manage, Request: CreateRequest{}, Response: Channel{}, Status: http.StatusCreated, Handler: s.handleCreate},
		{Method: "GET", Path: "/api/v1/admin/channels", Summary: "List the sales channels", Tag: "channels",
			Access: manage, Response: web.Page[Channel]{}, Handler: s.handleList},
		{Method: "POST", Path: "/api/v1/admin/channels/{code}/tokens", Summary: "Issue an API token for a channel", Tag: "channels",
			Description: "The token has the channel role, is bound to the channel, and is shown once (only its hash is kept).",
			Access:      manage, Response: TokenResponse{}, Status: http.StatusCreated, Handler: s.handleToken},
		{Method: "PUT", Path: "/api/v1/admin/channels/{code}/quotas/{sku}", Summary: "Cap the units of a SKU a channel may reserve", Tag: "channels",
			Description: "Counts the units imported through the channel; an import beyond the cap is 409 quota_exceeded. " +
				"A cap below what was reserved already is 409 quota_below_reserved.",
			Access: manage, Request: QuotaRequest{}, Response: Quota{}, Handler: s.handleQuota},
		{Method: "PUT", Path: "/api/v1/admin/channels/{code}/connector", Summary: "Name the connector that syncs a channel's order status back",
			Description: "The connector then receives only the events of the orders of its channels; an empty connector_id unbinds " +
				"(a connector left with no channel is disabled). An id that is no connector is 422.",
			Tag: "channels", Access: manage, Request: ConnectorRequest{}, Response: Channel{}, Handler: s.handleConnector},
		{Method: "POST", Path: "/api/v1/admin/channels/{code}/orders/import", Summary: "Import a channel's orders from CSV", Tag: "channels",
			Description: "For channels without an API. Body: `text/csv`, one row per order line, columns in docs/api.md; " +
				"each order imports alone as through the channel's API (once per external_id); the answer lists every refused order.",
			Access: manage, Response: CSVReport{}, MaxBody: MaxCSVBody, BodyType: "text/csv", Handler: s.handleImportCSV},
		{Method: "POST", Path: "/api/v1/channels/{code}/orders", Summary: "Import an order the channel took", Tag: "channels",
			Description: "Needs a token of the channel role bound to {code} (another channel's token is 403). " +
				"Prices are the channel's, recorded as given; the order is placed and paid, its stock reserved from the shared pool. " +
				"The same external_id again answers 200 with the first order and reserves nothing (the Idempotency-Key header is not needed: " +
				"external_id is the key). Unknown SKU or a bad price is 422 and reserves nothing; a shortage 409 out_of_stock; " +
				"over the channel's quota 409 quota_exceeded.",
			Access: web.Authenticated, Request: ImportRequest{}, Response: orders.Order{}, Status: http.StatusCreated, Handler: s.handleImport},
	}
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request) {
	var in CreateRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		c, err := s.CreateTx(ctx, tx, in)
		return http.StatusCreated, c, err
	}})
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	cs, err := s.List(r.Context())
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, web.Page[Channel]{Items: cs})
}

func (s *Service) handleToken(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		t, err := s.IssueTokenTx(ctx, tx, code)
		return http.StatusCreated, t, err
	}})
}

func (s *Service) handleQuota(w http.ResponseWriter, r *http.Request) {
	var in QuotaRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	q, err := s.SetQuota(r.Context(), r.PathValue("code"), r.PathValue("sku"), in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, q)
}

// handleImport imports the channel's order, de-duplicated by external_id
// through the idempotency store (scope: the channel; key: the external
// id; fingerprint: the external id alone, so that a repeat with another
// body still answers with the first order) and channels_imports' key. The
// first import answers 201; every repeat 200 with the same order. Failures
// are not recorded: the channel may send the order again once it is fixed
// (stock received, SKU added).
func (s *Service) handleImport(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	p, _ := web.PrincipalFrom(r.Context())
	if !slices.Contains(p.Roles, accounts.RoleChannel) || p.Channel != code {
		web.Error(w, r, errs.E("channels.Import", errs.Forbidden, "this route takes a token of this channel"))
		return
	}
	var in ImportRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	if in.ExternalID == "" {
		web.Error(w, r, errs.E("channels.Import", errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "external_id", Message: "is required"}}))
		return
	}
	req := idem.Request{Scope: "channel-orders:" + code, Key: "order:" + in.ExternalID, Material: []byte(in.ExternalID)}
	res, err := s.idem.Store().Do(r.Context(), s.write, req, func(ctx context.Context, tx *sqldb.Tx) (idem.Outcome, error) {
		im, err := s.ImportTx(ctx, tx, code, in)
		if err != nil {
			return idem.Outcome{}, err
		}
		b, err := json.Marshal(im.Order)
		if err != nil {
			return idem.Outcome{}, errs.E("channels.Import", errs.Internal, err)
		}
		status := http.StatusOK
		if im.Created {
			status = http.StatusCreated
		}
		return idem.Outcome{Status: status, ContentType: "application/json", Body: b}, nil
	})
	switch {
	case errors.Is(err, idem.ErrKeyInUse):
		err = errs.E("channels.Import", errs.Conflict, errs.CodeIdemInUse, "this order is still being imported; retry later")
	case errors.Is(err, idem.ErrKeyReused): // not expected: the fingerprint is the key
		err = errs.E("channels.Import", errs.Conflict, errs.Code("import_conflict"), "this external_id was imported otherwise")
	}
	if err != nil {
		web.Error(w, r, err)
		return
	}
	status := res.Status
	if res.Replayed {
		status = http.StatusOK
		w.Header().Set(web.HeaderReplayed, "true")
	}
	w.Header().Set("Content-Type", res.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(res.Body)))
	w.WriteHeader(status)
	w.Write(res.Body)
}
