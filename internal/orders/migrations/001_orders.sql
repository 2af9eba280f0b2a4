-- Carts: a signed-in customer's (customer_id) or a guest's (token_hash, the
-- SHA-256 of the cart token, hex). status open → checked_out once.
CREATE TABLE orders_carts (
    id          TEXT    PRIMARY KEY,
    customer_id TEXT,
    token_hash  TEXT    UNIQUE,
    currency    TEXT,
    status      TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'checked_out')),
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    CHECK (customer_id IS NOT NULL OR token_hash IS NOT NULL)
);
CREATE INDEX orders_carts_customer ON orders_carts (customer_id) WHERE customer_id IS NOT NULL;

-- A cart's lines: a SKU and a quantity; prices are never stored here.
CREATE TABLE orders_cart_lines (
    cart_id  TEXT    NOT NULL REFERENCES orders_carts (id),
    sku      TEXT    NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    added_at BIGINT  NOT NULL,
    PRIMARY KEY (cart_id, sku)
);

-- Orders. version is the optimistic-concurrency counter every transition
-- bumps; amounts are minor units of currency.
CREATE TABLE orders_orders (
    id                 TEXT    PRIMARY KEY,
    number             TEXT    NOT NULL UNIQUE,
    cart_id            TEXT    NOT NULL UNIQUE,
    customer_id        TEXT,
    token_hash         TEXT,
    channel            TEXT    NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN ('pending_payment', 'paid', 'partially_shipped',
        'shipped', 'delivered', 'completed', 'cancelled', 'expired', 'return_requested', 'returned')),
    payment_status     TEXT    NOT NULL CHECK (payment_status IN ('unpaid', 'paid', 'partially_refunded', 'refunded')),
    fulfillment_status TEXT    NOT NULL CHECK (fulfillment_status IN ('unfulfilled', 'partially_shipped',
        'shipped', 'delivered', 'returned')),
    currency           TEXT    NOT NULL,
    subtotal           BIGINT  NOT NULL CHECK (subtotal >= 0),
    discount           BIGINT  NOT NULL CHECK (discount >= 0),
    shipping           BIGINT  NOT NULL CHECK (shipping >= 0),
    tax                BIGINT  NOT NULL CHECK (tax >= 0),
    total              BIGINT  NOT NULL CHECK (total >= 0 AND total = subtotal - discount + shipping + tax),
    shipping_method    TEXT    NOT NULL,
    shipping_address   TEXT    NOT NULL,
    version            BIGINT  NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    expires_at         BIGINT,
    CHECK (customer_id IS NOT NULL OR token_hash IS NOT NULL)
);
CREATE INDEX orders_orders_customer ON orders_orders (customer_id, created_at, id);
CREATE INDEX orders_orders_created ON orders_orders (created_at, id);
CREATE INDEX orders_orders_expiry ON orders_orders (expires_at) WHERE status = 'pending_payment';

-- An order's lines as priced at checkout, with the quote's breakdown (JSON).
CREATE TABLE orders_lines (
    order_id   TEXT    NOT NULL REFERENCES orders_orders (id),
    line_no    INTEGER NOT NULL CHECK (line_no >= 1),
    sku        TEXT    NOT NULL,
    product_id TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    unit_price BIGINT  NOT NULL CHECK (unit_price >= 0),
    total      BIGINT  NOT NULL CHECK (total >= 0),
    breakdown  TEXT    NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

-- An order's timeline: every event the order emitted, written in the unit
-- that appended it to the outbox (which is pruned; this is not).
CREATE TABLE orders_timeline (
    order_id    TEXT    NOT NULL REFERENCES orders_orders (id),
    seq         BIGINT  NOT NULL,
    event_id    TEXT    NOT NULL UNIQUE,
    type        TEXT    NOT NULL,
    occurred_at BIGINT  NOT NULL,
    data        TEXT    NOT NULL,
    PRIMARY KEY (order_id, seq)
);
