package promotions

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"

	"github.com/google/uuid"

	"mercato/internal/audit"
	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// Actor is the staff member who changes a promotion, as the audit log
// records them.
type Actor struct {
	ID string // the staff member's user id
	IP string // their client address, when known
}

// CodeCodeTaken answers a coupon code that another promotion holds.
const CodeCodeTaken errs.Code = "code_taken"

var errNoPromotion = errs.E("promotions", errs.NotFound, "no such promotion")

// CreateTx creates a promotion from r in tx, at version 1 and active: the
// rule is validated (Invalid naming each bad field), its codes are taken
// (Conflict code_taken when one is another promotion's), the change is
// audited and promotion.created appended, all in the unit.
func (s *Service) CreateTx(ctx context.Context, tx *sqldb.Tx, by Actor, r Rule) (Promotion, error) {
	const op = "promotions.Create"
	r.Codes = slices.Clone(r.Codes)
	r.normalize()
	if err := r.validate(op); err != nil {
		return Promotion{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Promotion{}, errs.E(op, errs.Internal, err)
	}
	p := Promotion{ID: id.String(), Version: 1, Status: StatusActive, Rule: r, CreatedAt: tx.Now, UpdatedAt: tx.Now}
	rule, err := json.Marshal(r)
	if err != nil {
		return Promotion{}, errs.E(op, errs.Internal, err)
	}
	now := sqldb.Micros(tx.Now)
	starts, ends := windowMicros(r.Window)
	if _, err := tx.ExecContext(ctx, `INSERT INTO promotions_promotions
		(id, version, status, automatic, starts_at, ends_at, per_customer, rule, created_at, updated_at)
		VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $8)`,
		p.ID, p.Status, len(r.Codes) == 0, starts, ends, nullInt(r.Limits.PerCustomer), string(rule), now); err != nil {
		return Promotion{}, errs.E(op, errs.Internal, err)
	}
	maxUses, budget, currency := counterLimits(r.Limits)
	if _, err := tx.ExecContext(ctx, `INSERT INTO promotions_counters (id, uses, spent, max_uses, budget, currency)
		VALUES ($1, 0, 0, $2, $3, $4)`, p.ID, maxUses, budget, currency); err != nil {
		return Promotion{}, errs.E(op, errs.Internal, err)
	}
	if err := takeCodes(ctx, tx, op, p.ID, r.Codes); err != nil {
		return Promotion{}, err
	}
	p.Usage = usage(0, 0, r.Limits.Budget)
	return p, s.record(ctx, tx, op, by, "promotion.created", nil, p, string(rule))
}

// Create is CreateTx as one unit of the write path.
func (s *Service) Create(ctx context.Context, by Actor, r Rule) (p Promotion, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { p, err = s.CreateTx(ctx, tx, by, r); return err })
	return p, err
}

