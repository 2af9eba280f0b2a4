-- logistics: fulfilments of paid orders with their pick lists, shipments
-- and their lines, one normalised tracking timeline per shipment, and
-- returns (RMA) with their lines. Times are unix microseconds. The CHECK
-- constraints are the module's invariants: never more shipped than
-- ordered, never more returned than shipped.
CREATE TABLE logistics_fulfilments (
    order_id     TEXT PRIMARY KEY,
    status       TEXT NOT NULL CHECK (status IN ('open', 'shipped', 'delivered', 'completed')),
    currency     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX logistics_fulfilments_delivered ON logistics_fulfilments (status, delivered_at);

-- What each order line asks for and how much of it has left.
CREATE TABLE logistics_order_lines (
    order_id   TEXT NOT NULL,
    sku        TEXT NOT NULL,
    quantity   BIGINT NOT NULL CHECK (quantity > 0),
    unit_price BIGINT NOT NULL CHECK (unit_price >= 0),
    shipped    BIGINT NOT NULL DEFAULT 0 CHECK (shipped >= 0 AND shipped <= quantity),
    returned   BIGINT NOT NULL DEFAULT 0 CHECK (returned >= 0 AND returned <= shipped),
    PRIMARY KEY (order_id, sku)
);

-- Where to pick each SKU: the locations inventory reserved it at.
CREATE TABLE logistics_pick_lines (
    order_id TEXT NOT NULL,
    location TEXT NOT NULL,
    sku      TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, location, sku)
);

CREATE TABLE logistics_shipments (
    id              TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL,
    carrier         TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('label_created', 'picked_up', 'in_transit', 'out_for_delivery',
                                                    'delivery_attempted', 'delayed', 'delivered')),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    UNIQUE (carrier, tracking_number)
);
CREATE INDEX logistics_shipments_order ON logistics_shipments (order_id, created_at);
CREATE INDEX logistics_shipments_status ON logistics_shipments (status, created_at);

CREATE TABLE logistics_shipment_lines (
    shipment_id TEXT NOT NULL REFERENCES logistics_shipments (id),
    sku         TEXT NOT NULL,
    quantity    BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (shipment_id, sku)
);

-- The normalised timeline; source_id is the carrier's event id, kept once.
CREATE TABLE logistics_tracking_events (
    shipment_id TEXT NOT NULL REFERENCES logistics_shipments (id),
    seq         BIGINT NOT NULL,
    source_id   TEXT NOT NULL,
    status      TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    location    TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (shipment_id, seq),
    UNIQUE (shipment_id, source_id)
);

CREATE TABLE logistics_returns (
    id          TEXT PRIMARY KEY,
    order_id    TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('requested', 'approved', 'rejected', 'received')),
    reason      TEXT NOT NULL,
    note        TEXT NOT NULL DEFAULT '',
    currency    TEXT NOT NULL,
    refund      BIGINT NOT NULL DEFAULT 0 CHECK (refund >= 0),
    decided_by  TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX logistics_returns_order ON logistics_returns (order_id, created_at);
CREATE INDEX logistics_returns_status ON logistics_returns (status, created_at);

CREATE TABLE logistics_return_lines (
    return_id   TEXT NOT NULL REFERENCES logistics_returns (id),
    sku         TEXT NOT NULL,
    quantity    BIGINT NOT NULL CHECK (quantity > 0),
    unit_price  BIGINT NOT NULL CHECK (unit_price >= 0),
    disposition TEXT NOT NULL DEFAULT '' CHECK (disposition IN ('', 'restock', 'write_off')),
    location    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (return_id, sku)
);
