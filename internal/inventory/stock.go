package inventory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// locState is one stock row (a SKU at a location) as a transaction sees
// it: the row as read (or inserted), plus the changes the transaction's
// units made to it so far, which the transaction's flush hook writes in one
// conditional UPDATE.
type locState struct {
	location         string
	onHand, reserved int64 // as read
	dOnHand, dRes    int64 // pending changes of this transaction
	sets             int   // units that set on_hand outright (PUT) from the read
	inserted         bool  // the transaction inserted the row (not read)
}

// set records that the current unit sets on_hand outright from what was
// read (undone with the unit): the flush refuses it if the row's on_hand
// changed since the read.
func (l *locState) set(tx *sqldb.Tx) {
	l.sets++
	tx.OnRollback(func() { l.sets-- })
}

func (l *locState) curOnHand() int64   { return l.onHand + l.dOnHand }
func (l *locState) curReserved() int64 { return l.reserved + l.dRes }
func (l *locState) available() int64   { return l.curOnHand() - l.curReserved() }

// change adds a pending change and registers its undo for when the current
// unit is rolled back.
func (l *locState) change(tx *sqldb.Tx, dOnHand, dRes int64) {
	l.dOnHand += dOnHand
	l.dRes += dRes
	tx.OnRollback(func() { l.dOnHand -= dOnHand; l.dRes -= dRes })
}

// skuState is every stock row of one SKU, shared by the units of one
// transaction through Tx.Local: read once, without a lock, by the first
// unit that touches the SKU, changed in memory by each unit, written once
// by the transaction's flush hook (see flushAll). Every stock change of
// this module goes through it — reservations, commits, releases, PUT — so
// the rows of a hot SKU cost one UPDATE per row per batch, whatever the mix.
type skuState struct {
	sku     string
	locs    []*locState // sorted by location
	guard   Guard
	avail0  int64  // available when read
	gen     uint64 // the sold-out set's generation of sku when read
	updates int    // UPDATE statements the hook ran
	before  int64  // available just before the flush, under its row locks
	after   int64  // available after the flush
	flushed bool   // the flush ran (before and after hold)
}

func (st *skuState) available() int64 {
	var n int64
	for _, l := range st.locs {
		n += l.available()
	}
	return n
}

func (st *skuState) loc(code string) *locState {
	i, ok := slices.BinarySearchFunc(st.locs, code, func(l *locState, c string) int { return strings.Compare(l.location, c) })
	if !ok {
		return nil
	}
	return st.locs[i]
}

// stock returns each location's available units, sorted by location.
func (st *skuState) stock() []LocationStock {
	out := make([]LocationStock, len(st.locs))
	for i, l := range st.locs {
		out[i] = LocationStock{Location: l.location, Available: l.available()}
	}
	return out
}

type skuKey struct{ sku string }

// flushKey is the Tx.Local key of the transaction's flushSet.
type flushKey struct{}

// flushSet is every SKU the transaction's units read, flushed by one
// BeforeCommit hook in SKU order.
type flushSet struct{ skus []*skuState }

func sortLocs(locs []*locState) {
	slices.SortFunc(locs, func(a, b *locState) int { return strings.Compare(a.location, b.location) })
}

// remove takes l out of st (a row inserted by a unit that was rolled back).
func (st *skuState) remove(l *locState) {
	st.locs = slices.DeleteFunc(st.locs, func(x *locState) bool { return x == l })
}

// Flush is what one committed transaction did to one SKU's rows, reported
// to Config.OnFlush after the commit.
type Flush struct {
	SKU string
	// Updates is the number of UPDATE statements the transaction ran on
	// the SKU's stock rows (one per row it changed).
	Updates int
	// Reserved is the change of the SKU's reserved units.
	Reserved int64
	// Available is the SKU's available units after the commit.
	Available int64
}

