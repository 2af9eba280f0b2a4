-- Sales channels: where orders come from. code is the stable name tokens
-- and orders carry; 'web' (the shop itself) always exists.
CREATE TABLE channels_channels (
    code       TEXT    PRIMARY KEY CHECK (length(code) BETWEEN 1 AND 40),
    name       TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind       TEXT    NOT NULL CHECK (kind IN ('web', 'app', 'pos', 'marketplace')),
    created_at BIGINT  NOT NULL
);
INSERT INTO channels_channels (code, name, kind, created_at) VALUES ('web', 'Web shop', 'web', 0);

-- One row per imported order: the unique key of (channel, external_id), so
-- that a channel's order is imported once however often it is sent. The
-- import claims its key first (order_id NULL) and sets order_id in the
-- same unit; customer_* are the buyer as the channel named them.
CREATE TABLE channels_imports (
    channel        TEXT    NOT NULL REFERENCES channels_channels (code),
    external_id    TEXT    NOT NULL CHECK (length(external_id) BETWEEN 1 AND 100),
    order_id       TEXT    UNIQUE,
    customer_email TEXT    NOT NULL,
    customer_name  TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    PRIMARY KEY (channel, external_id)
);

-- Optional per-channel caps on the units of a SKU reserved through the
-- channel (from the shared pool): reserved counts up, conditionally.
CREATE TABLE channels_quotas (
    channel    TEXT    NOT NULL REFERENCES channels_channels (code),
    sku        TEXT    NOT NULL,
    units      BIGINT  NOT NULL CHECK (units >= 0),
    reserved   BIGINT  NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= units),
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (channel, sku)
);
