package webhooks

import (
	"context"
	"database/sql"
	"errors"

	"mercato/internal/platform/errs"
)

// Kinds of endpoint. A webhook POSTs the event envelope; the connector
// kinds map it to an outside format first (connector.go).
const (
	KindWebhook  = "webhook"
	KindHTTPJSON = "http_json"
	KindFileDrop = "file_drop"
)

// family is which endpoints a route sees: /admin/webhooks sees webhooks
// only, /admin/connectors connectors only (an id of the other family is
// 404 there), so that one table serves both without either API showing
// the other's rows.
type family int

const (
	webhooksOnly family = iota
	connectorsOnly
	httpConnectorsOnly // the connectors with a secret
)

func (f family) where() string {
	switch f {
	case connectorsOnly:
		return "kind <> 'webhook'"
	case httpConnectorsOnly:
		return "kind = 'http_json'"
	}
	return "kind = 'webhook'"
}

func (f family) noun() string {
	switch f {
	case connectorsOnly:
		return "connector"
	case httpConnectorsOnly:
		return "http_json connector"
	}
	return "webhook endpoint"
}

// action names an audit action of the family ("webhook.test_sent",
// "connector.test_sent").
func (f family) action(verb string) string {
	if f != webhooksOnly {
		return "connector." + verb
	}
	return "webhook." + verb
}

func (f family) target() string {
	if f != webhooksOnly {
		return "connector"
	}
	return "webhook_endpoint"
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// exists is NotFound unless endpoint id is of the family.
func (s *Service) exists(ctx context.Context, q rowQuerier, op, id string, fam family) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM webhooks_endpoints WHERE id = $1 AND `+fam.where(), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return errs.E(op, errs.NotFound, "no such "+fam.noun())
	}
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	return nil
}
