package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// Endpoint is a registered receiver. Its secret is never part of it: it is
// shown once, at creation and on rotation.
type Endpoint struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Events      []string `json:"events" doc:"Event types and patterns (order.*, *) the endpoint receives."`
	Description string   `json:"description"`
	Enabled     bool     `json:"enabled"`
	FIFO        bool     `json:"fifo" doc:"One event per aggregate in flight, in sequence order."`
	// DisabledReason says why a disabled endpoint is: "gone" (it answered
	// 410), "staff" (patched), or "" when enabled.
	DisabledReason string `json:"disabled_reason,omitempty"`
	// PreviousSecretExpiresAt is when the secret before the last rotation
	// stops signing; absent when none does.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

// CreateRequest registers an endpoint.
type CreateRequest struct {
	URL         string   `json:"url" maxlen:"2048"`
	Events      []string `json:"events" maxlen:"100"`
	Description *string  `json:"description,omitempty" maxlen:"500"`
	FIFO        *bool    `json:"fifo,omitempty"`
}

// Created is an endpoint just registered, with its secret (shown this once).
type Created struct {
	Endpoint
	Secret string `json:"secret" doc:"whsec_… — the signing secret; shown once."`
}

// PatchRequest changes an endpoint; absent fields are kept.
type PatchRequest struct {
	URL         *string   `json:"url,omitempty" maxlen:"2048"`
	Events      *[]string `json:"events,omitempty" maxlen:"100"`
	Description *string   `json:"description,omitempty" maxlen:"500"`
	Enabled     *bool     `json:"enabled,omitempty"`
	FIFO        *bool     `json:"fifo,omitempty"`
}

// Rotated is the answer of a secret rotation.
type Rotated struct {
	ID     string `json:"id"`
	Secret string `json:"secret" doc:"The new secret; shown once."`
	// PreviousSecretExpiresAt is when the old secret stops signing: until
	// then every delivery carries both signatures.
	PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at"`
}

// maxFilters bounds an endpoint's event filters.
const maxFilters = 50

// checkFilters validates an endpoint's filters against the known types.
func (s *Service) checkFilters(v *errs.Validation, field string, filters []string) {
	if len(filters) == 0 {
		v.Add(field, "must list at least one event type or pattern")
		return
	}
	if len(filters) > maxFilters {
		v.Add(field, "must list at most "+strconv.Itoa(maxFilters)+" event types or patterns")
		return
	}
	var known []string
	if s.cfg.Types != nil {
		known = s.cfg.Types()
	}
	for i, f := range filters {
		fld := field + "." + strconv.Itoa(i)
		p, err := event.ParsePattern(f)
		if err != nil {
			v.Add(fld, "is not an event type or pattern (order.paid, order.*, *)")
			continue
		}
		if known != nil && !slices.ContainsFunc(known, p.Match) {
			v.Add(fld, "matches no known event type")
		}
	}
}

// checkURL validates a URL; resolve also resolves and guards its host
// (network: never inside a transaction).
func (s *Service) checkURL(ctx context.Context, v *errs.Validation, field, raw string, resolve bool) {
	if raw == "" {
		v.Add(field, "is required")
		return
	}
	if resolve {
		if _, err := s.guard.CheckURL(ctx, raw); err != nil {
			v.Add(field, refusal(err))
		}
		return
	}
	if _, err := (&Guard{AllowPrivate: true, Resolver: noResolve{}}).CheckURL(ctx, raw); err != nil {
		v.Add(field, refusal(err))
	}
}

func refusal(err error) string {
	if errors.Is(err, ErrPrivateAddress) {
		return "resolves to a loopback, private or link-local address"
	}
	return err.Error()
}

// noResolve answers every name with a public address: the syntax-only check.
type noResolve struct{}

func (noResolve) LookupIPAddr(context.Context, string) ([]netIPAddr, error) {
	return []netIPAddr{{IP: publicIP}}, nil
}

