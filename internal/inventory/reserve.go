package inventory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// DefaultTTL is how long a reservation holds its units unless the caller
// says otherwise.
const DefaultTTL = 30 * time.Minute

// MaxRefLen bounds a reservation's reference (an order id).
const MaxRefLen = 128

// Line is one SKU and quantity of a reservation request.
type Line struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// ReservedLine is a reserved quantity of a SKU at one location; a request
// line may be split over several locations.
type ReservedLine struct {
	SKU      string `json:"sku"`
	Location string `json:"location"`
	Quantity int64  `json:"quantity"`
}

// The statuses of a reservation: reserved (the order is unpaid), then
// committed (paid: the units left stock) or released (cancelled or
// expired: the units are available again).
const (
	StatusReserved  = "reserved"
	StatusCommitted = "committed"
	StatusReleased  = "released"
)

// Reservation is the stock held for one order reference.
type Reservation struct {
	Ref        string         `json:"ref"`
	CustomerID string         `json:"customer_id"`
	Status     string         `json:"status"`
	Lines      []ReservedLine `json:"lines"`
	CreatedAt  time.Time      `json:"created_at"`
	ExpiresAt  time.Time      `json:"expires_at"`
}

// The stable codes of the module's conflicts (409) besides out_of_stock.
const (
	CodeSaleNotStarted    errs.Code = "sale_not_started"
	CodeSaleEnded         errs.Code = "sale_ended"
	CodeBelowReserved     errs.Code = "below_reserved"
	CodeReservationExists errs.Code = "reservation_exists"
	CodeLocationExists    errs.Code = "location_exists"
)

// ErrOutOfStock matches (errors.Is) every out-of-stock refusal; Shortage
// names the SKUs that were short.
var ErrOutOfStock = errors.New("inventory: out of stock")

// Shortage is the cause of an out_of_stock refusal: the SKUs whose
// available units could not cover the request, sorted.
type Shortage struct{ SKUs []string }

func (s *Shortage) Error() string { return "out of stock: " + strings.Join(s.SKUs, ", ") }

// Is makes errors.Is(err, ErrOutOfStock) hold.
func (s *Shortage) Is(target error) bool { return target == ErrOutOfStock }

// ShortSKUs returns the SKUs an out_of_stock error names (nil for any other
// error).
func ShortSKUs(err error) []string {
	var s *Shortage
	if errors.As(err, &s) {
		return s.SKUs
	}
	return nil
}

func outOfStock(op string, skus []string) error {
	slices.Sort(skus)
	return errs.E(op, errs.Conflict, errs.CodeOutOfStock, "out of stock: "+strings.Join(skus, ", "), &Shortage{SKUs: skus})
}

// LocationStock is what a location has available of a SKU, as an
// Allocator sees it.
type LocationStock struct {
	Location  string
	Available int64
}

// Allocation is a quantity taken from one location.
type Allocation struct {
	Location string
	Quantity int64
}

// An Allocator decides where the units of a request line come from. It is
// given the SKU's locations (sorted by code, with what each has available
// in the current transaction) and returns allocations summing to qty, none
// over its location's available units — or ok false when the stock cannot
// cover qty. It must be deterministic and must not block.
type Allocator interface {
	Allocate(sku string, qty int64, stock []LocationStock) (alloc []Allocation, ok bool)
}

// MostAvailable is the default Allocator: it takes from the location with
// the most available units (ties: the lower code), then the next, so a
// line is split only when one location runs short.
type MostAvailable struct{}

// Allocate implements Allocator.
func (MostAvailable) Allocate(_ string, qty int64, stock []LocationStock) ([]Allocation, bool) {
	byAvail := slices.Clone(stock)
	slices.SortStableFunc(byAvail, func(a, b LocationStock) int { return cmp.Compare(b.Available, a.Available) })
	var out []Allocation
	for _, l := range byAvail {
		if qty == 0 {
			break
		}
		if l.Available <= 0 {
			continue
		}
		n := min(qty, l.Available)
		out = append(out, Allocation{Location: l.Location, Quantity: n})
		qty -= n
	}
	return out, qty == 0
}

