package reviews

import (
	"context"
	"strings"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// Actor is the staff member who moderates, as the audit log records them.
type Actor struct {
	ID string // the staff member's user id
	IP string // their client address, when known
}

// HideRequest is the body of POST /api/v1/admin/reviews/{id}/hide.
type HideRequest struct {
	Reason string `json:"reason" maxlen:"500" doc:"Why the review is hidden (kept for staff, never shown to the public)."`
}

// errNoReview answers a review id that names no review.
var errNoReview = errs.E("reviews", errs.NotFound, "no such review")

// HideTx hides review id in tx for reason (1..MaxReason characters without
// control characters, else Invalid naming reason): the review leaves the
// public list and its product's rating (one conditional update), the action
// is written to the audit log and review.hidden is appended to the outbox,
// all in the unit. NotFound for an unknown id; Conflict
// invalid_transition when it is hidden already.
func (s *Service) HideTx(ctx context.Context, tx *sqldb.Tx, by Actor, id, reason string) (StaffReview, error) {
	reason = strings.TrimSpace(reason)
	var v errs.Validation
	if reason == "" {
		v.Add("reason", "is required")
	} else if msg := badText(reason, MaxReason, false); msg != "" {
		v.Add("reason", msg)
	}
	if err := v.Err("reviews.Hide"); err != nil {
		return StaffReview{}, err
	}
	return s.moderate(ctx, tx, by, id, StatusVisible, StatusHidden, reason)
}

// Hide is HideTx as one unit of the write path.
func (s *Service) Hide(ctx context.Context, by Actor, id, reason string) (r StaffReview, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { r, err = s.HideTx(ctx, tx, by, id, reason); return err })
	return r, err
}

// RestoreTx makes hidden review id visible again in tx: it counts in its
// product's rating again, the action is audited and review.restored is
// appended, all in the unit. NotFound for an unknown id; Conflict
// invalid_transition when it is visible already.
func (s *Service) RestoreTx(ctx context.Context, tx *sqldb.Tx, by Actor, id string) (StaffReview, error) {
	return s.moderate(ctx, tx, by, id, StatusHidden, StatusVisible, "")
}

// Restore is RestoreTx as one unit of the write path.
func (s *Service) Restore(ctx context.Context, by Actor, id string) (r StaffReview, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { r, err = s.RestoreTx(ctx, tx, by, id); return err })
	return r, err
}

// moderate moves review id from status from to status to in tx with one
// conditional update (so two racing moderations cannot both count), then
// fixes the rating, audits and emits.
func (s *Service) moderate(ctx context.Context, tx *sqldb.Tx, by Actor, id, from, to, reason string) (StaffReview, error) {
	const op = "reviews.moderate"
	if id == "" || len(id) > 64 {
		return StaffReview{}, errNoReview
	}
	now := sqldb.Micros(tx.Now)
	r, err := scan(tx.QueryRowContext(ctx, `UPDATE reviews_reviews
		SET status = $2, hidden_reason = $3, moderated_by = $4, moderated_at = $5, updated_at = $5
		WHERE id = $1 AND status = $6 RETURNING `+columns, id, to, reason, by.ID, now, from))
	if isNoRows(err) {
		var status string
		switch err := tx.QueryRowContext(ctx, `SELECT status FROM reviews_reviews WHERE id = $1`, id).Scan(&status); {
		case isNoRows(err):
			return StaffReview{}, errNoReview
		case err != nil:
			return StaffReview{}, errs.E(op, errs.Internal, err)
		}
		return StaffReview{}, errs.E(op, errs.Conflict, errs.CodeInvalidTransition, "the review is "+status+" already")
	}
	if err != nil {
		return StaffReview{}, errs.E(op, errs.Internal, err)
	}
	var rating Rating
	kind, action := Hidden, "review.hidden"
	if to == StatusHidden {
		rating, err = countOut(ctx, tx, r.ProductID, r.Rating)
	} else {
		kind, action = Restored, "review.restored"
		rating, err = countIn(ctx, tx, r.ProductID, r.Rating)
	}
	if err != nil {
		return StaffReview{}, err
	}
	after := map[string]any{"status": to}
	if reason != "" {
		after["reason"] = reason
	}
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: by.ID, Action: action, TargetType: "review", TargetID: r.ID,
		IP: by.IP, Before: map[string]any{"status": from}, After: after}); err != nil {
		return StaffReview{}, errs.E(op, err)
	}
	if err := emit(ctx, tx, kind, r.ID, r.ProductID, rating); err != nil {
		return StaffReview{}, err
	}
	return r, nil
}
