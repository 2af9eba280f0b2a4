package logistics

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"mercato/internal/orders"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// maxNote bounds a staff note (characters).
const maxNote = 2000

// NoteRequest is POST /api/v1/admin/orders/{id}/notes's body.
type NoteRequest struct {
	Body string `json:"body" maxlen:"8000" doc:"1 to 2000 characters."`
}

// Note is a staff member's note on an order.
type Note struct {
	ID        string    `json:"id"`
	OrderID   string    `json:"order_id"`
	AuthorID  string    `json:"author_id"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// NoteList is an order's notes, oldest first.
type NoteList struct {
	Items []Note `json:"items"`
}

func (s *Service) noteRoutes() []web.Route {
	return []web.Route{
		{Method: "POST", Path: "/api/v1/admin/orders/{id}/notes", Summary: "Add a staff note to an order", Tag: "logistics",
			Access: web.Permission(orders.PermWrite), Request: NoteRequest{}, Response: Note{}, Status: http.StatusCreated,
			Description: "Customer service's record; customers never see it. 404 for an unknown order.", Handler: s.handleAddNote},
		{Method: "GET", Path: "/api/v1/admin/orders/{id}/notes", Summary: "An order's staff notes", Tag: "logistics",
			Access: web.Permission(orders.PermRead), Response: NoteList{}, Description: "Oldest first.", Handler: s.handleNotes},
	}
}

// AddNoteTx adds staff member authorID's note to order id in tx.
func (s *Service) AddNoteTx(ctx context.Context, tx *sqldb.Tx, noteID, id, authorID string, in NoteRequest) (Note, error) {
	const op = "logistics.AddNote"
	body := strings.TrimSpace(in.Body)
	var v errs.Validation
	n := utf8.RuneCountInString(body)
	v.Check(n >= 1 && n <= maxNote, "body", fmt.Sprintf("must be 1 to %d characters", maxNote))
	if err := v.Err(op); err != nil {
		return Note{}, err
	}
	if _, err := s.orders.OrderTx(ctx, tx, id); err != nil {
		return Note{}, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO logistics_order_notes (id, order_id, author_id, body, created_at) VALUES ($1, $2, $3, $4, $5)`,
		noteID, id, authorID, body, sqldb.Micros(tx.Now)); err != nil {
		return Note{}, errs.E(op, errs.Internal, err)
	}
	return Note{ID: noteID, OrderID: id, AuthorID: authorID, Body: body, CreatedAt: tx.Now}, nil
}

// Notes lists order id's notes, oldest first (at most 1000).
func (s *Service) Notes(ctx context.Context, id string) (NoteList, error) {
	const op = "logistics.Notes"
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT id, author_id, body, created_at FROM logistics_order_notes
		WHERE order_id = $1 ORDER BY created_at, id LIMIT 1000`, id)
	if err != nil {
		return NoteList{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	out := NoteList{Items: []Note{}}
	for rows.Next() {
		n := Note{OrderID: id}
		var at int64
		if err := rows.Scan(&n.ID, &n.AuthorID, &n.Body, &at); err != nil {
			return NoteList{}, errs.E(op, errs.Internal, err)
		}
		n.CreatedAt = sqldb.FromMicros(at)
		out.Items = append(out.Items, n)
	}
	if err := rows.Err(); err != nil {
		return NoteList{}, errs.E(op, errs.Internal, err)
	}
	return out, nil
}

func (s *Service) handleAddNote(w http.ResponseWriter, r *http.Request) {
	var in NoteRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	noteID, id, by := newID(), r.PathValue("id"), staffID(r)
	s.commit(w, r, http.StatusCreated, nil, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return s.AddNoteTx(ctx, tx, noteID, id, by, in)
	})
}

func (s *Service) handleNotes(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.orders.Get(r.Context(), orders.Caller{}, id, true); err != nil {
		web.Error(w, r, err)
		return
	}
	ns, err := s.Notes(r.Context(), id)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, ns)
}

// AddNote is AddNoteTx as one unit of the write path.
func (s *Service) AddNote(ctx context.Context, id, authorID string, in NoteRequest) (n Note, err error) {
	noteID := newID()
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { n, err = s.AddNoteTx(ctx, tx, noteID, id, authorID, in); return err })
	return n, err
}
