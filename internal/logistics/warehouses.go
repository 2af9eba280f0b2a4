package logistics

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"mercato/internal/audit"
	"mercato/internal/platform/errs"
	serversecret "mercato/internal/platform/secret"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// PermWarehousesManage is the permission to register warehouses, rotate
// their secrets and read the updates they sent.
const PermWarehousesManage = "warehouses.manage"

// CodeWarehouseExists is the 409 of a registration whose code is taken.
const CodeWarehouseExists errs.Code = "warehouse_exists"

// WarehouseSecretPrefix starts every warehouse secret: "whsec_" + standard
// padded base64 of 32 random bytes, as Standard Webhooks secrets are, so a
// warehouse signs with any Standard Webhooks library.
const WarehouseSecretPrefix = serversecret.StandardPrefix

// sealPurpose names the key warehouse secrets are sealed under.
const sealPurpose = "logistics/warehouse-secret"

var warehouseCodeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// WarehouseRequest is POST /api/v1/admin/warehouses's body.
type WarehouseRequest struct {
	Code     string `json:"code" maxlen:"32" doc:"1–32 lower-case letters, digits, '_' and '-': the warehouse's path segment."`
	Name     string `json:"name" maxlen:"200"`
	Location string `json:"location" maxlen:"32" doc:"The inventory location the warehouse's stock updates count at (it must exist)."`
}

