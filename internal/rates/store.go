package rates

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"sync"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/pricing"
)

// Actor is the staff member who saves a table, as the audit log records
// them.
type Actor struct {
	ID string // the staff member's user id
	IP string // their client address, when known
}

// The tables, as events and audit entries name them.
const (
	TableShipping = "shipping"
	TableTax      = "tax"
)

// queryer is what reads a table: the unit's transaction or the reader.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// cache holds the engine's form of the current tables by version. It only
// ever holds committed versions (filled after the reading transaction
// commits), and a save empties it when it commits; every read still asks
// the database for the current versions, so a save by another process is
// seen at once.
type cache struct {
	mu       sync.Mutex
	shipping pricing.ShippingTable // Version 0: nothing cached
	currency string
	tax      pricing.TaxTable
	loads    int // table documents decoded (tests count them)
}

func (c *cache) get() (pricing.ShippingTable, string, pricing.TaxTable) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shipping, c.currency, c.tax
}

func (c *cache) put(s pricing.ShippingTable, currency string, t pricing.TaxTable) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.Version >= c.shipping.Version {
		c.shipping, c.currency = s, currency
	}
	if t.Version >= c.tax.Version {
		c.tax = t
	}
}

func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shipping, c.currency, c.tax = pricing.ShippingTable{}, "", pricing.TaxTable{}
}

// CurrentTx returns, read in tx (the checkout's unit), the current
// shipping table and tax table with their versions (Version 0 and no
// entries while none was saved). One query when both are cached at their
// current versions; the tables are shared: callers must not change them.
// The shipping table's currency is ShippingCurrency's.
func (s *Service) CurrentTx(ctx context.Context, tx *sqldb.Tx) (pricing.ShippingTable, pricing.TaxTable, error) {
	st, _, tt, err := s.current(ctx, tx, tx.AfterCommit)
	return st, tt, err
}

// ShippingCurrencyTx returns the currency of the current shipping table
// ("" while none was saved), read in tx.
func (s *Service) ShippingCurrencyTx(ctx context.Context, tx *sqldb.Tx) (string, error) {
	_, c, _, err := s.current(ctx, tx, tx.AfterCommit)
	return c, err
}

// current reads the current versions through q and loads the tables not
// cached at them; later (nil: now) is how the loaded tables are cached once
// what q read is known to be committed.
func (s *Service) current(ctx context.Context, q queryer, later func(func())) (pricing.ShippingTable, string, pricing.TaxTable, error) {
	v, err := s.versions(ctx, q)
	if err != nil {
		return pricing.ShippingTable{}, "", pricing.TaxTable{}, err
	}
	sv, tv := v[0], v[1]
	st, currency, tt := s.cache.get()
	loaded := false
	if st.Version != sv {
		doc, err := s.loadShipping(ctx, q, sv)
		if err != nil {
			return pricing.ShippingTable{}, "", pricing.TaxTable{}, err
		}
		st, currency, loaded = ShippingRequest{Currency: doc.Currency, Zones: doc.Zones}.shipping(sv), doc.Currency, true
	}
	if tt.Version != tv {
		doc, err := s.loadTax(ctx, q, tv)
		if err != nil {
			return pricing.ShippingTable{}, "", pricing.TaxTable{}, err
		}
		// Checked once here, so that no quote validates it again.
		if tt, err = (TaxRequest{Regions: doc.Regions}.tax(tv)).Checked(); err != nil {
			return pricing.ShippingTable{}, "", pricing.TaxTable{}, errs.E("rates.current", errs.Internal, err)
		}
		loaded = true
	}
	if loaded {
		s.cache.mu.Lock()
		s.cache.loads++
		s.cache.mu.Unlock()
		put := func() { s.cache.put(st, currency, tt) }
		if later != nil {
			later(put)
		} else {
			put()
		}
	}
	return st, currency, tt, nil
}

// versions returns the current versions of the shipping and tax tables:
// from the process's cache (no row read), or read through q in a
// transaction that saved a table (which the cache does not show yet).
func (s *Service) versions(ctx context.Context, q queryer) ([2]int64, error) {
	if tx, ok := q.(*sqldb.Tx); ok && *s.saves(tx) > 0 {
		return readVersions(ctx, q)
	}
	return s.vcache.Get(func() ([2]int64, error) { return readVersions(ctx, s.db.Reader()) })
}

