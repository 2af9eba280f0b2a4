package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// A connector is a consumer of the shop's events for a system on another
// stack (an ERP, a WMS, a service desk): it maps each event its filters
// select to an outside format and delivers it with everything webhooks
// have — one recorded delivery per event, the attempt log, the retry
// schedule, dead letters and replay, the per-endpoint concurrency limit and
// circuit breaker, and a row in the sync monitor — because it is a webhook
// endpoint of another kind, in the same table. Two kinds:
//
//   - http_json POSTs the JSON object its mapping template builds (see
//     template.go) to its URL, with its static headers (sealed at rest: they
//     may hold credentials) and the Standard Webhooks headers signed over
//     that body with its secret; the URL passes the same SSRF guard as a
//     webhook's, at registration and at dial time.
//   - file_drop appends a JSON line or a CSV row (the template's members
//     are the columns) per event to rotated files in a directory of the
//     operator's (filedrop.go).
//
// A connector may be restricted to the orders of some sales channels
// (channels): it then receives only the events of those channels' orders —
// "status synced back to the channel" (channelsync.go).

// Connector is a registered connector. Its secret and header values are
// never part of it.
type Connector struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Kind        string   `json:"kind" doc:"http_json or file_drop."`
	Events      []string `json:"events" doc:"Event types and patterns (order.*, *) the connector receives."`
	Channels    []string `json:"channels" doc:"Sales channels whose orders' events it receives only; empty: every event its filters select."`
	Description string   `json:"description"`
	Enabled     bool     `json:"enabled"`
	FIFO        bool     `json:"fifo" doc:"One event per aggregate in flight, in sequence order."`
	// DisabledReason is "gone" (an http_json receiver answered 410),
	// "staff", "unbound" (its last channel named another connector), or "".
	DisabledReason string          `json:"disabled_reason,omitempty"`
	Template       json.RawMessage `json:"template" doc:"The mapping template: a JSON object of output fields."`
	URL            string          `json:"url,omitempty" doc:"http_json: where it POSTs."`
	Headers        []string        `json:"headers,omitempty" doc:"http_json: the names of its static headers (values are never shown)."`
	File           string          `json:"file,omitempty" doc:"file_drop: its directory and file stem under the operator's connector directory."`
	Format         string          `json:"format,omitempty" doc:"file_drop: jsonl or csv."`
	RotateBytes    int64           `json:"rotate_bytes,omitempty" doc:"file_drop: a file is closed before it would grow past this size."`
	RotateSeconds  int64           `json:"rotate_seconds,omitempty" doc:"file_drop: a file is closed this long after it was opened (absent: by size only)."`
	// PreviousSecretExpiresAt is when an http_json connector's secret
	// before the last rotation stops signing; absent when none does.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

// ConnectorRequest registers a connector.
type ConnectorRequest struct {
	Name          string            `json:"name" maxlen:"100"`
	Kind          string            `json:"kind" maxlen:"20" doc:"http_json or file_drop."`
	Events        []string          `json:"events" maxlen:"100"`
	Channels      []string          `json:"channels,omitempty" maxlen:"40" doc:"At most 20 channel codes."`
	Description   *string           `json:"description,omitempty" maxlen:"500"`
	FIFO          *bool             `json:"fifo,omitempty"`
	Template      json.RawMessage   `json:"template" doc:"At most 16 KiB, 100 fields."`
	URL           string            `json:"url,omitempty" maxlen:"2048" doc:"http_json only."`
	Headers       map[string]string `json:"headers,omitempty" maxlen:"1024" doc:"http_json only: at most 10 static headers."`
	File          string            `json:"file,omitempty" maxlen:"64" doc:"file_drop only: 1-64 of a-z 0-9 - _, starting with a letter or digit."`
	Format        string            `json:"format,omitempty" maxlen:"10" doc:"file_drop only: jsonl (default) or csv."`
	RotateBytes   *int64            `json:"rotate_bytes,omitempty" doc:"file_drop only: 4096 to 1073741824 (default 16 MiB)."`
	RotateSeconds *int64            `json:"rotate_seconds,omitempty" doc:"file_drop only: 0 (by size only) or 60 to 604800 (default 3600)."`
}

// ConnectorCreated is a connector just registered; an http_json one comes
// with its signing secret, shown this once.
type ConnectorCreated struct {
	Connector
	Secret string `json:"secret,omitempty" doc:"http_json: whsec_… — the signing secret; shown once."`
}