// UpdateTx applies patch to promotion id in tx as its next version: the
// new rule is validated like a new one, codes no longer listed are given
// up and new ones taken (code_taken), limits may not fall below what was
// used already (Invalid naming the limit), and the change is audited and
// promotion.updated appended. NotFound for an unknown id.
func (s *Service) UpdateTx(ctx context.Context, tx *sqldb.Tx, by Actor, id string, patch Patch) (Promotion, error) {
	const op = "promotions.Update"
	before, err := s.getTx(ctx, tx, id)
	if err != nil {
		return Promotion{}, err
	}
	if patch.Codes != nil {
		codes := slices.Clone(*patch.Codes)
		patch.Codes = &codes
	}
	r := patch.apply(before.Rule)
	r.normalize()
	if err := r.validate(op); err != nil {
		return Promotion{}, err
	}
	after := before
	after.Rule, after.Version, after.UpdatedAt = r, before.Version+1, tx.Now
	rule, err := json.Marshal(r)
	if err != nil {
		return Promotion{}, errs.E(op, errs.Internal, err)
	}
	if err := s.bump(ctx, tx, op, before, after); err != nil {
		return Promotion{}, err
	}
	// The limits, held to what was used (the transaction's own redemptions
	// counted). A budget in a new currency needs no discount given in the
	// old one; one set where there was none counts what was given already.
	c, err := s.counter(ctx, tx, id)
	if err != nil {
		return Promotion{}, err
	}
	if !before.Limits.any() && r.Limits.any() {
		// Its first limit: the uses so far were not counted (counter.go).
		if err := s.recount(ctx, tx, c); err != nil {
			return Promotion{}, err
		}
	}
	maxUses, budget, currency := counterLimits(r.Limits)
	if ok, err := c.setLimits(ctx, tx, maxUses, budget, currency); err != nil {
		return Promotion{}, err
	} else if !ok {
		return Promotion{}, errs.E(op, errs.Invalid, errs.CodeValidation, "the limits are below what was used already",
			[]errs.FieldError{{Field: "limits", Message: "must allow the uses and discount given already"}})
	}
	var gone, added []string
	for _, c := range before.Codes {
		if !slices.Contains(r.Codes, c) {
			gone = append(gone, c)
		}
	}
	for _, c := range r.Codes {
		if !slices.Contains(before.Codes, c) {
			added = append(added, c)
		}
	}
	for _, c := range gone {
		if _, err := tx.ExecContext(ctx, `DELETE FROM promotions_codes WHERE code = $1 AND promotion_id = $2`, c, id); err != nil {
			return Promotion{}, errs.E(op, errs.Internal, err)
		}
	}
	if err := takeCodes(ctx, tx, op, id, added); err != nil {
		return Promotion{}, err
	}
	after.Usage = usage(before.Usage.Uses, spentOf(before.Usage), r.Limits.Budget)
	return after, s.record(ctx, tx, op, by, "promotion.updated", before, after, string(rule))
}

// Update is UpdateTx as one unit of the write path.
func (s *Service) Update(ctx context.Context, by Actor, id string, patch Patch) (p Promotion, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { p, err = s.UpdateTx(ctx, tx, by, id, patch); return err })
	return p, err
}

// DeactivateTx makes promotion id inactive in tx, as its next version: it
// no longer applies (its codes stay taken). Audited, promotion.updated
// appended. NotFound for an unknown id; Conflict invalid_transition when
// it is inactive already.
func (s *Service) DeactivateTx(ctx context.Context, tx *sqldb.Tx, by Actor, id string) (Promotion, error) {
	const op = "promotions.Deactivate"
	before, err := s.getTx(ctx, tx, id)
	if err != nil {
		return Promotion{}, err
	}
	if before.Status != StatusActive {
		return Promotion{}, errs.E(op, errs.Conflict, errs.CodeInvalidTransition, "the promotion is inactive already")
	}
	after := before
	after.Status, after.Version, after.UpdatedAt = StatusInactive, before.Version+1, tx.Now
	rule, err := json.Marshal(after.Rule)
	if err != nil {
		return Promotion{}, errs.E(op, errs.Internal, err)
	}
	if err := s.bump(ctx, tx, op, before, after); err != nil {
		return Promotion{}, err
	}
	return after, s.record(ctx, tx, op, by, "promotion.deactivated", before, after, string(rule))
}

// Deactivate is DeactivateTx as one unit of the write path.
func (s *Service) Deactivate(ctx context.Context, by Actor, id string) (p Promotion, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { p, err = s.DeactivateTx(ctx, tx, by, id); return err })
	return p, err
}

// bump writes after over before with one conditional update on the
// version: a change committed meanwhile makes it match nothing, and the
// unit's batch is tried again (sqldb.ErrConflict).
func (s *Service) bump(ctx context.Context, tx *sqldb.Tx, op string, before, after Promotion) error {
	rule, err := json.Marshal(after.Rule)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	starts, ends := windowMicros(after.Window)
	res, err := tx.ExecContext(ctx, `UPDATE promotions_promotions SET version = $2, status = $3, rule = $4,
		automatic = $5, starts_at = $6, ends_at = $7, per_customer = $8, updated_at = $9
		WHERE id = $1 AND version = $10`,
		before.ID, after.Version, after.Status, string(rule), len(after.Codes) == 0, starts, ends,
		nullInt(after.Limits.PerCustomer), sqldb.Micros(tx.Now), before.Version)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return errs.E(op, errs.Internal, err)
	} else if n != 1 {
		return errs.E(op, errs.Internal, sqldb.ErrConflict)
	}
	return nil
}

