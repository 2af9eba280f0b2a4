package channels

import (
	"context"
	"net/http"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// ConnectorRequest is PUT /api/v1/admin/channels/{code}/connector's body.
type ConnectorRequest struct {
	ConnectorID string `json:"connector_id" maxlen:"64" doc:"A connector's id; empty unbinds the channel's connector."`
}

// SetConnectorTx names the connector that syncs channel code's order
// status back, in tx: the previous connector (if another) loses the channel,
// the new one is restricted to it (Connectors.BindChannelTx), and the
// channel records it. The same connector again changes nothing.
func (s *Service) SetConnectorTx(ctx context.Context, tx *sqldb.Tx, actorID, code string, in ConnectorRequest) (Channel, error) {
	const op = "channels.SetConnector"
	if s.conns == nil {
		return Channel{}, errs.E(op, errs.Unavailable, "no connectors are wired")
	}
	c, err := getTx(ctx, tx, code)
	if err != nil {
		return Channel{}, err
	}
	if c.ConnectorID == in.ConnectorID {
		return c, nil
	}
	if c.ConnectorID != "" {
		if err := s.conns.UnbindChannelTx(ctx, tx, actorID, c.ConnectorID, code); err != nil {
			return Channel{}, err
		}
	}
	if in.ConnectorID != "" {
		if err := s.conns.BindChannelTx(ctx, tx, actorID, in.ConnectorID, code); err != nil {
			return Channel{}, err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE channels_channels SET connector_id = $2 WHERE code = $1`, code, in.ConnectorID); err != nil {
		return Channel{}, errs.E(op, errs.Internal, err)
	}
	c.ConnectorID = in.ConnectorID
	return c, nil
}

func (s *Service) handleConnector(w http.ResponseWriter, r *http.Request) {
	var in ConnectorRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	p, _ := web.PrincipalFrom(r.Context())
	var c Channel
	err := s.write.Do(r.Context(), func(tx *sqldb.Tx) (err error) {
		c, err = s.SetConnectorTx(r.Context(), tx, p.UserID, r.PathValue("code"), in)
		return err
	})
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, c)
}