func readVersions(ctx context.Context, q queryer) ([2]int64, error) {
	var v [2]int64
	if err := q.QueryRowContext(ctx, `SELECT (SELECT COALESCE(MAX(version), 0) FROM rates_shipping_tables),
		(SELECT COALESCE(MAX(version), 0) FROM rates_tax_tables)`).Scan(&v[0], &v[1]); err != nil {
		return v, errs.E("rates.Current", errs.Internal, err)
	}
	return v, nil
}

type savesKey struct{}

// saves counts the units of tx that saved a table (and were not rolled
// back).
func (s *Service) saves(tx *sqldb.Tx) *int {
	v, _ := tx.Local(savesKey{}, func() (any, error) { return new(int), nil })
	return v.(*int)
}

// loadShipping reads version v of the shipping table (v 0: the empty one).
func (s *Service) loadShipping(ctx context.Context, q queryer, v int64) (ShippingDocument, error) {
	const op = "rates.loadShipping"
	d := ShippingDocument{Version: v, Zones: []Zone{}}
	if v == 0 {
		return d, nil
	}
	var doc string
	var at int64
	if err := q.QueryRowContext(ctx, `SELECT currency, doc, created_by, created_at FROM rates_shipping_tables WHERE version = $1`,
		v).Scan(&d.Currency, &doc, &d.UpdatedBy, &at); err != nil {
		return ShippingDocument{}, errs.E(op, errs.Internal, err)
	}
	if err := json.Unmarshal([]byte(doc), &d.Zones); err != nil {
		return ShippingDocument{}, errs.E(op, errs.Internal, err)
	}
	t := sqldb.FromMicros(at)
	d.UpdatedAt = &t
	return d, nil
}

// loadTax reads version v of the tax table (v 0: the empty one).
func (s *Service) loadTax(ctx context.Context, q queryer, v int64) (TaxDocument, error) {
	const op = "rates.loadTax"
	d := TaxDocument{Version: v, Regions: []TaxRegion{}}
	if v == 0 {
		return d, nil
	}
	var doc string
	var at int64
	if err := q.QueryRowContext(ctx, `SELECT doc, created_by, created_at FROM rates_tax_tables WHERE version = $1`,
		v).Scan(&doc, &d.UpdatedBy, &at); err != nil {
		return TaxDocument{}, errs.E(op, errs.Internal, err)
	}
	if err := json.Unmarshal([]byte(doc), &d.Regions); err != nil {
		return TaxDocument{}, errs.E(op, errs.Internal, err)
	}
	t := sqldb.FromMicros(at)
	d.UpdatedAt = &t
	return d, nil
}