// CheckCreate validates in, resolving and guarding its URL (outside any
// transaction); the route calls it before CreateTx.
func (s *Service) CheckCreate(ctx context.Context, in CreateRequest) error {
	var v errs.Validation
	s.checkURL(ctx, &v, "url", in.URL, true)
	s.checkFilters(&v, "events", in.Events)
	return v.Err("webhooks.Create")
}

// CreateTx registers an endpoint in tx and audits it. It checks the URL's
// syntax but does not resolve it: call CheckCreate first (Create does).
func (s *Service) CreateTx(ctx context.Context, tx *sqldb.Tx, actorID string, in CreateRequest) (Created, error) {
	const op = "webhooks.Create"
	var v errs.Validation
	s.checkURL(ctx, &v, "url", in.URL, false)
	s.checkFilters(&v, "events", in.Events)
	if err := v.Err(op); err != nil {
		return Created{}, err
	}
	ep := Endpoint{ID: event.NewID(), URL: in.URL, Events: in.Events, Description: deref(in.Description),
		Enabled: true, FIFO: in.FIFO != nil && *in.FIFO, CreatedAt: tx.Now, UpdatedAt: tx.Now}
	secret := newSecret()
	sealed, err := s.seal.seal(ep.ID, secret)
	if err != nil {
		return Created{}, errs.E(op, errs.Internal, err)
	}
	events, _ := json.Marshal(ep.Events)
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhooks_endpoints (id, url, events, description, enabled, fifo,
			secret_sealed, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $8)`,
		ep.ID, ep.URL, string(events), ep.Description, boolInt(ep.FIFO), sealed, actorID, sqldb.Micros(tx.Now)); err != nil {
		return Created{}, errs.E(op, errs.Internal, err)
	}
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: "webhook.endpoint_created",
		TargetType: "webhook_endpoint", TargetID: ep.ID, After: ep}); err != nil {
		return Created{}, err
	}
	return Created{Endpoint: ep, Secret: secret}, nil
}

// Create is CheckCreate and CreateTx as one unit of the write path.
func (s *Service) Create(ctx context.Context, actorID string, in CreateRequest) (c Created, err error) {
	if err := s.CheckCreate(ctx, in); err != nil {
		return Created{}, err
	}
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { c, err = s.CreateTx(ctx, tx, actorID, in); return err })
	return c, err
}

const endpointCols = `id, url, events, description, enabled, fifo, disabled_reason, previous_secret_until, created_at, updated_at`

type scanner interface{ Scan(...any) error }

func scanEndpoint(r scanner, now time.Time) (Endpoint, error) {
	var ep Endpoint
	var events string
	var enabled, fifo int
	var prevUntil sql.NullInt64
	var created, updated int64
	if err := r.Scan(&ep.ID, &ep.URL, &events, &ep.Description, &enabled, &fifo, &ep.DisabledReason, &prevUntil,
		&created, &updated); err != nil {
		return ep, err
	}
	if err := json.Unmarshal([]byte(events), &ep.Events); err != nil {
		return ep, err
	}
	ep.Enabled, ep.FIFO = enabled == 1, fifo == 1
	ep.CreatedAt, ep.UpdatedAt = sqldb.FromMicros(created), sqldb.FromMicros(updated)
	if prevUntil.Valid && sqldb.FromMicros(prevUntil.Int64).After(now) {
		t := sqldb.FromMicros(prevUntil.Int64)
		ep.PreviousSecretExpiresAt = &t
	}
	return ep, nil
}

// Get returns an endpoint, or NotFound.
func (s *Service) Get(ctx context.Context, id string) (Endpoint, error) {
	ep, err := scanEndpoint(s.db.Reader().QueryRowContext(ctx,
		`SELECT `+endpointCols+` FROM webhooks_endpoints WHERE id = $1 AND kind = 'webhook'`, id), s.db.Now())
	if errors.Is(err, sql.ErrNoRows) {
		return ep, errs.E("webhooks.Get", errs.NotFound, "no such webhook endpoint")
	}
	if err != nil {
		return ep, errs.E("webhooks.Get", errs.Internal, err)
	}
	return ep, nil
}

func (s *Service) getTx(ctx context.Context, tx *sqldb.Tx, op, id string) (Endpoint, error) {
	ep, err := scanEndpoint(tx.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM webhooks_endpoints WHERE id = $1 AND kind = 'webhook'`, id), tx.Now)
	if errors.Is(err, sql.ErrNoRows) {
		return ep, errs.E(op, errs.NotFound, "no such webhook endpoint")
	}
	if err != nil {
		return ep, errs.E(op, errs.Internal, err)
	}
	return ep, nil
}

