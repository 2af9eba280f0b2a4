package reviews

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// The limits of a review (also its maxlen tags and CHECK constraints).
const (
	MinRating    = 1
	MaxRating    = 5
	MaxTitle     = 120  // characters
	MaxBody      = 5000 // characters
	MaxReason    = 500  // characters of a moderation reason
	maxProductID = 200  // longer ids name no product (404)
)

// CodeAlreadyReviewed is the 409 code of a second review of one product by
// one customer.
const CodeAlreadyReviewed errs.Code = "already_reviewed"

// The statuses of a review.
const (
	StatusVisible = "visible"
	StatusHidden  = "hidden"
)

// Review is a review as the public and its author see it. It names no
// author: the public list shows none, and the author's id stays in the
// staff view.
type Review struct {
	ID               string    `json:"id"`
	ProductID        string    `json:"product_id"`
	Rating           int       `json:"rating" doc:"1 to 5."`
	Title            string    `json:"title"`
	Body             string    `json:"body"`
	VerifiedPurchase bool      `json:"verified_purchase" doc:"The author had a paid order with the product when writing it."`
	CreatedAt        time.Time `json:"created_at"`
}

// CreateRequest is the body of POST /api/v1/products/{id}/reviews.
type CreateRequest struct {
	Rating int    `json:"rating" doc:"An integer from 1 to 5."`
	Title  string `json:"title" maxlen:"120" doc:"Required; no control characters."`
	Body   string `json:"body" maxlen:"5000" doc:"May be empty; line breaks and tabs are the only control characters allowed."`
}

// validate checks in and returns it with title and body trimmed of
// surrounding white space. Rules: rating 1..5; title 1..MaxTitle
// characters after trimming, without control or bidirectional-override
// characters; body up to MaxBody characters, with line breaks and tabs the
// only control characters; valid UTF-8 throughout.
func (in CreateRequest) validate() (CreateRequest, error) {
	var v errs.Validation
	in.Title, in.Body = strings.TrimSpace(in.Title), strings.TrimSpace(in.Body)
	v.Check(in.Rating >= MinRating && in.Rating <= MaxRating, "rating", "must be an integer from 1 to 5")
	if in.Title == "" {
		v.Add("title", "is required")
	} else if msg := badText(in.Title, MaxTitle, false); msg != "" {
		v.Add("title", msg)
	}
	if msg := badText(in.Body, MaxBody, true); msg != "" {
		v.Add("body", msg)
	}
	return in, v.Err("reviews.Create")
}

// badText says what is wrong with s as review text of at most max
// characters, or "". multiline allows \n, \r and \t.
func badText(s string, max int, multiline bool) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	if utf8.RuneCountInString(s) > max {
		return "must be at most " + itoa(max) + " characters"
	}
	for _, r := range s {
		switch {
		case multiline && (r == '\n' || r == '\r' || r == '\t'):
		case unicode.IsControl(r):
			return "must not contain control characters"
		case isBidiControl(r):
			return "must not contain bidirectional control characters"
		}
	}
	return ""
}

// isBidiControl reports the embedding, override and isolate controls that
// can make text display other than it reads (U+202A–U+202E,
// U+2066–U+2069).
func isBidiControl(r rune) bool {
	return r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069
}

// CreateTx creates customerID's review of productID in tx: the product must
// be reviewable (else NotFound), the customer must not have reviewed it
// already (else Conflict already_reviewed — the unique index decides
// between racing duplicates), and verified_purchase is what Purchases says.
// The product's rating counts the review in the same unit, and
// review.created is appended to the outbox.
func (s *Service) CreateTx(ctx context.Context, tx *sqldb.Tx, customerID, productID string, in CreateRequest) (Review, error) {
	const op = "reviews.Create"
	if customerID == "" {
		return Review{}, errs.E(op, errs.Internal, "a review needs its author")
	}
	in, err := in.validate()
	if err != nil {
		return Review{}, err
	}
	if err := s.checkReviewable(ctx, tx, productID); err != nil {
		return Review{}, err
	}
	var one int
	switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM reviews_reviews WHERE product_id = $1 AND customer_id = $2`,
		productID, customerID).Scan(&one); {
	case err == nil:
		return Review{}, errAlreadyReviewed
	case !isNoRows(err):
		return Review{}, errs.E(op, errs.Internal, err)
	}
	verified := false
	if s.purchases != nil {
		if verified, err = s.purchases.HasPaidOrder(ctx, tx, customerID, productID); err != nil {
			return Review{}, errs.E(op, err)
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Review{}, errs.E(op, errs.Internal, err)
	}
	rv := Review{ID: id.String(), ProductID: productID, Rating: in.Rating, Title: in.Title, Body: in.Body,
		VerifiedPurchase: verified, CreatedAt: tx.Now}
	now := sqldb.Micros(tx.Now)
	if _, err := tx.ExecContext(ctx, `INSERT INTO reviews_reviews (id, product_id, customer_id, rating, title, body,
		verified_purchase, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
		rv.ID, productID, customerID, rv.Rating, rv.Title, rv.Body, boolInt(verified), StatusVisible, now); err != nil {
		if sqldb.IsUniqueViolation(err) {
			return Review{}, errAlreadyReviewed
		}
		return Review{}, errs.E(op, errs.Internal, err)
	}
	rating, err := countIn(ctx, tx, productID, rv.Rating)
	if err != nil {
		return Review{}, err
	}
	if err := emit(ctx, tx, Created, rv.ID, productID, rating); err != nil {
		return Review{}, err
	}
	return rv, nil
}

// Create is CreateTx as one unit of the write path.
func (s *Service) Create(ctx context.Context, customerID, productID string, in CreateRequest) (rv Review, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error {
		rv, err = s.CreateTx(ctx, tx, customerID, productID, in)
		return err
	})
	return rv, err
}

var (
	errAlreadyReviewed = errs.E("reviews.Create", errs.Conflict, CodeAlreadyReviewed,
		"you have already reviewed this product")
	errNoProduct = errs.E("reviews", errs.NotFound, "no such product")
)

// checkReviewable returns NotFound unless productID is reviewable (read in
// tx, or outside any unit when tx is nil).
func (s *Service) checkReviewable(ctx context.Context, tx *sqldb.Tx, productID string) error {
	if s.products == nil || productID == "" || len(productID) > maxProductID {
		return errNoProduct
	}
	ok, err := s.products.Reviewable(ctx, tx, productID)
	if err != nil {
		return errs.E("reviews", err)
	}
	if !ok {
		return errNoProduct
	}
	return nil
}

// emit appends an event of kind about review id to the outbox in tx.
func emit(ctx context.Context, tx *sqldb.Tx, kind event.Kind[ReviewEvent], id, productID string, rating Rating) error {
	ev, err := kind.New(id, tx.Now, ReviewEvent{ReviewID: id, ProductID: productID, Rating: rating})
	if err != nil {
		return errs.E("reviews.emit", errs.Internal, err)
	}
	return outbox.Append(ctx, tx, &ev)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

func itoa(n int) string { return strconv.Itoa(n) }
