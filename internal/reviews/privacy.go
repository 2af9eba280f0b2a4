package reviews

import (
	"cmp"
	"context"
	"slices"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// ExportedReview is one of a customer's reviews in their personal-data
// export (the section "reviews").
type ExportedReview struct {
	ID               string    `json:"id"`
	ProductID        string    `json:"product_id"`
	Rating           int       `json:"rating"`
	Title            string    `json:"title"`
	Body             string    `json:"body"`
	VerifiedPurchase bool      `json:"verified_purchase"`
	Status           string    `json:"status"`
	CreatedAt        time.Time `json:"created_at"`
}

// Export returns every review customerID wrote, of every status, oldest
// first (never nil).
func (s *Service) Export(ctx context.Context, customerID string) (any, error) {
	const op = "reviews.Export"
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+columns+` FROM reviews_reviews
		WHERE customer_id = $1 ORDER BY created_at, id`, customerID)
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	out := []ExportedReview{}
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		out = append(out, ExportedReview{ID: r.ID, ProductID: r.ProductID, Rating: r.Rating, Title: r.Title,
			Body: r.Body, VerifiedPurchase: r.VerifiedPurchase, Status: r.Status, CreatedAt: r.CreatedAt})
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	return out, nil
}

// EraseTx deletes every review of customerID in tx, the erasure's unit (a
// review's text is the author's own words: it is not kept anonymised).
// Each deleted visible review is taken out of its product's rating by the
// conditional update, and review.erased is appended for every deleted
// review with its product's new rating. Products are handled in id order
// (the lock order). Erasing a customer without reviews changes nothing.
func (s *Service) EraseTx(ctx context.Context, tx *sqldb.Tx, customerID string) error {
	const op = "reviews.Erase"
	// DELETE … RETURNING reports the rows as they were deleted: a
	// moderation committed meanwhile (on PostgreSQL the DELETE waits for
	// its row lock and then sees its result) is taken into account, so a
	// review is taken out of a rating at most once.
	rows, err := tx.QueryContext(ctx, `DELETE FROM reviews_reviews WHERE customer_id = $1
		RETURNING id, product_id, rating, status`, customerID)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	type gone struct {
		id, productID, status string
		rating                int
	}
	var all []gone
	for rows.Next() {
		var g gone
		if err := rows.Scan(&g.id, &g.productID, &g.rating, &g.status); err != nil {
			rows.Close()
			return errs.E(op, errs.Internal, err)
		}
		all = append(all, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	// The rating rows in key order (the lock order).
	slices.SortFunc(all, func(a, b gone) int { return cmp.Or(cmp.Compare(a.productID, b.productID), cmp.Compare(a.id, b.id)) })
	for _, g := range all {
		var rating Rating
		if g.status == StatusVisible {
			rating, err = countOut(ctx, tx, g.productID, g.rating)
		} else {
			rating, err = ratingIn(ctx, tx, g.productID)
		}
		if err != nil {
			return err
		}
		if err := emit(ctx, tx, Erased, g.id, g.productID, rating); err != nil {
			return err
		}
	}
	return nil
}

// Erase is EraseTx as one unit of the write path (the accounts module's
// erasure calls EraseTx in its own unit instead).
func (s *Service) Erase(ctx context.Context, customerID string) error {
	return s.write.Do(ctx, func(tx *sqldb.Tx) error { return s.EraseTx(ctx, tx, customerID) })
}