// List returns a page of endpoints, oldest first.
func (s *Service) List(ctx context.Context, p web.PageRequest) (web.Page[Endpoint], error) {
	const op = "webhooks.List"
	var after string
	if _, err := p.After(&after); err != nil {
		return web.Page[Endpoint]{}, err
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+endpointCols+` FROM webhooks_endpoints
		WHERE id > $1 AND kind = 'webhook' ORDER BY id LIMIT $2`, after, p.Limit+1)
	if err != nil {
		return web.Page[Endpoint]{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	var out []Endpoint
	now := s.db.Now()
	for rows.Next() {
		ep, err := scanEndpoint(rows, now)
		if err != nil {
			return web.Page[Endpoint]{}, errs.E(op, errs.Internal, err)
		}
		out = append(out, ep)
	}
	if err := rows.Err(); err != nil {
		return web.Page[Endpoint]{}, errs.E(op, errs.Internal, err)
	}
	return web.NewPage(out, p.Limit, func(last Endpoint) any { return last.ID }), nil
}

// CheckPatch validates in, resolving and guarding a new URL (outside any
// transaction).
func (s *Service) CheckPatch(ctx context.Context, in PatchRequest) error {
	var v errs.Validation
	if in.URL != nil {
		s.checkURL(ctx, &v, "url", *in.URL, true)
	}
	if in.Events != nil {
		s.checkFilters(&v, "events", *in.Events)
	}
	return v.Err("webhooks.Patch")
}

// PatchTx changes an endpoint in tx and audits it. Enabling an endpoint
// clears its disabled reason; disabling records "staff". A new URL's syntax
// is checked but not resolved: call CheckPatch first (Patch does).
func (s *Service) PatchTx(ctx context.Context, tx *sqldb.Tx, actorID, id string, in PatchRequest) (Endpoint, error) {
	const op = "webhooks.Patch"
	var v errs.Validation
	if in.URL != nil {
		s.checkURL(ctx, &v, "url", *in.URL, false)
	}
	if in.Events != nil {
		s.checkFilters(&v, "events", *in.Events)
	}
	if err := v.Err(op); err != nil {
		return Endpoint{}, err
	}
	before, err := s.getTx(ctx, tx, op, id)
	if err != nil {
		return Endpoint{}, err
	}
	ep := before
	if in.URL != nil {
		ep.URL = *in.URL
	}
	if in.Events != nil {
		ep.Events = *in.Events
	}
	if in.Description != nil {
		ep.Description = *in.Description
	}
	if in.FIFO != nil {
		ep.FIFO = *in.FIFO
	}
	if in.Enabled != nil && *in.Enabled != ep.Enabled {
		ep.Enabled, ep.DisabledReason = *in.Enabled, ""
		if !ep.Enabled {
			ep.DisabledReason = "staff"
		}
	}
	ep.UpdatedAt = tx.Now
	events, _ := json.Marshal(ep.Events)
	if _, err := tx.ExecContext(ctx, `UPDATE webhooks_endpoints SET url = $2, events = $3, description = $4,
			enabled = $5, fifo = $6, disabled_reason = $7, updated_at = $8 WHERE id = $1`,
		id, ep.URL, string(events), ep.Description, boolInt(ep.Enabled), boolInt(ep.FIFO), ep.DisabledReason,
		sqldb.Micros(tx.Now)); err != nil {
		return Endpoint{}, errs.E(op, errs.Internal, err)
	}
	if err := setDeliveriesFIFO(ctx, tx, id, ep.FIFO); err != nil {
		return Endpoint{}, errs.E(op, errs.Internal, err)
	}
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: "webhook.endpoint_updated",
		TargetType: "webhook_endpoint", TargetID: id, Before: before, After: ep}); err != nil {
		return Endpoint{}, err
	}
	if ep.Enabled {
		tx.AfterCommit(s.disp.Wake)
	}
	return ep, nil
}