// ConnectorPatch changes a connector; absent fields are kept. The kind and
// the file are fixed at registration.
type ConnectorPatch struct {
	Name          *string            `json:"name,omitempty" maxlen:"100"`
	Events        *[]string          `json:"events,omitempty" maxlen:"100"`
	Channels      *[]string          `json:"channels,omitempty" maxlen:"40"`
	Description   *string            `json:"description,omitempty" maxlen:"500"`
	Enabled       *bool              `json:"enabled,omitempty"`
	FIFO          *bool              `json:"fifo,omitempty"`
	Template      json.RawMessage    `json:"template,omitempty"`
	URL           *string            `json:"url,omitempty" maxlen:"2048"`
	Headers       *map[string]string `json:"headers,omitempty" maxlen:"1024" doc:"Replaces every static header."`
	Format        *string            `json:"format,omitempty" maxlen:"10"`
	RotateBytes   *int64             `json:"rotate_bytes,omitempty"`
	RotateSeconds *int64             `json:"rotate_seconds,omitempty"`
}

// connectorConfig is what the config column holds.
type connectorConfig struct {
	Template      json.RawMessage `json:"template"`
	Headers       []string        `json:"headers,omitempty"`
	Format        string          `json:"format,omitempty"`
	RotateBytes   int64           `json:"rotate_bytes,omitempty"`
	RotateSeconds int64           `json:"rotate_seconds,omitempty"`
}

// Bounds of a connector.
const (
	maxHeaders       = 10
	maxChannels      = 20
	defaultRotate    = 16 << 20
	defaultRotateAge = 3600
)

// CodeInvalidTemplate is the code of a registration or change refused for
// its mapping template (422; the errors name the template's fields).
const CodeInvalidTemplate = errs.Code("invalid_template")

var (
	headerNameRE  = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
	channelCodeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
)

// reservedHeader reports whether a static header would override what the
// dispatcher sets or the transport owns.
func reservedHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "content-type", "content-length", "host", "user-agent", "connection", "transfer-encoding", "te", "trailer",
		"upgrade", "expect", "keep-alive", "cookie":
		return true
	}
	return strings.HasPrefix(n, "webhook-") || strings.HasPrefix(n, "proxy-")
}

// knownFields is the data-field check of a connector selecting filters:
// a name is known when a payload of an event type the filters select has
// it. Nil (everything known) without Config.Payloads or when no selected
// type is described.
func (s *Service) knownFields(filters []string) fieldKnown {
	if s.cfg.Payloads == nil {
		return nil
	}
	var ps []event.Pattern
	for _, f := range filters {
		if p, err := event.ParsePattern(f); err == nil {
			ps = append(ps, p)
		}
	}
	names := map[string]bool{}
	described := false
	for _, ti := range s.cfg.Payloads() {
		if !slices.ContainsFunc(ps, func(p event.Pattern) bool { return p.Match(ti.Type) }) {
			continue
		}
		described = true
		for _, f := range ti.Fields {
			names[f.Name] = true
		}
	}
	if !described {
		return nil
	}
	return func(n string) bool { return names[n] }
}

// spec is a connector's settings being checked, after defaults.
type spec struct {
	kind, url, file, format string
	events, channels        []string
	template                json.RawMessage
	headers                 map[string]string
	rotateBytes, rotateAge  int64
}