// record writes the version row, the audit entry and the event of a
// change to promotion after (before is nil for a creation).
func (s *Service) record(ctx context.Context, tx *sqldb.Tx, op string, by Actor, action string, before any, after Promotion, rule string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO promotions_versions (promotion_id, version, status, rule, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, after.ID, after.Version, after.Status, rule, by.ID, sqldb.Micros(tx.Now)); err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: by.ID, Action: action, TargetType: "promotion", TargetID: after.ID,
		IP: by.IP, Before: before, After: after}); err != nil {
		return err
	}
	kind := Updated
	if before == nil {
		kind = Created
	}
	ev, err := kind.New(after.ID, tx.Now, eventOf(after))
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if err := s.changedTx(ctx, tx, after); err != nil {
		return errs.E(op, err)
	}
	return outbox.Append(ctx, tx, &ev)
}

// takeCodes takes codes for promotion id: Conflict code_taken naming the
// field when one is taken. Checked first, so that the unit's transaction
// sees no failed statement; the primary key has the last word.
func takeCodes(ctx context.Context, tx *sqldb.Tx, op, id string, codes []string) error {
	sorted := slices.Sorted(slices.Values(codes))
	for _, c := range sorted {
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT promotion_id FROM promotions_codes WHERE code = $1`, c).Scan(&owner)
		if err == nil {
			return codeTaken(op, c)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return errs.E(op, errs.Internal, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO promotions_codes (code, promotion_id) VALUES ($1, $2)`, c, id); err != nil {
			if sqldb.IsUniqueViolation(err) {
				return codeTaken(op, c)
			}
			return errs.E(op, errs.Internal, err)
		}
	}
	return nil
}

func codeTaken(op, code string) error {
	return errs.E(op, errs.Conflict, CodeCodeTaken, "the coupon code "+code+" is taken",
		[]errs.FieldError{{Field: "codes", Message: code + " is another promotion's"}})
}

// columns are the columns scan reads, of promotions_promotions p joined
// with promotions_counters c: the uses and the discount given are the
// counter's, or the live redemptions' for a promotion without limits
// (counter.go, "counted").
const columns = `p.id, p.version, p.status, p.rule, p.created_at, p.updated_at, ` + usesSQL + `, ` + spentSQL + `, c.budget`

// usesSQL and spentSQL are a promotion's uses and the discount it gave, of
// promotions_promotions p joined with promotions_counters c; uncounted is
// a promotion whose counter does not count them.
const (
	uncounted = `p.per_customer IS NULL AND c.max_uses IS NULL AND c.budget IS NULL`
	usesSQL   = `CASE WHEN ` + uncounted + ` THEN (SELECT count(*) FROM promotions_redemptions r
		WHERE r.promotion_id = p.id AND r.released_at IS NULL) ELSE c.uses END`
	spentSQL = `CASE WHEN ` + uncounted + ` THEN (SELECT COALESCE(SUM(r.amount), 0) FROM promotions_redemptions r
		WHERE r.promotion_id = p.id AND r.released_at IS NULL) ELSE c.spent END`
)

type scanner interface{ Scan(dest ...any) error }

func scan(row scanner) (Promotion, error) {
	var p Promotion
	var rule string
	var created, updated, spent int64
	var budget sql.NullInt64
	if err := row.Scan(&p.ID, &p.Version, &p.Status, &rule, &created, &updated, &p.Usage.Uses, &spent, &budget); err != nil {
		return Promotion{}, err
	}
	if err := json.Unmarshal([]byte(rule), &p.Rule); err != nil {
		return Promotion{}, err
	}
	p.CreatedAt, p.UpdatedAt = sqldb.FromMicros(created), sqldb.FromMicros(updated)
	p.Usage = usage(p.Usage.Uses, spent, p.Limits.Budget)
	return p, nil
}