// Warehouse is a registered warehouse. Secret is set only in the answers
// that create or rotate it: it is shown once and kept sealed.
type Warehouse struct {
	Code      string    `json:"code"`
	Name      string    `json:"name"`
	Location  string    `json:"location"`
	Secret    string    `json:"secret,omitempty" doc:"whsec_…: shown once, when created or rotated."`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// WarehouseUpdateRecord is one update a warehouse got applied.
type WarehouseUpdateRecord struct {
	UpdateID   string    `json:"update_id"`
	Type       string    `json:"type"`
	OrderID    string    `json:"order_id,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}

// newWarehouseSecret returns a fresh secret.
func newWarehouseSecret() string { return serversecret.NewStandardSecret() }

// sealer returns the sealer of warehouse secrets, or an Internal error when
// the process has no server secret.
func (s *Service) sealer(op string) (*serversecret.Sealer, error) {
	if s.seal == nil {
		return nil, errs.E(op, errs.Internal, "logistics has no server secret to seal warehouse secrets with")
	}
	return s.seal, nil
}

// CreateWarehouseTx registers a warehouse in tx by staff member by: its
// secret is generated, returned once and stored sealed. A taken code is 409
// warehouse_exists; an invalid field or a location inventory does not know
// is validation_failed (the location is checked before the unit, see
// checkWarehouse).
func (s *Service) CreateWarehouseTx(ctx context.Context, tx *sqldb.Tx, in WarehouseRequest, by string) (Warehouse, error) {
	const op = "logistics.CreateWarehouse"
	seal, err := s.sealer(op)
	if err != nil {
		return Warehouse{}, err
	}
	w := Warehouse{Code: in.Code, Name: in.Name, Location: in.Location, Secret: newWarehouseSecret(), CreatedAt: tx.Now, UpdatedAt: tx.Now}
	now := sqldb.Micros(tx.Now)
	res, err := tx.ExecContext(ctx, `INSERT INTO logistics_warehouses (code, name, location, secret_sealed, created_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (code) DO NOTHING`, w.Code, w.Name, w.Location, seal.Seal(w.Code, []byte(w.Secret)), by, now)
	if err != nil {
		return Warehouse{}, errs.E(op, errs.Internal, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Warehouse{}, errs.E(op, errs.Internal, err)
	} else if n == 0 {
		return Warehouse{}, errs.E(op, errs.Conflict, CodeWarehouseExists, "a warehouse with this code exists already")
	}
	pub := w
	pub.Secret = ""
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: by, Action: "warehouse.created", TargetType: "warehouse", TargetID: w.Code, After: pub}); err != nil {
		return Warehouse{}, err
	}
	return w, nil
}

// checkWarehouse validates a registration outside the unit: its fields,
// and that inventory knows its location.
func (s *Service) checkWarehouse(ctx context.Context, in WarehouseRequest) error {
	const op = "logistics.CreateWarehouse"
	var v errs.Validation
	v.Check(warehouseCodeRE.MatchString(in.Code), "code", "must be 1 to 32 lower-case letters, digits, '_' and '-', starting with a letter or digit")
	v.Check(in.Name != "", "name", "is required")
	v.Check(in.Location != "", "location", "is required")
	if err := v.Err(op); err != nil {
		return err
	}
	if s.stock == nil {
		return nil
	}
	ok, err := s.stock.LocationExists(ctx, in.Location)
	if err != nil {
		return err
	}
	v.Check(ok, "location", "is not an inventory location")
	return v.Err(op)
}

// RotateWarehouseSecretTx gives warehouse code a new secret in tx (returned
// once); the previous one still verifies for RotationWindow, so the
// warehouse can switch without losing updates.
func (s *Service) RotateWarehouseSecretTx(ctx context.Context, tx *sqldb.Tx, code, by string) (Warehouse, error) {
	const op = "logistics.RotateWarehouseSecret"
	seal, err := s.sealer(op)
	if err != nil {
		return Warehouse{}, err
	}
	var cur string
	err = tx.QueryRowContext(ctx, `SELECT secret_sealed FROM logistics_warehouses WHERE code = $1`, code).Scan(&cur)
	if isNoRows(err) {
		return Warehouse{}, errs.E(op, errs.NotFound, "no such warehouse")
	}
	if err != nil {
		return Warehouse{}, errs.E(op, errs.Internal, err)
	}
	old, err := seal.Open(code, cur)
	if err != nil {
		return Warehouse{}, errs.E(op, errs.Internal, err)
	}
	fresh := newWarehouseSecret()
	until := tx.Now.Add(s.cfg.RotationWindow)
	if _, err := tx.ExecContext(ctx, `UPDATE logistics_warehouses SET secret_sealed = $2, previous_secret_sealed = $3,
		previous_until = $4, updated_at = $5 WHERE code = $1`, code, seal.Seal(code, []byte(fresh)), seal.Seal(code, old),
		sqldb.Micros(until), sqldb.Micros(tx.Now)); err != nil {
		return Warehouse{}, errs.E(op, errs.Internal, err)
	}
	if err := audit.Record(ctx, tx, audit.Entry{ActorID: by, Action: "warehouse.secret_rotated", TargetType: "warehouse", TargetID: code,
		After: map[string]any{"previous_valid_until": until}}); err != nil {
		return Warehouse{}, err
	}
	w, err := getWarehouse(ctx, tx, code)
	w.Secret = fresh
	return w, err
}

const warehouseCols = `code, name, location, created_at, updated_at`

func scanWarehouse(sc interface{ Scan(...any) error }) (Warehouse, error) {
	var w Warehouse
	var created, updated int64
	if err := sc.Scan(&w.Code, &w.Name, &w.Location, &created, &updated); err != nil {
		return Warehouse{}, err
	}
	w.CreatedAt, w.UpdatedAt = sqldb.FromMicros(created), sqldb.FromMicros(updated)
	return w, nil
}

// getWarehouse reads warehouse code (without its secret); NotFound when
// there is none.
func getWarehouse(ctx context.Context, q querier, code string) (Warehouse, error) {
	w, err := scanWarehouse(q.QueryRowContext(ctx, `SELECT `+warehouseCols+` FROM logistics_warehouses WHERE code = $1`, code))
	if isNoRows(err) {
		return Warehouse{}, errs.E("logistics.Warehouse", errs.NotFound, "no such warehouse")
	}
	if err != nil {
		return Warehouse{}, errs.E("logistics.Warehouse", errs.Internal, err)
	}
	return w, nil
}

// Warehouses lists the warehouses by code.
func (s *Service) Warehouses(ctx context.Context, page web.PageRequest) (web.Page[Warehouse], error) {
	const op = "logistics.Warehouses"
	var after string
	if _, err := page.After(&after); err != nil {
		return web.Page[Warehouse]{}, err
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+warehouseCols+` FROM logistics_warehouses WHERE code > $1 ORDER BY code LIMIT $2`,
		after, page.Limit+1)
	if err != nil {
		return web.Page[Warehouse]{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	var ws []Warehouse
	for rows.Next() {
		w, err := scanWarehouse(rows)
		if err != nil {
			return web.Page[Warehouse]{}, errs.E(op, errs.Internal, err)
		}
		ws = append(ws, w)
	}
	if err := rows.Err(); err != nil {
		return web.Page[Warehouse]{}, errs.E(op, errs.Internal, err)
	}
	return web.NewPage(ws, page.Limit, func(w Warehouse) any { return w.Code }), nil
}

// WarehouseUpdates lists the updates warehouse code got applied, newest
// first; NotFound for an unknown warehouse.
func (s *Service) WarehouseUpdates(ctx context.Context, code string, page web.PageRequest) (web.Page[WarehouseUpdateRecord], error) {
	const op = "logistics.WarehouseUpdates"
	type key struct {
		R int64  `json:"r"`
		U string `json:"u"`
	}
	if _, err := getWarehouse(ctx, s.db.Reader(), code); err != nil {
		return web.Page[WarehouseUpdateRecord]{}, err
	}
	q := `SELECT update_id, type, order_id, received_at FROM logistics_warehouse_updates WHERE warehouse = $1`
	args := []any{code}
	var k key
	if ok, err := page.After(&k); err != nil {
		return web.Page[WarehouseUpdateRecord]{}, err
	} else if ok {
		q += ` AND (received_at < $2 OR (received_at = $2 AND update_id < $3))`
		args = append(args, k.R, k.U)
	}
	q += fmt.Sprintf(` ORDER BY received_at DESC, update_id DESC LIMIT %d`, page.Limit+1)
	rows, err := s.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return web.Page[WarehouseUpdateRecord]{}, errs.E(op, errs.Internal, err)
	}
	defer rows.Close()
	var out []WarehouseUpdateRecord
	for rows.Next() {
		var u WarehouseUpdateRecord
		var at int64
		if err := rows.Scan(&u.UpdateID, &u.Type, &u.OrderID, &at); err != nil {
			return web.Page[WarehouseUpdateRecord]{}, errs.E(op, errs.Internal, err)
		}
		u.ReceivedAt = sqldb.FromMicros(at)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return web.Page[WarehouseUpdateRecord]{}, errs.E(op, errs.Internal, err)
	}
	return web.NewPage(out, page.Limit, func(u WarehouseUpdateRecord) any { return key{sqldb.Micros(u.ReceivedAt), u.UpdateID} }), nil
}

// warehouseKeys returns the HMAC keys warehouse code's updates may be
// signed with now: its secret's, and its previous one's during the
// rotation window. NotFound for an unknown warehouse.
func (s *Service) warehouseKeys(ctx context.Context, code string) (Warehouse, [][]byte, error) {
	const op = "logistics.WarehouseUpdate"
	seal, err := s.sealer(op)
	if err != nil {
		return Warehouse{}, nil, err
	}
	var w Warehouse
	var cur string
	var prev sql.NullString
	var until sql.NullInt64
	var created, updated int64
	err = s.db.Reader().QueryRowContext(ctx, `SELECT code, name, location, created_at, updated_at, secret_sealed, previous_secret_sealed, previous_until
		FROM logistics_warehouses WHERE code = $1`, code).Scan(&w.Code, &w.Name, &w.Location, &created, &updated, &cur, &prev, &until)
	if isNoRows(err) {
		return Warehouse{}, nil, errs.E(op, errs.NotFound, "no such warehouse")
	}
	if err != nil {
		return Warehouse{}, nil, errs.E(op, errs.Internal, err)
	}
	w.CreatedAt, w.UpdatedAt = sqldb.FromMicros(created), sqldb.FromMicros(updated)
	sealed := []string{cur}
	if prev.Valid && until.Valid && s.db.Now().Before(sqldb.FromMicros(until.Int64)) {
		sealed = append(sealed, prev.String)
	}
	var keys [][]byte
	for _, v := range sealed {
		plain, err := seal.Open(code, v)
		if err != nil {
			return Warehouse{}, nil, errs.E(op, errs.Internal, err)
		}
		k, err := warehouseKey(string(plain))
		if err != nil {
			return Warehouse{}, nil, errs.E(op, errs.Internal, err)
		}
		keys = append(keys, k)
	}
	return w, keys, nil
}

func (s *Service) warehouseRoutes() []web.Route {
	const tag = "logistics"
	manage := web.Permission(PermWarehousesManage)
	return []web.Route{
		{Method: "POST", Path: "/api/v1/admin/warehouses", Summary: "Register a warehouse that posts signed updates", Tag: tag, Access: manage,
			Description: "Answers the warehouse's signing secret (`whsec_…`) this once; it is kept sealed. 409 `warehouse_exists`; 422 for an unknown inventory location.",
			Request:     WarehouseRequest{}, Response: Warehouse{}, Status: http.StatusCreated, Handler: s.handleCreateWarehouse},
		{Method: "GET", Path: "/api/v1/admin/warehouses", Summary: "The registered warehouses, by code", Tag: tag, Access: manage,
			Query: []string{"limit", "cursor"}, Response: web.Page[Warehouse]{}, Handler: s.handleWarehouses},
		{Method: "GET", Path: "/api/v1/admin/warehouses/{code}", Summary: "A warehouse", Tag: tag, Access: manage,
			Response: Warehouse{}, Handler: s.handleWarehouse},
		{Method: "POST", Path: "/api/v1/admin/warehouses/{code}/rotate-secret", Summary: "Give a warehouse a new signing secret", Tag: tag, Access: manage,
			Description: "Answers the new secret this once; the previous one still verifies for 24 hours.",
			Response:    Warehouse{}, Handler: s.handleRotateWarehouse},
		{Method: "GET", Path: "/api/v1/admin/warehouses/{code}/updates", Summary: "The updates a warehouse got applied, newest first", Tag: tag, Access: manage,
			Query: []string{"limit", "cursor"}, Response: web.Page[WarehouseUpdateRecord]{}, Handler: s.handleWarehouseUpdates},
		{Method: "POST", Path: "/api/v1/logistics/warehouses/{code}/updates", Summary: "A warehouse's signed status update", Tag: tag, Access: web.Public,
			Description: "Signed as a Standard Webhooks message with the warehouse's secret: `webhook-id` (the update's id, 1–100 of `A-Za-z0-9._:-`), " +
				"`webhook-timestamp` (unix seconds, within 5 minutes) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`). " +
				"A signature that does not verify is 400 `invalid_signature` and changes nothing. `type` is `picked`, `packed`, `shipped` " +
				"(with `carrier`, `tracking_number` and optional `lines`), `stock_received` (`lines` of `sku`, `quantity`) or `stock_adjusted` " +
				"(`lines` of `sku`, `on_hand`, the count at the warehouse's location). An unknown order or a SKU not in it is 422; more units " +
				"than are left to ship 409 `already_shipped`; an order that is not paid 409 `invalid_transition`. The same update id again " +
				"is answered as the first time and changes nothing.",
			Request: WarehouseUpdate{}, Response: WarehouseUpdateResult{}, Handler: s.handleWarehouseUpdate},
	}
}