// check validates sp; resolve also resolves and guards an http_json URL
// (network: never inside a transaction). A template problem makes the
// error's code invalid_template.
func (s *Service) check(ctx context.Context, op string, sp spec, resolve bool) error {
	var v errs.Validation
	s.checkFilters(&v, "events", sp.events)
	if len(sp.channels) > maxChannels {
		v.Add("channels", "must list at most "+strconv.Itoa(maxChannels)+" channels")
	}
	for i, c := range sp.channels {
		v.Check(channelCodeRE.MatchString(c), "channels."+strconv.Itoa(i), "is not a channel code")
	}
	switch sp.kind {
	case KindHTTPJSON:
		s.checkURL(ctx, &v, "url", sp.url, resolve)
		v.Check(len(sp.headers) <= maxHeaders, "headers", "must have at most "+strconv.Itoa(maxHeaders)+" headers")
		for _, name := range sortedKeys(sp.headers) {
			switch {
			case !headerNameRE.MatchString(name):
				v.Add("headers."+clip(name, 64), "is not an HTTP header name")
			case reservedHeader(name):
				v.Add("headers."+name, "is set by the connector itself")
			case strings.ContainsAny(sp.headers[name], "\r\n\x00"):
				v.Add("headers."+name, "must not hold a line break or NUL")
			}
		}
		v.Check(sp.file == "" && sp.format == "" && sp.rotateBytes == 0 && sp.rotateAge == 0, "kind",
			"http_json takes url and headers, not file, format or rotation")
	case KindFileDrop:
		v.Check(s.cfg.ConnectorDir != "", "kind", "file_drop needs the server's connector directory (serve --connector-dir)")
		v.Check(fileNameRE.MatchString(sp.file), "file", "must be 1 to 64 of a-z, 0-9, - and _, starting with a letter or digit")
		v.Check(sp.format == FormatJSONL || sp.format == FormatCSV, "format", "must be jsonl or csv")
		v.Check(sp.rotateBytes >= 4096 && sp.rotateBytes <= 1<<30, "rotate_bytes", "must be 4096 to 1073741824")
		v.Check(sp.rotateAge == 0 || sp.rotateAge >= 60 && sp.rotateAge <= 7*24*3600, "rotate_seconds",
			"must be 0 (by size only) or 60 to 604800")
		v.Check(sp.url == "" && len(sp.headers) == 0, "kind", "file_drop takes file, format and rotation, not url or headers")
	default:
		v.Add("kind", "must be http_json or file_drop")
	}
	if err := v.Err(op); err != nil && (sp.kind != KindHTTPJSON && sp.kind != KindFileDrop) {
		return err
	}
	m, terr := parseMapping(sp.template, sp.kind == KindFileDrop && sp.format == FormatCSV, s.knownFields(sp.events))
	if terr == nil && sp.kind == KindFileDrop && m.has("event_id") {
		terr = errors.New("must not name event_id: the connector writes it first in every row")
	}
	if terr != nil {
		v.Add("template", terr.Error())
		return errs.E(op, errs.Invalid, CodeInvalidTemplate, "the mapping template is invalid", v.Fields)
	}
	return v.Err(op)
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (in ConnectorRequest) spec() spec {
	sp := spec{kind: in.Kind, url: in.URL, file: in.File, format: in.Format, events: in.Events, channels: in.Channels,
		template: in.Template, headers: in.Headers}
	if in.RotateBytes != nil {
		sp.rotateBytes = *in.RotateBytes
	}
	if in.RotateSeconds != nil {
		sp.rotateAge = *in.RotateSeconds
	}
	if in.Kind == KindFileDrop {
		if sp.format == "" {
			sp.format = FormatJSONL
		}
		if in.RotateBytes == nil {
			sp.rotateBytes = defaultRotate
		}
		if in.RotateSeconds == nil {
			sp.rotateAge = defaultRotateAge
		}
	}
	if sp.channels == nil {
		sp.channels = []string{}
	}
	return sp
}

// CheckConnector validates in, resolving and guarding an http_json URL
// (outside any transaction); the route calls it before CreateConnectorTx.
func (s *Service) CheckConnector(ctx context.Context, in ConnectorRequest) error {
	return s.check(ctx, "webhooks.CreateConnector", in.spec(), true)
}

// CreateConnectorTx registers a connector in tx and audits it. It checks
// an http_json URL's syntax but does not resolve it: call CheckConnector
// first. A file another file_drop connector writes is 409 file_taken.
func (s *Service) CreateConnectorTx(ctx context.Context, tx *sqldb.Tx, actorID string, in ConnectorRequest) (ConnectorCreated, error) {
	const op = "webhooks.CreateConnector"
	sp := in.spec()
	if err := s.check(ctx, op, sp, false); err != nil {
		return ConnectorCreated{}, err
	}
	var v errs.Validation
	v.Check(strings.TrimSpace(in.Name) != "", "name", "is required")
	if err := v.Err(op); err != nil {
		return ConnectorCreated{}, err
	}
	c := Connector{ID: event.NewID(), Name: strings.TrimSpace(in.Name), Kind: sp.kind, Events: sp.events, Channels: sp.channels,
		Description: deref(in.Description), Enabled: true, FIFO: in.FIFO != nil && *in.FIFO, Template: sp.template,
		CreatedAt: tx.Now, UpdatedAt: tx.Now}
	c.setSpec(sp)
	secret := newSecret()
	sealed, err := s.seal.seal(c.ID, secret)
	if err != nil {
		return ConnectorCreated{}, errs.E(op, errs.Internal, err)
	}
	headers, err := s.sealHeaders(c.ID, sp.headers)
	if err != nil {
		return ConnectorCreated{}, errs.E(op, errs.Internal, err)
	}
	events, _ := json.Marshal(c.Events)
	channels, _ := json.Marshal(c.Channels)
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhooks_endpoints (id, kind, name, url, events, channels, description,
			enabled, fifo, config, headers_sealed, secret_sealed, created_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $11, $12, $13, $13)`,
		c.ID, c.Kind, c.Name, c.storedURL(), string(events), string(channels), c.Description, boolInt(c.FIFO),
		c.config(), headers, sealed, actorID, sqldb.Micros(tx.Now)); err != nil {
		if sqldb.IsUniqueViolation(err) {
			return ConnectorCreated{}, errs.E(op, errs.Conflict, errs.Code("file_taken"), "another file_drop connector writes this file")
		}
		return ConnectorCreated{}, errs.E(op, errs.Internal, err)
	}
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: "connector.created",
		TargetType: "connector", TargetID: c.ID, After: c}); err != nil {
		return ConnectorCreated{}, err
	}
	out := ConnectorCreated{Connector: c}
	if c.Kind == KindHTTPJSON {
		out.Secret = secret
	}
	return out, nil
}

// CreateConnector is CheckConnector and CreateConnectorTx as one unit.
func (s *Service) CreateConnector(ctx context.Context, actorID string, in ConnectorRequest) (c ConnectorCreated, err error) {
	if err := s.CheckConnector(ctx, in); err != nil {
		return ConnectorCreated{}, err
	}
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { c, err = s.CreateConnectorTx(ctx, tx, actorID, in); return err })
	return c, err
}

// setSpec copies the kind's settings of sp into c.
func (c *Connector) setSpec(sp spec) {
	c.URL, c.File, c.Format, c.RotateBytes, c.RotateSeconds, c.Headers = "", "", "", 0, 0, nil
	switch c.Kind {
	case KindHTTPJSON:
		c.URL, c.Headers = sp.url, sortedKeys(sp.headers)
		if len(c.Headers) == 0 {
			c.Headers = nil
		}
	case KindFileDrop:
		c.File, c.Format, c.RotateBytes, c.RotateSeconds = sp.file, sp.format, sp.rotateBytes, sp.rotateAge
	}
}

func (c Connector) storedURL() string {
	if c.Kind == KindFileDrop {
		return "file:" + c.File
	}
	return c.URL
}

func (c Connector) config() string {
	b, _ := json.Marshal(connectorConfig{Template: c.Template, Headers: c.Headers, Format: c.Format,
		RotateBytes: c.RotateBytes, RotateSeconds: c.RotateSeconds})
	return string(b)
}

// sealHeaders seals a connector's static headers ("" for none).
func (s *Service) sealHeaders(id string, h map[string]string) (string, error) {
	if len(h) == 0 {
		return "", nil
	}
	b, _ := json.Marshal(h)
	return s.seal.seal(id, string(b))
}

func (s *Service) openHeaders(id, sealed string) (map[string]string, error) {
	if sealed == "" {
		return nil, nil
	}
	plain, err := s.seal.open(id, sealed)
	if err != nil {
		return nil, err
	}
	var h map[string]string
	return h, json.Unmarshal([]byte(plain), &h)
}

const connectorCols = `id, kind, name, url, events, channels, description, enabled, fifo, disabled_reason, config,
	previous_secret_until, created_at, updated_at`

func scanConnector(r scanner, now time.Time) (Connector, error) {
	var c Connector
	var events, channels, config, url string
	var enabled, fifo int
	var prevUntil sql.NullInt64
	var created, updated int64
	if err := r.Scan(&c.ID, &c.Kind, &c.Name, &url, &events, &channels, &c.Description, &enabled, &fifo,
		&c.DisabledReason, &config, &prevUntil, &created, &updated); err != nil {
		return c, err
	}
	var cfg connectorConfig
	if err := errors.Join(json.Unmarshal([]byte(events), &c.Events), json.Unmarshal([]byte(channels), &c.Channels),
		json.Unmarshal([]byte(config), &cfg)); err != nil {
		return c, err
	}
	c.Enabled, c.FIFO, c.Template, c.Headers = enabled == 1, fifo == 1, cfg.Template, cfg.Headers
	switch c.Kind {
	case KindFileDrop:
		c.File, c.Format, c.RotateBytes, c.RotateSeconds = strings.TrimPrefix(url, "file:"), cfg.Format, cfg.RotateBytes, cfg.RotateSeconds
	default:
		c.URL = url
	}
	c.CreatedAt, c.UpdatedAt = sqldb.FromMicros(created), sqldb.FromMicros(updated)
	if c.Kind == KindHTTPJSON && prevUntil.Valid && sqldb.FromMicros(prevUntil.Int64).After(now) {
		t := sqldb.FromMicros(prevUntil.Int64)
		c.PreviousSecretExpiresAt = &t
	}
	return c, nil
}

// Connector returns a connector, or NotFound.
func (s *Service) Connector(ctx context.Context, id string) (Connector, error) {
	return s.connectorFrom(ctx, s.db.Reader(), "webhooks.Connector", id, s.db.Now())
}

func (s *Service) connectorFrom(ctx context.Context, q rowQuerier, op, id string, now time.Time) (Connector, error) {
	c, err := scanConnector(q.QueryRowContext(ctx, `SELECT `+connectorCols+` FROM webhooks_endpoints
		WHERE id = $1 AND kind <> 'webhook'`, id), now)
	if errors.Is(err, sql.ErrNoRows) {
		return c, errs.E(op, errs.NotFound, "no such connector")
	}
	if err != nil {
		return c, errs.E(op, errs.Internal, err)
	}
	return c, nil
}

// Connectors returns a page of connectors, oldest first.
func (s *Service) Connectors(ctx context.Context, p web.PageRequest) (web.Page[Connector], error) {
	const op = "webhooks.Connectors"
	var after string
	if _, err := p.After(&after); err != nil {
		return web.Page[Connector]{}, err
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+connectorCols+` FROM webhooks_endpoints
		WHERE id > $1 AND kind <> 'webhook' ORDER BY id LIMIT $2`, after, p.Limit+1)
	if err != nil {
		return web.Page[Connector]{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	var out []Connector
	now := s.db.Now()
	for rows.Next() {
		c, err := scanConnector(rows, now)
		if err != nil {
			return web.Page[Connector]{}, errs.E(op, errs.Internal, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return web.Page[Connector]{}, errs.E(op, errs.Internal, err)
	}
	return web.NewPage(out, p.Limit, func(last Connector) any { return last.ID }), nil
}

// patched is c with in applied, as a spec for checking (headers nil when
// in keeps them).
func patched(c Connector, in ConnectorPatch) (Connector, spec) {
	if in.Name != nil {
		c.Name = strings.TrimSpace(*in.Name)
	}
	if in.Events != nil {
		c.Events = *in.Events
	}
	if in.Channels != nil {
		c.Channels = *in.Channels
	}
	if in.Description != nil {
		c.Description = *in.Description
	}
	if in.FIFO != nil {
		c.FIFO = *in.FIFO
	}
	if in.Template != nil {
		c.Template = in.Template
	}
	sp := spec{kind: c.Kind, url: c.URL, file: c.File, format: c.Format, events: c.Events, channels: c.Channels,
		template: c.Template, rotateBytes: c.RotateBytes, rotateAge: c.RotateSeconds}
	if in.URL != nil {
		sp.url = *in.URL
	}
	if in.Headers != nil {
		sp.headers = *in.Headers
	}
	if in.Format != nil {
		sp.format = *in.Format
	}
	if in.RotateBytes != nil {
		sp.rotateBytes = *in.RotateBytes
	}
	if in.RotateSeconds != nil {
		sp.rotateAge = *in.RotateSeconds
	}
	if sp.channels == nil {
		sp.channels = []string{}
	}
	return c, sp
}

// CheckConnectorPatch validates the change of connector id as a whole,
// resolving a new URL (outside any transaction).
func (s *Service) CheckConnectorPatch(ctx context.Context, id string, in ConnectorPatch) error {
	c, err := s.Connector(ctx, id)
	if err != nil {
		return err
	}
	_, sp := patched(c, in)
	return s.check(ctx, "webhooks.PatchConnector", sp, in.URL != nil)
}

// PatchConnectorTx changes a connector in tx and audits it. Enabling it
// clears its disabled reason; disabling records "staff".
func (s *Service) PatchConnectorTx(ctx context.Context, tx *sqldb.Tx, actorID, id string, in ConnectorPatch) (Connector, error) {
	const op = "webhooks.PatchConnector"
	before, err := s.connectorFrom(ctx, tx, op, id, tx.Now)
	if err != nil {
		return Connector{}, err
	}
	c, sp := patched(before, in)
	if err := s.check(ctx, op, sp, false); err != nil {
		return Connector{}, err
	}
	if c.Name == "" {
		return Connector{}, errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "name", Message: "is required"}})
	}
	if in.Headers != nil {
		c.setSpec(sp)
	} else {
		keep := c.Headers
		c.setSpec(sp)
		c.Headers = keep
	}
	if in.Enabled != nil && *in.Enabled != c.Enabled {
		c.Enabled, c.DisabledReason = *in.Enabled, ""
		if !c.Enabled {
			c.DisabledReason = "staff"
		}
	}
	c.UpdatedAt = tx.Now
	events, _ := json.Marshal(c.Events)
	channels, _ := json.Marshal(c.Channels)
	q := `UPDATE webhooks_endpoints SET name = $2, url = $3, events = $4, channels = $5, description = $6, enabled = $7,
		fifo = $8, disabled_reason = $9, config = $10, updated_at = $11`
	args := []any{id, c.Name, c.storedURL(), string(events), string(channels), c.Description, boolInt(c.Enabled),
		boolInt(c.FIFO), c.DisabledReason, c.config(), sqldb.Micros(tx.Now)}
	if in.Headers != nil {
		sealed, err := s.sealHeaders(id, sp.headers)
		if err != nil {
			return Connector{}, errs.E(op, errs.Internal, err)
		}
		q += `, headers_sealed = $12`
		args = append(args, sealed)
	}
	if _, err := tx.ExecContext(ctx, q+` WHERE id = $1`, args...); err != nil {
		return Connector{}, errs.E(op, errs.Internal, err)
	}
	if err := setDeliveriesFIFO(ctx, tx, id, c.FIFO); err != nil {
		return Connector{}, errs.E(op, errs.Internal, err)
	}
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: "connector.updated",
		TargetType: "connector", TargetID: id, Before: before, After: c}); err != nil {
		return Connector{}, err
	}
	if c.Enabled {
		tx.AfterCommit(s.disp.Wake)
	}
	return c, nil
}

// PatchConnector is CheckConnectorPatch and PatchConnectorTx as one unit.
func (s *Service) PatchConnector(ctx context.Context, actorID, id string, in ConnectorPatch) (c Connector, err error) {
	if err := s.CheckConnectorPatch(ctx, id, in); err != nil {
		return Connector{}, err
	}
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { c, err = s.PatchConnectorTx(ctx, tx, actorID, id, in); return err })
	return c, err
}

// DeleteConnectorTx removes a connector with its deliveries and their
// attempts; a file_drop connector's open file is closed (under its final
// name) after the commit. Its closed files stay where they are.
func (s *Service) DeleteConnectorTx(ctx context.Context, tx *sqldb.Tx, actorID, id string) error {
	const op = "webhooks.DeleteConnector"
	before, err := s.connectorFrom(ctx, tx, op, id, tx.Now)
	if err != nil {
		return err
	}
	for _, q := range []string{`DELETE FROM webhooks_attempts WHERE endpoint_id = $1`,
		`DELETE FROM webhooks_deliveries WHERE endpoint_id = $1`, `DELETE FROM webhooks_endpoints WHERE id = $1`} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return errs.E(op, errs.Internal, err)
		}
	}
	tx.AfterCommit(func() { s.conns.forget(id) })
	return audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: "connector.deleted",
		TargetType: "connector", TargetID: id, Before: before})
}

// DeleteConnector is DeleteConnectorTx as one unit of the write path.
func (s *Service) DeleteConnector(ctx context.Context, actorID, id string) error {
	return s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.DeleteConnectorTx(ctx, tx, actorID, id) })
}
