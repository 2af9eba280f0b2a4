-- The test double of inventory: stock per SKU, taken by a conditional
-- UPDATE, and one reservation row per order (tests only).
CREATE TABLE orderstest_stock (
    sku       TEXT    PRIMARY KEY,
    available INTEGER NOT NULL CHECK (available >= 0)
);
CREATE TABLE orderstest_reservations (
    ref         TEXT   PRIMARY KEY,
    customer_id TEXT,
    lines       TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL
);
