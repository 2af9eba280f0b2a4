-- inventory: locations, stock per SKU per location, the ledger of every
-- change, reservations of order references, flash-sale guards and the
-- per-customer purchase counters the guards cap. Times are unix
-- microseconds. The CHECK constraints are the module's invariants: no
-- negative stock, nothing reserved beyond what is on hand.
CREATE TABLE inventory_locations (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO inventory_locations (code, name, created_at) VALUES ('default', 'Default location', 0);

CREATE TABLE inventory_stock (
    sku        TEXT NOT NULL,
    location   TEXT NOT NULL REFERENCES inventory_locations (code),
    on_hand    BIGINT NOT NULL CHECK (on_hand >= 0),
    reserved   BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    updated_at BIGINT NOT NULL,
    CHECK (on_hand - reserved >= 0),
    PRIMARY KEY (sku, location)
);

-- Guards and the low-stock threshold of a SKU; a SKU without a row has none.
CREATE TABLE inventory_guards (
    sku                 TEXT PRIMARY KEY,
    per_customer_limit  BIGINT CHECK (per_customer_limit > 0),
    sale_starts_at      BIGINT,
    sale_ends_at        BIGINT,
    low_stock_threshold BIGINT CHECK (low_stock_threshold > 0),
    updated_at          BIGINT NOT NULL,
    CHECK (sale_starts_at IS NULL OR sale_ends_at IS NULL OR sale_ends_at > sale_starts_at)
);

CREATE TABLE inventory_ledger (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku            TEXT NOT NULL,
    location       TEXT NOT NULL,
    reason         TEXT NOT NULL CHECK (reason IN ('receipt', 'adjustment', 'reservation', 'release', 'commit', 'return')),
    reference      TEXT NOT NULL,
    on_hand_delta  BIGINT NOT NULL,
    reserved_delta BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX inventory_ledger_sku ON inventory_ledger (sku, id);

CREATE TABLE inventory_reservations (
    ref         TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('reserved', 'committed', 'released')),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX inventory_reservations_expiry ON inventory_reservations (status, expires_at);
CREATE INDEX inventory_reservations_customer ON inventory_reservations (customer_id);

CREATE TABLE inventory_reservation_lines (
    ref      TEXT NOT NULL REFERENCES inventory_reservations (ref),
    sku      TEXT NOT NULL,
    location TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    counted  INTEGER NOT NULL DEFAULT 0, -- 1: counted in inventory_customer_units
    PRIMARY KEY (ref, sku, location)
);

-- Units of a SKU a customer holds reserved or committed, for the guard's
-- per-customer cap: personal data (exported, erased).
CREATE TABLE inventory_customer_units (
    customer_id TEXT NOT NULL,
    sku         TEXT NOT NULL,
    units       BIGINT NOT NULL CHECK (units >= 0),
    PRIMARY KEY (customer_id, sku)
);
