package inventory

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// Bounds of the module's inputs.
const (
	MaxSKULen      = 64
	MaxLocationLen = 32
	MaxLines       = 100
	MaxQuantity    = 1_000_000
	MaxOnHand      = 1_000_000_000
	// DefaultLocation always exists.
	DefaultLocation = "default"
)

var (
	skuRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	locationRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
)

// checkSKU says what is wrong with sku ("" when nothing). "locations" is
// refused: it names the locations route.
func checkSKU(sku string) string {
	switch {
	case sku == "" || len(sku) > MaxSKULen:
		return fmt.Sprintf("must be 1 to %d characters", MaxSKULen)
	case !skuRE.MatchString(sku):
		return "may hold letters, digits, '.', '_' and '-' only, starting with a letter or digit"
	case sku == "locations":
		return "is reserved"
	}
	return ""
}

func skuInvalid(op, msg string) error {
	return errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields", []errs.FieldError{{Field: "sku", Message: msg}})
}

// LocationLevel is a SKU's stock at one location.
type LocationLevel struct {
	Location string `json:"location"`
	OnHand   int64  `json:"on_hand"`
	Reserved int64  `json:"reserved"`
}

// Level is a SKU's stock: totals over its locations; available is
// on_hand - reserved.
type Level struct {
	SKU       string          `json:"sku"`
	OnHand    int64           `json:"on_hand"`
	Reserved  int64           `json:"reserved"`
	Available int64           `json:"available"`
	Locations []LocationLevel `json:"locations"`
}

// SetStockRequest is the body of PUT /api/v1/admin/inventory/{sku}.
type SetStockRequest struct {
	OnHand   *int64 `json:"on_hand"`
	Location string `json:"location,omitempty" maxlen:"32" doc:"default: default"`
}

// SetStockTx sets sku's on_hand at location ("" is DefaultLocation) in tx,
// by actorID (a staff member, recorded in the ledger and the audit log). A
// value below the units reserved there is below_reserved (Conflict); an
// unknown location, a negative or too large value is validation_failed.
// The change is a receipt (raised) or adjustment (lowered) ledger row;
// nothing is written when on_hand does not change. The SKU's row is written
// by the merge hook with the transaction's reservations.
func (s *Service) SetStockTx(ctx context.Context, tx *sqldb.Tx, sku, location string, onHand int64, actorID string) (Level, error) {
	const op = "inventory.SetStock"
	if location == "" {
		location = DefaultLocation
	}
	var v errs.Validation
	if msg := checkSKU(sku); msg != "" {
		v.Add("sku", msg)
	}
	v.Check(onHand >= 0 && onHand <= MaxOnHand, "on_hand", fmt.Sprintf("must be from 0 to %d", MaxOnHand))
	v.Check(len(location) <= MaxLocationLen && locationRE.MatchString(location), "location", "is not a location code")
	if err := v.Err(op); err != nil {
		return Level{}, err
	}
	st, err := s.state(ctx, tx, sku)
	if err != nil {
		return Level{}, err
	}
	l := st.loc(location)
	if l == nil {
		if l, err = s.addLocation(ctx, tx, st, location); err != nil {
			return Level{}, err
		}
	}
	l.set(tx)
	if onHand < l.curReserved() {
		return Level{}, errs.E(op, errs.Conflict, CodeBelowReserved,
			fmt.Sprintf("on_hand %d is below the %d units reserved at %s", onHand, l.curReserved(), location))
	}
	before := l.curOnHand()
	if d := onHand - before; d != 0 {
		l.change(tx, d, 0)
		reason := ReasonReceipt
		if d < 0 {
			reason = ReasonAdjustment
		}
		if err := writeLedger(ctx, tx, actorID, []ledgerRow{{sku: sku, location: location, reason: reason, dOnHand: d}}); err != nil {
			return Level{}, err
		}
		if err := audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: "inventory.stock_set", TargetType: "sku",
			TargetID: sku, Before: map[string]any{"location": location, "on_hand": before},
			After: map[string]any{"location": location, "on_hand": onHand}}); err != nil {
			return Level{}, err
		}
	}
	return st.level(), nil
}

// addLocation inserts sku's empty row at location, which must exist, and
// adds it to st.
func (s *Service) addLocation(ctx context.Context, tx *sqldb.Tx, st *skuState, location string) (*locState, error) {
	const op = "inventory.SetStock"
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM inventory_locations WHERE code = $1`, location).Scan(&one)
	if errNoRows(err) {
		return nil, errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "location", Message: "no such location"}})
	}
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO inventory_stock (sku, location, on_hand, reserved, updated_at)
		VALUES ($1, $2, 0, 0, $3) ON CONFLICT (sku, location) DO NOTHING`, st.sku, location, sqldb.Micros(tx.Now))
	if err != nil {
		return nil, errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, errs.E(op, errs.Internal, err)
	} else if n != 1 {
		// Another transaction added the row after st was read.
		return nil, errs.E(op, fmt.Errorf("stock row of %s at %s appeared: %w", st.sku, location, sqldb.ErrConflict))
	}
	l := &locState{location: location, inserted: true}
	st.locs = append(st.locs, l)
	sortLocs(st.locs)
	tx.OnRollback(func() { st.remove(l) })
	return l, nil
}

