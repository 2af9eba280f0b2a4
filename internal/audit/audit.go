// Package audit is the append-only log of staff actions: who did what to
// which object, from where, in which request, with the object's state
// before and after.
//
// A module records an entry with Record in the same transaction as the
// change it describes, so the entry exists exactly when the change
// committed. Staff read the log through GET /api/v1/admin/audit (Routes),
// newest first. The package owns the table audit_log and offers no way to
// change or remove an entry; the database refuses UPDATE and DELETE on it
// too (triggers on both engines). It emits and consumes no events.
package audit

import (
	"context"
	"embed"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/migrate"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

//go:embed migrations
var migrations embed.FS

// Migrations returns the audit module's schema migrations.
func Migrations() migrate.Source { return migrate.Embedded("audit", migrations) }

// Entry is one staff action to record.
type Entry struct {
	ActorID    string // the user who acted, or "system"
	Action     string // what was done, noun.verb in the past tense: "user.mfa_enabled"
	TargetType string // the kind of object acted on: "user", "product", "order"
	TargetID   string
	IP         string // the actor's client address, when known
	// Before and After are the object's relevant state, marshalled to JSON;
	// nil (or a value that marshals to null) is stored as null.
	Before, After any
}

// Record appends e to the audit log in tx, the caller's transaction, so the
// entry commits or rolls back with the change it describes. The entry is
// stamped with tx.Now and with the request id in ctx (web.RequestID), if
// any. Action and TargetType are required; an entry without them, or whose
// Before/After cannot be marshalled, is an Internal error (a bug of the
// caller, not of the client).
func Record(ctx context.Context, tx *sqldb.Tx, e Entry) error {
	const op = "audit.Record"
	if e.Action == "" || e.TargetType == "" {
		return errs.E(op, errs.Internal, "an audit entry needs an action and a target type")
	}
	before, err := marshal(e.Before)
	if err != nil {
		return errs.E(op, errs.Internal, "before", err)
	}
	after, err := marshal(e.After)
	if err != nil {
		return errs.E(op, errs.Internal, "after", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_log
		(id, actor_id, action, target_type, target_id, ip, before_json, after_json, created_at, request_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		id.String(), e.ActorID, e.Action, e.TargetType, e.TargetID, e.IP, before, after,
		sqldb.Micros(tx.Now), web.RequestID(ctx))
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	return nil
}

// marshal returns v as JSON text for a nullable column: nil for SQL NULL.
func marshal(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if string(b) == "null" {
		return nil, nil
	}
	return string(b), nil
}

// Item is one recorded entry as the log returns it.
type Item struct {
	ID         string          `json:"id"`
	ActorID    string          `json:"actor_id"`
	Action     string          `json:"action"`
	TargetType string          `json:"target_type"`
	TargetID   string          `json:"target_id"`
	IP         string          `json:"ip"`
	Before     json.RawMessage `json:"before"` // null when none was recorded
	After      json.RawMessage `json:"after"`
	RequestID  string          `json:"request_id"`
	CreatedAt  time.Time       `json:"created_at"`
}

// Page is one page of the log, newest first (the one pagination of the
// API: web.Page).
type Page = web.Page[Item]

// Filter selects entries. Empty fields match everything.
type Filter struct {
	ActorID, Action, TargetType, TargetID string
	// Since (inclusive) and Until (exclusive) bound created_at; zero is
	// unbounded.
	Since, Until time.Time
	// Page is the page size and cursor (web.PageParams); a zero Limit
	// means web.DefaultPageLimit. The cursor is valid with the same filter
	// it came from.
	Page web.PageRequest
}

// Log reads the audit log. Safe for concurrent use.
type Log struct {
	db *sqldb.DB
}

// NewLog returns a reader of db's audit log.
func NewLog(db *sqldb.DB) *Log { return &Log{db: db} }

// List returns the entries that f selects, newest first (by created_at, then
// id), a page at a time. Paging is by key, not offset: entries recorded
// while a client pages are newer than its cursor, so they neither shift nor
// repeat the pages it has still to read. A bad filter (negative limit,
// Since after Until, a cursor List did not make) is an Invalid error naming
// the field.
func (l *Log) List(ctx context.Context, f Filter) (Page, error) {
	const op = "audit.List"
	var v errs.Validation
	v.Check(f.Page.Limit >= 0, "limit", "must be a positive integer")
	v.Check(f.Since.IsZero() || f.Until.IsZero() || f.Since.Before(f.Until), "until", "must be after since")
	if err := v.Err(op); err != nil {
		return Page{}, err
	}
	var after cursor
	paged, err := f.Page.After(&after)
	if err != nil {
		return Page{}, err
	}
	limit := min(f.Page.Limit, web.MaxPageLimit)
	if limit == 0 {
		limit = web.DefaultPageLimit
	}

	var where []string
	var args []any
	arg := func(v any) string { // adds v and returns its placeholder
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	for _, eq := range []struct{ col, val string }{
		{"actor_id", f.ActorID}, {"action", f.Action}, {"target_type", f.TargetType}, {"target_id", f.TargetID},
	} {
		if eq.val != "" {
			where = append(where, eq.col+" = "+arg(eq.val))
		}
	}
	if !f.Since.IsZero() {
		where = append(where, "created_at >= "+arg(sqldb.Micros(f.Since)))
	}
	if !f.Until.IsZero() {
		where = append(where, "created_at < "+arg(sqldb.Micros(f.Until)))
	}
	if paged {
		where = append(where, "(created_at, id) < ("+arg(after.At)+", "+arg(after.ID)+")")
	}
	q := `SELECT id, actor_id, action, target_type, target_id, ip, before_json, after_json, created_at, request_id
		FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT " + arg(limit+1)

	rows, err := l.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return Page{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	var items []Item
	for rows.Next() {
		var it Item
		var before, after *string
		var at int64
		if err := rows.Scan(&it.ID, &it.ActorID, &it.Action, &it.TargetType, &it.TargetID, &it.IP,
			&before, &after, &at, &it.RequestID); err != nil {
			return Page{}, errs.E(op, errs.Internal, err)
		}
		it.Before, it.After, it.CreatedAt = raw(before), raw(after), sqldb.FromMicros(at)
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return Page{}, errs.E(op, errs.Internal, err)
	}
	return web.NewPage(items, limit, func(last Item) any {
		return cursor{At: sqldb.Micros(last.CreatedAt), ID: last.ID}
	}), nil
}

func raw(s *string) json.RawMessage {
	if s == nil {
		return nil // encodes as null
	}
	return json.RawMessage(*s)
}

// cursor is the position after which a page starts: the (created_at, id) of
// the last entry of the page before.
type cursor struct {
	At int64  `json:"t"`
	ID string `json:"i"`
}
