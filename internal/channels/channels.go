package channels

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strings"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// Kinds of channel.
const (
	KindWeb         = "web"
	KindApp         = "app"
	KindPOS         = "pos"
	KindMarketplace = "marketplace"
)

// Channel is a sales channel.
type Channel struct {
	Code string `json:"code"`
	Name string `json:"name"`
	Kind string `json:"kind" doc:"web, app, pos or marketplace."`
	// ConnectorID is the connector that carries the status of the
	// channel's orders back to it (PUT …/{code}/connector); absent for none.
	ConnectorID string    `json:"connector_id,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// CreateRequest is POST /api/v1/admin/channels's body.
type CreateRequest struct {
	Code string `json:"code" maxlen:"40" doc:"Lower-case letters, digits, - and _; starts with a letter or digit."`
	Name string `json:"name" maxlen:"200"`
	Kind string `json:"kind" maxlen:"20" doc:"web, app, pos or marketplace."`
}

var codeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

func (in CreateRequest) validate() error {
	var v errs.Validation
	v.Check(codeRE.MatchString(in.Code), "code", "must be 1 to 40 lower-case letters, digits, - or _")
	v.Check(strings.TrimSpace(in.Name) != "", "name", "is required")
	switch in.Kind {
	case KindWeb, KindApp, KindPOS, KindMarketplace:
	default:
		v.Add("kind", "must be web, app, pos or marketplace")
	}
	return v.Err("channels.Create")
}

// CreateTx registers a channel in tx and appends channel.created. A code
// taken is 409 channel_exists.
func (s *Service) CreateTx(ctx context.Context, tx *sqldb.Tx, in CreateRequest) (Channel, error) {
	const op = "channels.Create"
	if err := in.validate(); err != nil {
		return Channel{}, err
	}
	c := Channel{Code: in.Code, Name: strings.TrimSpace(in.Name), Kind: in.Kind, CreatedAt: tx.Now}
	res, err := tx.ExecContext(ctx, `INSERT INTO channels_channels (code, name, kind, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, c.Code, c.Name, c.Kind, sqldb.Micros(tx.Now))
	if err != nil {
		return Channel{}, errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Channel{}, errs.E(op, errs.Internal, err)
	} else if n == 0 {
		return Channel{}, errs.E(op, errs.Conflict, errs.Code("channel_exists"), "a channel with this code exists")
	}
	ev, err := ChannelCreated.New(c.Code, tx.Now, CreatedData{Code: c.Code, Name: c.Name, Kind: c.Kind})
	if err != nil {
		return Channel{}, errs.E(op, errs.Internal, err)
	}
	return c, outbox.Append(ctx, tx, &ev)
}

// Create is CreateTx as one unit of the write path.
func (s *Service) Create(ctx context.Context, in CreateRequest) (c Channel, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { c, err = s.CreateTx(ctx, tx, in); return err })
	return c, err
}

