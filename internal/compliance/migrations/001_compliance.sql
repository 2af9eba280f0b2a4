-- The region rules, every save a new version (the whole document, JSON).
CREATE TABLE compliance_rules (
    version    BIGINT  PRIMARY KEY CHECK (version >= 1),
    doc        TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at BIGINT  NOT NULL
);

-- What each customer spent per region, currency and calendar year (UTC):
-- the contended counter of the per-year limits, written by conditional
-- updates only (spent + amount <= the limit).
CREATE TABLE compliance_spent (
    customer_id TEXT    NOT NULL,
    country     TEXT    NOT NULL,
    region      TEXT    NOT NULL,
    currency    TEXT    NOT NULL,
    year        INTEGER NOT NULL,
    spent       BIGINT  NOT NULL CHECK (spent >= 0),
    PRIMARY KEY (customer_id, country, region, currency, year)
);

-- Each order's share of a counter, given back once when the order is
-- cancelled or expires.
CREATE TABLE compliance_counts (
    order_id    TEXT    PRIMARY KEY,
    customer_id TEXT    NOT NULL,
    country     TEXT    NOT NULL,
    region      TEXT    NOT NULL,
    currency    TEXT    NOT NULL,
    year        INTEGER NOT NULL,
    amount      BIGINT  NOT NULL CHECK (amount > 0),
    released_at BIGINT
);