// mergeLines validates lines and sums the quantities of one SKU, sorted by
// SKU (the order rows are locked in).
func mergeLines(op string, lines []Line) ([]Line, error) {
	var v errs.Validation
	if len(lines) == 0 {
		v.Add("lines", "must hold at least one line")
	}
	if len(lines) > MaxLines {
		v.Add("lines", fmt.Sprintf("must hold at most %d lines", MaxLines))
	}
	sum := map[string]int64{}
	for i, l := range lines {
		if msg := checkSKU(l.SKU); msg != "" {
			v.Add(fmt.Sprintf("lines[%d].sku", i), msg)
		}
		if l.Quantity < 1 || l.Quantity > MaxQuantity {
			v.Add(fmt.Sprintf("lines[%d].quantity", i), fmt.Sprintf("must be from 1 to %d", MaxQuantity))
		}
		sum[l.SKU] += l.Quantity
	}
	if err := v.Err(op); err != nil {
		return nil, err
	}
	out := make([]Line, 0, len(sum))
	for sku, q := range sum {
		if q > MaxQuantity {
			return nil, errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
				[]errs.FieldError{{Field: "lines", Message: fmt.Sprintf("the quantity of %s must be at most %d", sku, MaxQuantity)}})
		}
		out = append(out, Line{SKU: sku, Quantity: q})
	}
	slices.SortFunc(out, func(a, b Line) int { return strings.Compare(a.SKU, b.SKU) })
	return out, nil
}

// Precheck refuses lines at the door: out_of_stock naming the SKUs known
// to be sold out, without touching the database. Reserve calls it before
// the write path; a caller composing ReserveTx into a unit of its own may
// call it first too. nil does not promise stock.
func (s *Service) Precheck(lines []Line) error {
	skus := make([]string, 0, len(lines))
	for _, l := range lines {
		skus = append(skus, l.SKU)
	}
	if out := s.soldOut.soldOut(skus); len(out) > 0 {
		return outOfStock("inventory.Reserve", slices.Compact(out))
	}
	return nil
}

// ReserveTx holds lines for the order reference ref of customerID in tx,
// all lines or none, until the reservation is committed, released or its
// ttl (DefaultTTL when 0 or less) runs out — expiry itself releases
// nothing: the orders module's expiry job lists Expired and releases. Each
// line is allocated over the SKU's locations by the Allocator.
//
// Refusals: out_of_stock (Conflict; ShortSKUs names every short SKU, also
// those the sold-out set refuses at the door), sale_not_started (with the
// opening time in the message) and sale_ended (Conflict) by the SKU's
// guard, limit_exceeded (Invalid) when the customer's units of a SKU with
// a per-customer limit would exceed it (reserved and committed units count;
// released ones do not; a reservation without a customer id, or made while
// the SKU had no limit, is not counted), reservation_exists (Conflict) for a ref reserved
// before, and validation_failed for malformed lines. A refusal may come
// after some of the call's writes: the caller's unit must fail with it, so
// that they are rolled back (the write path does that for a failing unit).
//
// The stock rows change only when tx commits, in one conditional UPDATE per
// row for all the units of the transaction (see state). Emits
// inventory.reserved (aggregate: ref).
func (s *Service) ReserveTx(ctx context.Context, tx *sqldb.Tx, ref, customerID string, lines []Line, ttl time.Duration) (Reservation, error) {
	const op = "inventory.Reserve"
	merged, err := mergeLines(op, lines)
	if err != nil {
		return Reservation{}, err
	}
	if ref == "" || len(ref) > MaxRefLen {
		return Reservation{}, errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
			[]errs.FieldError{{Field: "ref", Message: fmt.Sprintf("must be 1 to %d bytes", MaxRefLen)}})
	}
	if err := s.Precheck(merged); err != nil {
		return Reservation{}, err
	}
	if ttl <= 0 {
		ttl = s.ttl
	}
	// Decide every line before changing anything: all or nothing.
	type plan struct {
		st    *skuState
		line  Line
		alloc []Allocation
	}
	plans := make([]plan, 0, len(merged))
	var short []string
	for _, l := range merged {
		st, err := s.state(ctx, tx, l.SKU)
		if err != nil {
			return Reservation{}, err
		}
		if err := st.guard.window(op, tx.Now); err != nil {
			return Reservation{}, err
		}
		alloc, ok := s.alloc.Allocate(l.SKU, l.Quantity, st.stock())
		if !ok {
			short = append(short, l.SKU)
			continue
		}
		if err := checkAllocation(st, l, alloc); err != nil {
			return Reservation{}, errs.E(op, errs.Internal, err)
		}
		plans = append(plans, plan{st, l, alloc})
	}
	if len(short) > 0 {
		return Reservation{}, outOfStock(op, short)
	}
	now := sqldb.Micros(tx.Now)
	res, err := tx.ExecContext(ctx, `INSERT INTO inventory_reservations (ref, customer_id, status, created_at, expires_at, updated_at)
		VALUES ($1, $2, 'reserved', $3, $4, $3) ON CONFLICT (ref) DO NOTHING`, ref, customerID, now, sqldb.Micros(tx.Now.Add(ttl)))
	if err != nil {
		return Reservation{}, errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Reservation{}, errs.E(op, errs.Internal, err)
	} else if n != 1 {
		return Reservation{}, errs.E(op, errs.Conflict, CodeReservationExists, "a reservation for this reference exists already")
	}
	r := Reservation{Ref: ref, CustomerID: customerID, Status: StatusReserved, CreatedAt: tx.Now, ExpiresAt: tx.Now.Add(ttl)}
	var ledger []ledgerRow
	for i, p := range plans {
		counted := false
		if lim := p.st.guard.PerCustomerLimit; lim != nil && customerID != "" {
			if err := countUnits(ctx, tx, customerID, p.line, *lim, i); err != nil {
				return Reservation{}, err
			}
			counted = true
		}
		for _, a := range p.alloc {
			p.st.loc(a.Location).change(tx, 0, a.Quantity)
			if _, err := tx.ExecContext(ctx, `INSERT INTO inventory_reservation_lines (ref, sku, location, quantity, counted)
				VALUES ($1, $2, $3, $4, $5)`, ref, p.line.SKU, a.Location, a.Quantity, boolInt(counted)); err != nil {
				return Reservation{}, errs.E(op, errs.Internal, err)
			}
			r.Lines = append(r.Lines, ReservedLine{SKU: p.line.SKU, Location: a.Location, Quantity: a.Quantity})
			ledger = append(ledger, ledgerRow{sku: p.line.SKU, location: a.Location, reason: ReasonReservation, dRes: a.Quantity})
		}
	}
	if err := writeLedger(ctx, tx, ref, ledger); err != nil {
		return Reservation{}, err
	}
	ev, err := Reserved.New(ref, tx.Now, ReservedData{Ref: ref, Lines: r.Lines, ExpiresAt: r.ExpiresAt})
	if err != nil {
		return Reservation{}, err
	}
	return r, outbox.Append(ctx, tx, &ev)
}