// state returns the transaction's view of sku, reading its rows on first
// use and adding it to the transaction's flush set.
//
// The read takes no lock, on either engine: it is the committed state at
// the time of the read, and the units decide from it. Locks are taken only
// by the flush, in (sku, location) order for the whole transaction, so two
// batches in flight at once never wait on each other in a cycle whatever
// order their units touch SKUs in (docs/writepath.md, "Lock order").
func (s *Service) state(ctx context.Context, tx *sqldb.Tx, sku string) (*skuState, error) {
	v, err := tx.Local(skuKey{sku}, func() (any, error) {
		st := &skuState{sku: sku, gen: s.soldOut.generation(sku)}
		// The rows and the guard in one statement; a SKU without rows has
		// its guard read on its own.
		// On PostgreSQL a batch that lost a conflict (a stale read) locks
		// what it reads on its next tries, so that under churn it waits
		// for the other batch instead of losing again until its tries run
		// out; the lock order is then its units' (a rare deadlock is
		// PostgreSQL's to break, and the batch is retried again).
		q := `SELECT s.location, s.on_hand, s.reserved,
			g.per_customer_limit, g.sale_starts_at, g.sale_ends_at, g.low_stock_threshold, g.sku IS NOT NULL
			FROM inventory_stock s LEFT JOIN inventory_guards g ON g.sku = s.sku
			WHERE s.sku = $1 ORDER BY s.location`
		if tx.Try > 1 && tx.Engine() == sqldb.Postgres {
			q += ` FOR UPDATE OF s`
		}
		rows, err := tx.QueryContext(ctx, q, sku)
		if err != nil {
			return nil, err
		}
		var g guardRow
		for rows.Next() {
			l := &locState{}
			if err := rows.Scan(&l.location, &l.onHand, &l.reserved, &g.limit, &g.starts, &g.ends, &g.low, &g.found); err != nil {
				rows.Close()
				return nil, err
			}
			st.locs = append(st.locs, l)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if len(st.locs) > 0 {
			st.guard = g.guard(sku)
		} else if st.guard, err = readGuard(ctx, tx, sku); err != nil {
			return nil, err
		}
		st.avail0 = st.available()
		if st.avail0 == 0 {
			// Committed state; a receipt committed after the read has
			// renewed the generation, so the mark is refused.
			s.soldOut.mark(sku, st.gen)
		}
		set, err := tx.Local(flushKey{}, func() (any, error) {
			set := &flushSet{}
			tx.BeforeCommit(func(ctx context.Context) error { return s.flushAll(ctx, tx, set) })
			return set, nil
		})
		if err != nil {
			return nil, err
		}
		fs := set.(*flushSet)
		fs.skus = append(fs.skus, st)
		tx.OnRollback(func() { fs.skus = slices.DeleteFunc(fs.skus, func(x *skuState) bool { return x == st }) })
		tx.AfterCommit(func() { s.committed(st) })
		return st, nil
	})
	if err != nil {
		return nil, errs.E("inventory.state", errs.Internal, err)
	}
	return v.(*skuState), nil
}

// flushAll is the transaction's one BeforeCommit hook of stock: it flushes
// the SKUs its units touched in SKU order (each SKU's rows in location
// order), so every transaction takes its stock row locks in one global
// order.
func (s *Service) flushAll(ctx context.Context, tx *sqldb.Tx, set *flushSet) error {
	skus := slices.Clone(set.skus)
	slices.SortFunc(skus, func(a, b *skuState) int { return strings.Compare(a.sku, b.sku) })
	for _, st := range skus {
		if err := s.flush(ctx, tx, st); err != nil {
			return err
		}
	}
	return nil
}

// flush writes the transaction's changes of st's rows, which were read
// without a lock. On PostgreSQL it first locks every row of the SKU (FOR
// UPDATE, location order) and reads them afresh; SQLite has one writer, so
// the read is fresh already. It refuses (sqldb.ErrConflict: the batch runs
// again, its units deciding from a fresh read) when a row changed since
// the read beyond what the changes allow, or when a unit set a row's
// on_hand outright (PUT) from a value that is no longer current. Then one
// conditional UPDATE per changed row — the guard that holds whatever was
// read: it matches no row that the changes would take below zero.
//
// It emits inventory.sold_out or inventory.restocked when the SKU's
// available units reached zero or left it, and inventory.low_stock when
// they crossed below its threshold — judged from the fresh rows, under
// their locks, so each crossing is reported once.
func (s *Service) flush(ctx context.Context, tx *sqldb.Tx, st *skuState) error {
	changed := false
	for _, l := range st.locs {
		changed = changed || l.dOnHand != 0 || l.dRes != 0 || l.sets > 0
	}
	if !changed {
		st.before, st.after, st.flushed = st.avail0, st.available(), true
		return nil
	}
	if tx.Engine() == sqldb.Postgres && len(st.locs) == 1 && !st.locs[0].inserted && (st.locs[0].dOnHand != 0 || st.locs[0].dRes != 0) {
		before, err := s.flushRow(ctx, tx, st, st.locs[0])
		if err != nil {
			return err
		}
		return s.crossings(ctx, tx, st, before, before+st.locs[0].dOnHand-st.locs[0].dRes)
	}
	before := st.avail0
	if tx.Engine() == sqldb.Postgres {
		var err error
		if before, err = s.relock(ctx, tx, st); err != nil {
			return err
		}
	}
	var delta int64
	for _, l := range st.locs {
		delta += l.dOnHand - l.dRes
		if l.dOnHand == 0 && l.dRes == 0 {
			continue
		}
		st.updates++
		res, err := tx.ExecContext(ctx, `UPDATE inventory_stock
			SET on_hand = on_hand + $1, reserved = reserved + $2, updated_at = $3
			WHERE sku = $4 AND location = $5
			  AND on_hand + $1 >= 0 AND reserved + $2 >= 0 AND on_hand + $1 - (reserved + $2) >= 0`,
			l.dOnHand, l.dRes, sqldb.Micros(tx.Now), st.sku, l.location)
		if err != nil {
			return errs.E("inventory.flush", errs.Internal, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("inventory: stock of %s at %s changed since it was read: %w", st.sku, l.location, sqldb.ErrConflict)
		}
	}
	return s.crossings(ctx, tx, st, before, before+delta)
}

// flushRow is flush on PostgreSQL for a SKU read with one row, which the
// transaction changed: the conditional UPDATE locks the row, and its
// RETURNING gives the row as it stood (and the other rows of the SKU that
// were committed, added since the read) — no locking read needed. It
// returns the SKU's available units before the change.
func (s *Service) flushRow(ctx context.Context, tx *sqldb.Tx, st *skuState, l *locState) (int64, error) {
	st.updates++
	var onHand, reserved, others int64
	err := tx.QueryRowContext(ctx, `UPDATE inventory_stock
		SET on_hand = on_hand + $1, reserved = reserved + $2, updated_at = $3
		WHERE sku = $4 AND location = $5
		  AND on_hand + $1 >= 0 AND reserved + $2 >= 0 AND on_hand + $1 - (reserved + $2) >= 0
		RETURNING on_hand, reserved, (SELECT COALESCE(SUM(o.on_hand - o.reserved), 0) FROM inventory_stock o
			WHERE o.sku = $4 AND o.location <> $5)`,
		l.dOnHand, l.dRes, sqldb.Micros(tx.Now), st.sku, l.location).Scan(&onHand, &reserved, &others)
	if errNoRows(err) || err == nil && l.sets > 0 && onHand-l.dOnHand != l.onHand {
		return 0, fmt.Errorf("inventory: stock of %s at %s changed since it was read: %w", st.sku, l.location, sqldb.ErrConflict)
	}
	if err != nil {
		return 0, errs.E("inventory.flush", errs.Internal, err)
	}
	return onHand - l.dOnHand - (reserved - l.dRes) + others, nil
}

// crossings records st's available units before and after the flush and
// appends the events of the thresholds they crossed.
func (s *Service) crossings(ctx context.Context, tx *sqldb.Tx, st *skuState, before, after int64) error {
	st.before, st.after, st.flushed = before, after, true
	if (before > 0) != (after > 0) {
		kind := SoldOut
		if after > 0 {
			kind = Restocked
		}
		ev, err := kind.New(st.sku, tx.Now, AvailabilityData{SKU: st.sku, Available: after})
		if err != nil {
			return err
		}
		if err := outbox.Append(ctx, tx, &ev); err != nil {
			return err
		}
	}
	if t := st.guard.LowStockThreshold; t != nil && before >= *t && after < *t {
		ev, err := LowStock.New(st.sku, tx.Now, LowStockData{SKU: st.sku, Available: after, Threshold: *t})
		if err != nil {
			return err
		}
		if err := outbox.Append(ctx, tx, &ev); err != nil {
			return err
		}
	}
	return nil
}

// relock locks and reads afresh every stock row of st's SKU (PostgreSQL)
// and returns the SKU's available units as they stand, before the
// transaction's changes. A row the transaction changes must still allow
// its changes, and a row a unit set outright must be as read; otherwise
// sqldb.ErrConflict.
func (s *Service) relock(ctx context.Context, tx *sqldb.Tx, st *skuState) (int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT location, on_hand, reserved FROM inventory_stock
		WHERE sku = $1 ORDER BY location FOR UPDATE`, st.sku)
	if err != nil {
		return 0, errs.E("inventory.flush", errs.Internal, err)
	}
	defer rows.Close()
	var avail int64
	for rows.Next() {
		var loc string
		var onHand, reserved int64
		if err := rows.Scan(&loc, &onHand, &reserved); err != nil {
			return 0, errs.E("inventory.flush", errs.Internal, err)
		}
		avail += onHand - reserved
		l := st.loc(loc)
		if l == nil {
			continue // a row another transaction added since the read
		}
		stale := l.sets > 0 && onHand != l.onHand
		short := onHand+l.dOnHand < 0 || reserved+l.dRes < 0 || onHand+l.dOnHand-(reserved+l.dRes) < 0
		if stale || short {
			return 0, fmt.Errorf("inventory: stock of %s at %s changed since it was read: %w", st.sku, loc, sqldb.ErrConflict)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, errs.E("inventory.flush", errs.Internal, err)
	}
	return avail, nil
}

// committed runs after a transaction that touched st committed: it keeps
// the sold-out set and reports the flush.
func (s *Service) committed(st *skuState) {
	avail := st.available()
	if st.flushed {
		avail = st.after
	}
	if avail == 0 {
		s.soldOut.mark(st.sku, st.gen)
	} else {
		s.soldOut.clear(st.sku)
	}
	if s.onFlush != nil {
		var dRes int64
		for _, l := range st.locs {
			dRes += l.dRes
		}
		s.onFlush(Flush{SKU: st.sku, Updates: st.updates, Reserved: dRes, Available: avail})
	}
}

// soldOutSet remembers the SKUs that had nothing available when last
// read or committed, so that reservations of them are refused at the door,
// without a transaction. A SKU leaves the set when a committed transaction
// leaves it with units available (a receipt, a release). Each SKU has a
// generation, renewed when it leaves the set: a transaction marks a SKU sold
// out only if no other cleared it since its own read, so a stale reading
// never hides fresh stock. The set is bounded: when it would grow past max
// SKUs it forgets everything (and every generation read before).
//
// The set is this process's: a receipt committed by another replica does
// not clear it, so an entry lasts at most ttl — the longest another
// replica's fresh stock stays refused at this one's door.
type soldOutSet struct {
	mu      sync.Mutex
	counter uint64               // the last generation handed out
	floor   uint64               // the generation of every SKU not in gen
	gen     map[string]uint64    // SKUs cleared since the last reset
	out     map[string]time.Time // when each SKU was marked
	max     int
	ttl     time.Duration
	now     func() time.Time
}

func newSoldOutSet(max int, ttl time.Duration, now func() time.Time) *soldOutSet {
	return &soldOutSet{gen: map[string]uint64{}, out: map[string]time.Time{}, max: max, ttl: ttl, now: now}
}

func (s *soldOutSet) generation(sku string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.genOf(sku)
}

func (s *soldOutSet) genOf(sku string) uint64 {
	if g, ok := s.gen[sku]; ok {
		return g
	}
	return s.floor
}

// mark puts sku in the set unless it was cleared after generation gen was
// read.
func (s *soldOutSet) mark(sku string, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.genOf(sku) != gen {
		return
	}
	if _, ok := s.out[sku]; !ok && len(s.out) >= s.max {
		s.reset()
		return
	}
	s.out[sku] = s.now()
}

// clear takes sku out of the set and renews its generation.
func (s *soldOutSet) clear(sku string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.gen[sku]; !ok && len(s.gen) >= s.max {
		s.reset()
		return
	}
	s.counter++
	s.gen[sku] = s.counter
	delete(s.out, sku)
}

// reset forgets every SKU; generations read before no longer match.
func (s *soldOutSet) reset() {
	s.counter++
	s.floor = s.counter
	clear(s.gen)
	clear(s.out)
}

// soldOut returns those of skus in the set (marked within ttl).
func (s *soldOutSet) soldOut(skus []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	now := s.now()
	for _, sku := range skus {
		at, ok := s.out[sku]
		switch {
		case !ok:
		case now.Sub(at) >= s.ttl:
			delete(s.out, sku)
		default:
			out = append(out, sku)
		}
	}
	return out
}

// errNoRows reports whether err is sql.ErrNoRows.
func errNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