// PutShippingTx saves r as the next version of the shipping table in tx:
// validated first (Invalid naming each bad field — overlapping zones or
// brackets name the overlap), audited, rates.updated appended; the cache
// is emptied when tx commits.
func (s *Service) PutShippingTx(ctx context.Context, tx *sqldb.Tx, by Actor, r ShippingRequest) (ShippingDocument, error) {
	const op = "rates.PutShipping"
	if r.Zones == nil {
		r.Zones = []Zone{}
	}
	if err := r.validate(op); err != nil {
		return ShippingDocument{}, err
	}
	doc, err := json.Marshal(r.Zones)
	if err != nil {
		return ShippingDocument{}, errs.E(op, errs.Internal, err)
	}
	v, err := next(ctx, tx, op, "rates_shipping_tables")
	if err != nil {
		return ShippingDocument{}, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO rates_shipping_tables (version, currency, doc, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5)`, v, r.Currency, string(doc), by.ID, sqldb.Micros(tx.Now))
	if err := inserted(op, err); err != nil {
		return ShippingDocument{}, err
	}
	now := tx.Now
	d := ShippingDocument{Version: v, Currency: r.Currency, Zones: r.Zones, UpdatedBy: by.ID, UpdatedAt: &now}
	return d, s.saved(ctx, tx, by, TableShipping, v, d)
}

// PutShipping is PutShippingTx as one unit of the write path.
func (s *Service) PutShipping(ctx context.Context, by Actor, r ShippingRequest) (d ShippingDocument, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { d, err = s.PutShippingTx(ctx, tx, by, r); return err })
	return d, err
}

// PutTaxTx saves r as the next version of the tax table in tx, as
// PutShippingTx does.
func (s *Service) PutTaxTx(ctx context.Context, tx *sqldb.Tx, by Actor, r TaxRequest) (TaxDocument, error) {
	const op = "rates.PutTax"
	if r.Regions == nil {
		r.Regions = []TaxRegion{}
	}
	if err := r.validate(op); err != nil {
		return TaxDocument{}, err
	}
	doc, err := json.Marshal(r.Regions)
	if err != nil {
		return TaxDocument{}, errs.E(op, errs.Internal, err)
	}
	v, err := next(ctx, tx, op, "rates_tax_tables")
	if err != nil {
		return TaxDocument{}, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO rates_tax_tables (version, doc, created_by, created_at)
		VALUES ($1, $2, $3, $4)`, v, string(doc), by.ID, sqldb.Micros(tx.Now))
	if err := inserted(op, err); err != nil {
		return TaxDocument{}, err
	}
	now := tx.Now
	d := TaxDocument{Version: v, Regions: r.Regions, UpdatedBy: by.ID, UpdatedAt: &now}
	return d, s.saved(ctx, tx, by, TableTax, v, d)
}

// PutTax is PutTaxTx as one unit of the write path.
func (s *Service) PutTax(ctx context.Context, by Actor, r TaxRequest) (d TaxDocument, err error) {
	err = s.write.Do(ctx, func(tx *sqldb.Tx) error { d, err = s.PutTaxTx(ctx, tx, by, r); return err })
	return d, err
}

// next is the next version of table (a constant name).
func next(ctx context.Context, tx *sqldb.Tx, op, table string) (int64, error) {
	var v int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM `+table).Scan(&v); err != nil {
		return 0, errs.E(op, errs.Internal, err)
	}
	return v, nil
}

// inserted maps the insert of a version: a version taken meanwhile by
// another transaction (two saves at once) asks for the batch to be tried
// again.
func inserted(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case sqldb.IsUniqueViolation(err):
		return errs.E(op, errs.Internal, errors.Join(sqldb.ErrConflict, err))
	default:
		return errs.E(op, errs.Internal, err)
	}
}

// saved audits a saved table, appends rates.updated and empties the cache
// at commit.
func (s *Service) saved(ctx context.Context, tx *sqldb.Tx, by Actor, table string, version int64, doc any) error {
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: by.ID, Action: "rates." + table + "_updated", TargetType: "rates",
		TargetID: table, IP: by.IP, After: doc}); err != nil {
		return err
	}
	ev, err := Updated.New(table, tx.Now, UpdatedData{Table: table, Version: version})
	if err != nil {
		return errs.E("rates.saved", errs.Internal, err)
	}
	tx.AfterCommit(s.cache.clear)
	n := s.saves(tx)
	*n++
	tx.OnRollback(func() { *n-- })
	if err := s.vcache.ChangedTx(ctx, tx); err != nil {
		return errs.E("rates.saved", errs.Internal, err)
	}
	return outbox.Append(ctx, tx, &ev)
}

// Shipping returns the current shipping table as staff read it.
func (s *Service) Shipping(ctx context.Context) (ShippingDocument, error) {
	var v int64
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM rates_shipping_tables`).Scan(&v); err != nil {
		return ShippingDocument{}, errs.E("rates.Shipping", errs.Internal, err)
	}
	return s.loadShipping(ctx, s.db.Reader(), v)
}

// Tax returns the current tax table as staff read it.
func (s *Service) Tax(ctx context.Context) (TaxDocument, error) {
	var v int64
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM rates_tax_tables`).Scan(&v); err != nil {
		return TaxDocument{}, errs.E("rates.Tax", errs.Internal, err)
	}
	return s.loadTax(ctx, s.db.Reader(), v)
}