// checkAllocation refuses an Allocator's answer that breaks its contract.
func checkAllocation(st *skuState, l Line, alloc []Allocation) error {
	var sum int64
	seen := map[string]bool{}
	for _, a := range alloc {
		loc := st.loc(a.Location)
		if loc == nil || seen[a.Location] || a.Quantity < 1 || a.Quantity > loc.available() {
			return fmt.Errorf("allocator: %d of %s from %q is not available there", a.Quantity, l.SKU, a.Location)
		}
		seen[a.Location] = true
		sum += a.Quantity
	}
	if sum != l.Quantity {
		return fmt.Errorf("allocator: %d of %s allocated, %d asked", sum, l.SKU, l.Quantity)
	}
	return nil
}

// countUnits adds line's units to the customer's counter of its SKU in one
// conditional upsert: no row is written when the sum would pass limit, so
// parallel reservations by one customer cannot outrun the cap (the row is
// locked on PostgreSQL; SQLite has one writer).
func countUnits(ctx context.Context, tx *sqldb.Tx, customerID string, line Line, limit int64, i int) error {
	const op = "inventory.Reserve"
	over := errs.E(op, errs.Invalid, errs.CodeLimitExceeded, fmt.Sprintf("at most %d units of %s per customer", limit, line.SKU),
		[]errs.FieldError{{Field: fmt.Sprintf("lines[%d].quantity", i), Message: fmt.Sprintf("over the limit of %d per customer", limit)}})
	if line.Quantity > limit {
		return over
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO inventory_customer_units (customer_id, sku, units) VALUES ($1, $2, $3)
		ON CONFLICT (customer_id, sku) DO UPDATE SET units = inventory_customer_units.units + excluded.units
		WHERE inventory_customer_units.units + excluded.units <= $4`, customerID, line.SKU, line.Quantity, limit)
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return over
	}
	return nil
}

// Reserve is ReserveTx as one unit of the write path, after Precheck.
func (s *Service) Reserve(ctx context.Context, ref, customerID string, lines []Line, ttl time.Duration) (r Reservation, err error) {
	if err := s.Precheck(lines); err != nil {
		return Reservation{}, err
	}
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error {
		r, err = s.ReserveTx(ctx, tx, ref, customerID, lines, ttl)
		return err
	})
	return r, err
}
