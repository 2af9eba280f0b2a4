package reviews

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"slices"
	"strconv"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// Rating is a product's rating over its visible reviews: the product
// document's `rating` and every review event's.
type Rating struct {
	// Average is the mean of the visible reviews' ratings rounded to one
	// decimal (half away from zero); 0 when there are none.
	Average float64 `json:"average" doc:"The mean rating, 1 to 5, to one decimal; 0 without reviews."`
	// Count is the number of visible reviews.
	Count int `json:"count" doc:"How many visible reviews the average is over."`
}

// newRating is the Rating of count reviews whose ratings add up to sum.
func newRating(count, sum int64) Rating {
	if count <= 0 {
		return Rating{}
	}
	return Rating{Average: math.Round(float64(sum)*10/float64(count)) / 10, Count: int(count)}
}

// countIn adds a review of the given rating to productID's rating in tx and
// returns the new rating. One statement: an upsert that adds to the row
// where it exists, so concurrent units never lose a count (on PostgreSQL
// the row lock it takes orders them; on SQLite the writer is single).
func countIn(ctx context.Context, tx *sqldb.Tx, productID string, rating int) (Rating, error) {
	var count, sum int64
	err := tx.QueryRowContext(ctx, `INSERT INTO reviews_ratings (product_id, count, sum, updated_at)
		VALUES ($1, 1, $2, $3)
		ON CONFLICT (product_id) DO UPDATE SET count = reviews_ratings.count + 1,
			sum = reviews_ratings.sum + excluded.sum, updated_at = excluded.updated_at
		RETURNING count, sum`, productID, rating, sqldb.Micros(tx.Now)).Scan(&count, &sum)
	if err != nil {
		return Rating{}, errs.E("reviews.countIn", errs.Internal, err)
	}
	return newRating(count, sum), nil
}

// countOut takes a counted review of the given rating out of productID's
// rating in tx and returns the new rating: one conditional statement that
// matches only a row still counting such a review. Matching none means the
// rating lost track of the review, an Internal error (the unit rolls back).
func countOut(ctx context.Context, tx *sqldb.Tx, productID string, rating int) (Rating, error) {
	var count, sum int64
	err := tx.QueryRowContext(ctx, `UPDATE reviews_ratings SET count = count - 1, sum = sum - $2, updated_at = $3
		WHERE product_id = $1 AND count >= 1 AND sum - $2 >= count - 1
		RETURNING count, sum`, productID, rating, sqldb.Micros(tx.Now)).Scan(&count, &sum)
	if errors.Is(err, sql.ErrNoRows) {
		return Rating{}, errs.E("reviews.countOut", errs.Internal, "the rating of product "+strconv.Quote(productID)+" does not count the review")
	}
	if err != nil {
		return Rating{}, errs.E("reviews.countOut", errs.Internal, err)
	}
	return newRating(count, sum), nil
}

// ratingsChunk bounds the ids one statement binds (well under either
// engine's limit on bound parameters).
const ratingsChunk = 500

// Ratings returns the rating of each of productIDs (the catalog's product
// documents and search index read it): one query for up to 500 distinct
// ids, one per 500 beyond. Every id asked for is in the map; a product
// without visible reviews has the zero Rating.
func (s *Service) Ratings(ctx context.Context, productIDs []string) (map[string]Rating, error) {
	out := make(map[string]Rating, len(productIDs))
	ids := slices.Clone(productIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, id := range ids {
		out[id] = Rating{}
	}
	for len(ids) > 0 {
		n := min(len(ids), ratingsChunk)
		if err := s.readRatings(ctx, ids[:n], out); err != nil {
			return nil, err
		}
		ids = ids[n:]
	}
	return out, nil
}

// readRatings reads the rows of ids into out.
func (s *Service) readRatings(ctx context.Context, ids []string, out map[string]Rating) error {
	const op = "reviews.Ratings"
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT product_id, count, sum FROM reviews_ratings WHERE product_id IN (`+
		sqldb.Placeholders(1, len(ids))+`)`, sqldb.Args(ids)...)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var count, sum int64
		if err := rows.Scan(&id, &count, &sum); err != nil {
			return errs.E(op, errs.Internal, err)
		}
		out[id] = newRating(count, sum)
	}
	if err := rows.Err(); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	return nil
}
