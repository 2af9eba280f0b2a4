package reviews

import (
	"context"
	"strconv"
	"strings"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// StaffReview is a review as staff see it: with its author, status and
// moderation.
type StaffReview struct {
	Review
	CustomerID   string     `json:"customer_id" doc:"The author (a customer's user id)."`
	Status       string     `json:"status" doc:"visible or hidden."`
	HiddenReason string     `json:"hidden_reason,omitempty" doc:"Why staff hid it (hidden reviews only)."`
	ModeratedBy  string     `json:"moderated_by,omitempty" doc:"The staff member who last hid or restored it."`
	ModeratedAt  *time.Time `json:"moderated_at,omitempty"`
}

// columns are the columns scan reads, in its order.
const columns = `id, product_id, customer_id, rating, title, body, verified_purchase, status,
	hidden_reason, moderated_by, moderated_at, created_at`

type scanner interface{ Scan(dest ...any) error }

// scan reads one row of columns.
func scan(row scanner) (StaffReview, error) {
	var r StaffReview
	var verified int
	var moderated, created int64
	if err := row.Scan(&r.ID, &r.ProductID, &r.CustomerID, &r.Rating, &r.Title, &r.Body, &verified, &r.Status,
		&r.HiddenReason, &r.ModeratedBy, &moderated, &created); err != nil {
		return StaffReview{}, err
	}
	r.VerifiedPurchase = verified == 1
	r.CreatedAt = sqldb.FromMicros(created)
	if moderated != 0 {
		t := sqldb.FromMicros(moderated)
		r.ModeratedAt = &t
	}
	return r, nil
}

// cursorKey is the keyset position of the lists: newest first, by
// created_at and then id.
type cursorKey struct {
	At int64  `json:"at"`
	ID string `json:"id"`
}

// list runs a keyset query over reviews_reviews: where (with args, their
// placeholders numbered from 1) and the page's position, newest first.
func (s *Service) list(ctx context.Context, op, where string, args []any, page web.PageRequest) ([]StaffReview, int, error) {
	var after cursorKey
	has, err := page.After(&after)
	if err != nil {
		return nil, 0, err
	}
	limit := page.Limit
	if limit <= 0 {
		limit = web.DefaultPageLimit
	}
	limit = min(limit, web.MaxPageLimit)
	conds := []string{}
	if where != "" {
		conds = append(conds, where)
	}
	if has {
		n := len(args)
		conds = append(conds, "(created_at < $"+strconv.Itoa(n+1)+" OR (created_at = $"+strconv.Itoa(n+1)+
			" AND id < $"+strconv.Itoa(n+2)+"))")
		args = append(args, after.At, after.ID)
	}
	q := "SELECT " + columns + " FROM reviews_reviews"
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT $" + strconv.Itoa(len(args)+1)
	args = append(args, limit+1)
	rows, err := s.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	out := []StaffReview{}
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, 0, errs.E(op, errs.Internal, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, errs.E(op, errs.Internal, err)
	}
	return out, limit, nil
}

func keyOf(r StaffReview) cursorKey { return cursorKey{At: sqldb.Micros(r.CreatedAt), ID: r.ID} }

// ProductReviews returns the visible reviews of productID, newest first, a
// page at a time (the public list). NotFound when the product is not
// reviewable.
func (s *Service) ProductReviews(ctx context.Context, productID string, page web.PageRequest) (web.Page[Review], error) {
	const op = "reviews.ProductReviews"
	if err := s.checkReviewable(ctx, nil, productID); err != nil {
		return web.Page[Review]{}, err
	}
	rows, limit, err := s.list(ctx, op, "product_id = $1 AND status = $2", []any{productID, StatusVisible}, page)
	if err != nil {
		return web.Page[Review]{}, err
	}
	p := web.NewPage(rows, limit, func(last StaffReview) any { return keyOf(last) })
	out := web.Page[Review]{Items: make([]Review, len(p.Items)), NextCursor: p.NextCursor}
	for i, r := range p.Items {
		out.Items[i] = r.Review
	}
	return out, nil
}

// Filter selects reviews for staff; empty fields match every review.
type Filter struct {
	Status    string // StatusVisible, StatusHidden or ""
	ProductID string
	Page      web.PageRequest
}

// List returns the reviews f selects, newest first, a page at a time (the
// staff list). A status other than visible or hidden is Invalid naming
// status; a cursor is valid with the filter it came from.
func (s *Service) List(ctx context.Context, f Filter) (web.Page[StaffReview], error) {
	const op = "reviews.List"
	var v errs.Validation
	v.Check(f.Status == "" || f.Status == StatusVisible || f.Status == StatusHidden, "status", "must be visible or hidden")
	v.Check(len(f.ProductID) <= maxProductID, "product_id", "must be at most "+itoa(maxProductID)+" bytes")
	if err := v.Err(op); err != nil {
		return web.Page[StaffReview]{}, err
	}
	var conds []string
	var args []any
	if f.ProductID != "" {
		args = append(args, f.ProductID)
		conds = append(conds, "product_id = $"+strconv.Itoa(len(args)))
	}
	if f.Status != "" {
		args = append(args, f.Status)
		conds = append(conds, "status = $"+strconv.Itoa(len(args)))
	}
	rows, limit, err := s.list(ctx, op, strings.Join(conds, " AND "), args, f.Page)
	if err != nil {
		return web.Page[StaffReview]{}, err
	}
	return web.NewPage(rows, limit, func(last StaffReview) any { return keyOf(last) }), nil
}

// ratingIn reads productID's rating in tx (zero when it has no row).
func ratingIn(ctx context.Context, tx *sqldb.Tx, productID string) (Rating, error) {
	var count, sum int64
	err := tx.QueryRowContext(ctx, `SELECT count, sum FROM reviews_ratings WHERE product_id = $1`, productID).Scan(&count, &sum)
	if err != nil && !isNoRows(err) {
		return Rating{}, errs.E("reviews.rating", errs.Internal, err)
	}
	return newRating(count, sum), nil
}