func (s *Service) handleCreateWarehouse(w http.ResponseWriter, r *http.Request) {
	var in WarehouseRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	by := staffID(r)
	s.commit(w, r, http.StatusCreated, func(ctx context.Context) error { return s.checkWarehouse(ctx, in) },
		func(ctx context.Context, tx *sqldb.Tx) (any, error) { return s.CreateWarehouseTx(ctx, tx, in, by) })
}

func (s *Service) handleWarehouses(w http.ResponseWriter, r *http.Request) {
	p, err := web.PageParams(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	page, err := s.Warehouses(r.Context(), p)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, page)
}

func (s *Service) handleWarehouse(w http.ResponseWriter, r *http.Request) {
	wh, err := getWarehouse(r.Context(), s.db.Reader(), r.PathValue("code"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, wh)
}

func (s *Service) handleRotateWarehouse(w http.ResponseWriter, r *http.Request) {
	code, by := r.PathValue("code"), staffID(r)
	s.commit(w, r, http.StatusOK, nil, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return s.RotateWarehouseSecretTx(ctx, tx, code, by)
	})
}

func (s *Service) handleWarehouseUpdates(w http.ResponseWriter, r *http.Request) {
	p, err := web.PageParams(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	page, err := s.WarehouseUpdates(r.Context(), r.PathValue("code"), p)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, page)
}