// getTx reads promotion id in tx; NotFound when there is none.
func (s *Service) getTx(ctx context.Context, tx *sqldb.Tx, id string) (Promotion, error) {
	if id == "" || len(id) > 64 {
		return Promotion{}, errNoPromotion
	}
	p, err := scan(tx.QueryRowContext(ctx, `SELECT `+columns+` FROM promotions_promotions p
		JOIN promotions_counters c ON c.id = p.id WHERE p.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Promotion{}, errNoPromotion
	}
	if err != nil {
		return Promotion{}, errs.E("promotions.get", errs.Internal, err)
	}
	return p, nil
}

// Get returns promotion id as it is now; NotFound when there is none.
func (s *Service) Get(ctx context.Context, id string) (Promotion, error) {
	if id == "" || len(id) > 64 {
		return Promotion{}, errNoPromotion
	}
	p, err := scan(s.db.Reader().QueryRowContext(ctx, `SELECT `+columns+` FROM promotions_promotions p
		JOIN promotions_counters c ON c.id = p.id WHERE p.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Promotion{}, errNoPromotion
	}
	if err != nil {
		return Promotion{}, errs.E("promotions.Get", errs.Internal, err)
	}
	return p, nil
}

// List returns a page of promotions, newest first; status ("", active or
// inactive) filters them (else Invalid naming status).
func (s *Service) List(ctx context.Context, status string, page web.PageRequest) (web.Page[Promotion], error) {
	const op = "promotions.List"
	if status != "" && status != StatusActive && status != StatusInactive {
		return web.Page[Promotion]{}, errs.E(op, errs.Invalid, errs.CodeValidation, "unknown status",
			[]errs.FieldError{{Field: "status", Message: "must be active or inactive"}})
	}
	var after string
	if _, err := page.After(&after); err != nil {
		return web.Page[Promotion]{}, err
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+columns+` FROM promotions_promotions p
		JOIN promotions_counters c ON c.id = p.id
		WHERE ($1 = '' OR p.status = $1) AND ($2 = '' OR p.id < $2) ORDER BY p.id DESC LIMIT $3`, status, after, page.Limit+1)
	if err != nil {
		return web.Page[Promotion]{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	var out []Promotion
	for rows.Next() {
		p, err := scan(rows)
		if err != nil {
			return web.Page[Promotion]{}, errs.E(op, errs.Internal, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return web.Page[Promotion]{}, errs.E(op, errs.Internal, err)
	}
	return web.NewPage(out, page.Limit, func(last Promotion) any { return last.ID }), nil
}

// usage is the Usage of uses and spent under budget (spent shown only when
// there is a budget, in its currency).
func usage(uses, spent int64, budget *money.Money) Usage {
	u := Usage{Uses: uses}
	if budget != nil {
		m := money.MustNew(spent, budget.Currency())
		u.Spent = &m
	}
	return u
}

func spentOf(u Usage) int64 {
	if u.Spent == nil {
		return 0
	}
	return u.Spent.Amount()
}

// counterLimits are l as promotions_counters holds them.
func counterLimits(l Limits) (maxUses, budget sql.NullInt64, currency string) {
	if l.TotalUses != nil {
		maxUses = sql.NullInt64{Int64: *l.TotalUses, Valid: true}
	}
	if b := l.Budget; b != nil {
		return maxUses, sql.NullInt64{Int64: b.Amount(), Valid: true}, b.Currency()
	}
	return maxUses, budget, ""
}

func nullInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func windowMicros(w Window) (starts, ends int64) {
	if !w.StartsAt.IsZero() {
		starts = sqldb.Micros(w.StartsAt)
	}
	if !w.EndsAt.IsZero() {
		ends = sqldb.Micros(w.EndsAt)
	}
	return starts, ends
}