// Patch is CheckPatch and PatchTx as one unit of the write path.
func (s *Service) Patch(ctx context.Context, actorID, id string, in PatchRequest) (ep Endpoint, err error) {
	if err := s.CheckPatch(ctx, in); err != nil {
		return Endpoint{}, err
	}
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { ep, err = s.PatchTx(ctx, tx, actorID, id, in); return err })
	return ep, err
}

// DeleteTx removes an endpoint with its deliveries and their attempts.
func (s *Service) DeleteTx(ctx context.Context, tx *sqldb.Tx, actorID, id string) error {
	const op = "webhooks.Delete"
	before, err := s.getTx(ctx, tx, op, id)
	if err != nil {
		return err
	}
	for _, q := range []string{`DELETE FROM webhooks_attempts WHERE endpoint_id = $1`,
		`DELETE FROM webhooks_deliveries WHERE endpoint_id = $1`, `DELETE FROM webhooks_endpoints WHERE id = $1`} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return errs.E(op, errs.Internal, err)
		}
	}
	return audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: "webhook.endpoint_deleted",
		TargetType: "webhook_endpoint", TargetID: id, Before: before})
}

// Delete is DeleteTx as one unit of the write path.
func (s *Service) Delete(ctx context.Context, actorID, id string) error {
	return s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.DeleteTx(ctx, tx, actorID, id) })
}

// RotateSecretTx gives an endpoint a new secret; the current one keeps
// signing (beside the new one) for Config.RotationWindow. A rotation
// within the window of the previous one drops the oldest secret.
func (s *Service) RotateSecretTx(ctx context.Context, tx *sqldb.Tx, actorID, id string) (Rotated, error) {
	return s.rotateSecretTx(ctx, tx, actorID, id, webhooksOnly)
}

func (s *Service) rotateSecretTx(ctx context.Context, tx *sqldb.Tx, actorID, id string, fam family) (Rotated, error) {
	const op = "webhooks.RotateSecret"
	var sealed string
	err := tx.QueryRowContext(ctx, `SELECT secret_sealed FROM webhooks_endpoints WHERE id = $1 AND `+fam.where(), id).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return Rotated{}, errs.E(op, errs.NotFound, "no such "+fam.noun())
	}
	if err != nil {
		return Rotated{}, errs.E(op, errs.Internal, err)
	}
	current, err := s.seal.open(id, sealed)
	if err != nil {
		return Rotated{}, errs.E(op, errs.Internal, err)
	}
	secret := newSecret()
	newSealed, err := s.seal.seal(id, secret)
	if err != nil {
		return Rotated{}, errs.E(op, errs.Internal, err)
	}
	prevSealed, err := s.seal.seal(id, current) // sealed afresh: a new nonce
	if err != nil {
		return Rotated{}, errs.E(op, errs.Internal, err)
	}
	until := tx.Now.Add(s.cfg.RotationWindow)
	if _, err := tx.ExecContext(ctx, `UPDATE webhooks_endpoints SET secret_sealed = $2, previous_secret_sealed = $3,
			previous_secret_until = $4, updated_at = $5 WHERE id = $1`,
		id, newSealed, prevSealed, sqldb.Micros(until), sqldb.Micros(tx.Now)); err != nil {
		return Rotated{}, errs.E(op, errs.Internal, err)
	}
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: fam.action("secret_rotated"),
		TargetType: fam.target(), TargetID: id, After: map[string]any{"previous_secret_expires_at": until}}); err != nil {
		return Rotated{}, err
	}
	return Rotated{ID: id, Secret: secret, PreviousSecretExpiresAt: until}, nil
}

// RotateSecret is RotateSecretTx as one unit of the write path.
func (s *Service) RotateSecret(ctx context.Context, actorID, id string) (r Rotated, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { r, err = s.RotateSecretTx(ctx, tx, actorID, id); return err })
	return r, err
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