// List returns every channel by code (channels are few).
func (s *Service) List(ctx context.Context) ([]Channel, error) {
	const op = "channels.List"
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT code, name, kind, connector_id, created_at FROM channels_channels ORDER BY code`)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	out := []Channel{}
	for rows.Next() {
		var c Channel
		var at int64
		if err := rows.Scan(&c.Code, &c.Name, &c.Kind, &c.ConnectorID, &at); err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		c.CreatedAt = sqldb.FromMicros(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	return out, nil
}

// getTx reads channel code in tx; missing is 404.
func getTx(ctx context.Context, tx *sqldb.Tx, code string) (Channel, error) {
	var c Channel
	var at int64
	err := tx.QueryRowContext(ctx, `SELECT code, name, kind, connector_id, created_at FROM channels_channels WHERE code = $1`, code).
		Scan(&c.Code, &c.Name, &c.Kind, &c.ConnectorID, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Channel{}, errs.E("channels.get", errs.NotFound, "no such channel")
	}
	if err != nil {
		return Channel{}, errs.E("channels.get", errs.Internal, err)
	}
	c.CreatedAt = sqldb.FromMicros(at)
	return c, nil
}

// TokenResponse is a new channel token, shown once.
type TokenResponse struct {
	Token   string `json:"token" doc:"Shown once; only its hash is stored. Send it as Authorization: Bearer."`
	Channel string `json:"channel"`
}

// IssueTokenTx issues a token of the channel role bound to channel code
// (which must exist: 404) in tx.
func (s *Service) IssueTokenTx(ctx context.Context, tx *sqldb.Tx, code string) (TokenResponse, error) {
	if _, err := getTx(ctx, tx, code); err != nil {
		return TokenResponse{}, err
	}
	if s.tokens == nil {
		return TokenResponse{}, errs.E("channels.IssueToken", errs.Unavailable, "no token issuer is wired")
	}
	tok, err := s.tokens.IssueChannelToken(ctx, tx, code)
	if err != nil {
		return TokenResponse{}, errs.E("channels.IssueToken", err)
	}
	return TokenResponse{Token: tok, Channel: code}, nil
}

// Quota is a channel's cap on the units of one SKU reserved through it.
type Quota struct {
	Channel  string `json:"channel"`
	SKU      string `json:"sku"`
	Units    int64  `json:"units" doc:"The cap."`
	Reserved int64  `json:"reserved" doc:"Units imported through the channel so far."`
}

// QuotaRequest is PUT /api/v1/admin/channels/{code}/quotas/{sku}'s body.
type QuotaRequest struct {
	Units int64 `json:"units" doc:"0 to 1000000000."`
}

// SetQuotaTx sets channel code's cap on sku to in.Units in tx and appends
// channel.quota_set. A cap below the units already reserved through the
// channel is 409 quota_below_reserved.
func (s *Service) SetQuotaTx(ctx context.Context, tx *sqldb.Tx, code, sku string, in QuotaRequest) (Quota, error) {
	const op = "channels.SetQuota"
	var v errs.Validation
	v.Check(sku != "" && len(sku) <= 64, "sku", "must be 1 to 64 characters")
	v.Check(in.Units >= 0 && in.Units <= 1_000_000_000, "units", "must be 0 to 1000000000")
	if err := v.Err(op); err != nil {
		return Quota{}, err
	}
	if _, err := getTx(ctx, tx, code); err != nil {
		return Quota{}, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO channels_quotas (channel, sku, units, reserved, updated_at) VALUES ($1, $2, $3, 0, $4)
		ON CONFLICT (channel, sku) DO UPDATE SET units = excluded.units, updated_at = excluded.updated_at
		WHERE channels_quotas.reserved <= excluded.units`, code, sku, in.Units, sqldb.Micros(tx.Now))
	if err != nil {
		return Quota{}, errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Quota{}, errs.E(op, errs.Internal, err)
	} else if n == 0 {
		return Quota{}, errs.E(op, errs.Conflict, errs.Code("quota_below_reserved"),
			"more units than that were reserved through the channel already")
	}
	q := Quota{Channel: code, SKU: sku, Units: in.Units}
	if err := tx.QueryRowContext(ctx, `SELECT reserved FROM channels_quotas WHERE channel = $1 AND sku = $2`, code, sku).
		Scan(&q.Reserved); err != nil {
		return Quota{}, errs.E(op, errs.Internal, err)
	}
	ev, err := QuotaSet.New(code, tx.Now, QuotaSetData{Channel: code, SKU: sku, Units: in.Units})
	if err != nil {
		return Quota{}, errs.E(op, errs.Internal, err)
	}
	return q, outbox.Append(ctx, tx, &ev)
}

// SetQuota is SetQuotaTx as one unit of the write path.
func (s *Service) SetQuota(ctx context.Context, code, sku string, in QuotaRequest) (q Quota, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { q, err = s.SetQuotaTx(ctx, tx, code, sku, in); return err })
	return q, err
}