// SetStock is SetStockTx as one unit of the write path.
func (s *Service) SetStock(ctx context.Context, sku, location string, onHand int64, actorID string) (lv Level, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error {
		lv, err = s.SetStockTx(ctx, tx, sku, location, onHand, actorID)
		return err
	})
	return lv, err
}

func (st *skuState) level() Level {
	lv := Level{SKU: st.sku, Locations: []LocationLevel{}}
	for _, l := range st.locs {
		lv.Locations = append(lv.Locations, LocationLevel{Location: l.location, OnHand: l.curOnHand(), Reserved: l.curReserved()})
		lv.OnHand += l.curOnHand()
		lv.Reserved += l.curReserved()
	}
	lv.Available = lv.OnHand - lv.Reserved
	return lv
}

// Stock returns sku's stock; not_found when the SKU has no stock row.
func (s *Service) Stock(ctx context.Context, sku string) (Level, error) {
	const op = "inventory.Stock"
	if msg := checkSKU(sku); msg != "" {
		return Level{}, skuInvalid(op, msg)
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT location, on_hand, reserved FROM inventory_stock
		WHERE sku = $1 ORDER BY location`, sku)
	if err != nil {
		return Level{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	st := &skuState{sku: sku}
	for rows.Next() {
		l := &locState{}
		if err := rows.Scan(&l.location, &l.onHand, &l.reserved); err != nil {
			return Level{}, errs.E(op, errs.Internal, err)
		}
		st.locs = append(st.locs, l)
	}
	if err := rows.Err(); err != nil {
		return Level{}, errs.E(op, errs.Internal, err)
	}
	if len(st.locs) == 0 {
		return Level{}, errs.E(op, errs.NotFound, "no stock of this SKU")
	}
	return st.level(), nil
}

// Location is a place stock is kept.
type Location struct {
	Code      string    `json:"code"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// LocationRequest is the body of POST /api/v1/admin/inventory/locations.
type LocationRequest struct {
	Code string `json:"code" maxlen:"32" doc:"lower-case letters, digits, '_' and '-'"`
	Name string `json:"name" maxlen:"200"`
}

// CreateLocationTx adds a location in tx; location_exists (Conflict) when
// its code is taken.
func (s *Service) CreateLocationTx(ctx context.Context, tx *sqldb.Tx, in LocationRequest, actorID string) (Location, error) {
	const op = "inventory.CreateLocation"
	var v errs.Validation
	v.Check(in.Code != "" && len(in.Code) <= MaxLocationLen && locationRE.MatchString(in.Code), "code",
		"must be 1 to 32 lower-case letters, digits, '_' and '-', starting with a letter or digit")
	v.Check(in.Name != "", "name", "must not be empty")
	if err := v.Err(op); err != nil {
		return Location{}, err
	}
	loc := Location{Code: in.Code, Name: in.Name, CreatedAt: tx.Now}
	res, err := tx.ExecContext(ctx, `INSERT INTO inventory_locations (code, name, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (code) DO NOTHING`, in.Code, in.Name, sqldb.Micros(tx.Now))
	if err != nil {
		return Location{}, errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Location{}, errs.E(op, errs.Internal, err)
	} else if n != 1 {
		return Location{}, errs.E(op, errs.Conflict, CodeLocationExists, "a location with this code exists already")
	}
	return loc, audit.Record(ctx, tx, audit.Entry{ActorID: actorID, Action: "inventory.location_created",
		TargetType: "location", TargetID: in.Code, After: loc})
}

// Locations returns a page of the locations by code.
func (s *Service) Locations(ctx context.Context, p web.PageRequest) (web.Page[Location], error) {
	const op = "inventory.Locations"
	var after string
	if _, err := p.After(&after); err != nil {
		return web.Page[Location]{}, err
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT code, name, created_at FROM inventory_locations
		WHERE code > $1 ORDER BY code LIMIT $2`, after, p.Limit+1)
	if err != nil {
		return web.Page[Location]{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	var out []Location
	for rows.Next() {
		var l Location
		var at int64
		if err := rows.Scan(&l.Code, &l.Name, &at); err != nil {
			return web.Page[Location]{}, errs.E(op, errs.Internal, err)
		}
		l.CreatedAt = sqldb.FromMicros(at)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return web.Page[Location]{}, errs.E(op, errs.Internal, err)
	}
	return web.NewPage(out, p.Limit, func(last Location) any { return last.Code }), nil
}

// InStock reports, for each of skus, whether it has units available at
// some location (a SKU without stock rows is not in stock). One query.
func (s *Service) InStock(ctx context.Context, skus []string) (map[string]bool, error) {
	const op = "inventory.InStock"
	out := make(map[string]bool, len(skus))
	for start := 0; start < len(skus); start += 500 {
		part := skus[start:min(start+500, len(skus))]
		for _, sku := range part {
			out[sku] = false
		}
		rows, err := s.db.Reader().QueryContext(ctx, `SELECT sku FROM inventory_stock
			WHERE sku IN (`+sqldb.Placeholders(1, len(part))+`) GROUP BY sku HAVING SUM(on_hand - reserved) > 0`, sqldb.Args(part)...)
		if err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
		for rows.Next() {
			var sku string
			if err := rows.Scan(&sku); err != nil {
				rows.Close()
				return nil, errs.E(op, errs.Internal, err)
			}
			out[sku] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, errs.E(op, errs.Internal, err)
		}
	}
	return out, nil
}
