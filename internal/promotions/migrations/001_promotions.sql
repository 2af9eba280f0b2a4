-- The promotions module: promotions and their versions, coupon codes, the
-- limit counters the checkout redeems against, and the redemptions.
-- One text for both engines. Times are microseconds since the epoch; 0 is
-- "none" for starts_at/ends_at.

CREATE TABLE promotions_promotions (
    id           TEXT PRIMARY KEY,
    version      BIGINT NOT NULL CHECK (version >= 1),
    status       TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    automatic    BOOLEAN NOT NULL,
    starts_at    BIGINT NOT NULL DEFAULT 0,
    ends_at      BIGINT NOT NULL DEFAULT 0,
    per_customer BIGINT CHECK (per_customer IS NULL OR per_customer >= 1),
    rule         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    CHECK (ends_at = 0 OR starts_at = 0 OR ends_at > starts_at)
);

CREATE INDEX promotions_promotions_automatic ON promotions_promotions (starts_at) WHERE automatic AND status = 'active';

-- Every version of every promotion as staff saved it; an order records the
-- version it was priced with.
CREATE TABLE promotions_versions (
    promotion_id TEXT NOT NULL REFERENCES promotions_promotions (id),
    version      BIGINT NOT NULL,
    status       TEXT NOT NULL,
    rule         TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (promotion_id, version)
);

-- Coupon codes, upper case: unique across all promotions, inactive ones too.
CREATE TABLE promotions_codes (
    code         TEXT PRIMARY KEY,
    promotion_id TEXT NOT NULL REFERENCES promotions_promotions (id)
);

CREATE INDEX promotions_codes_promotion ON promotions_codes (promotion_id);

-- The contended row of a promotion: its uses and the discount given, with
-- the limits they are held to (NULL: no limit). Written only by conditional
-- updates; the CHECKs are the last line.
CREATE TABLE promotions_counters (
    id       TEXT PRIMARY KEY REFERENCES promotions_promotions (id),
    uses     BIGINT NOT NULL DEFAULT 0 CHECK (uses >= 0),
    spent    BIGINT NOT NULL DEFAULT 0 CHECK (spent >= 0),
    max_uses BIGINT CHECK (max_uses IS NULL OR max_uses >= 1),
    budget   BIGINT CHECK (budget IS NULL OR budget >= 1),
    currency TEXT NOT NULL DEFAULT '',
    CHECK (max_uses IS NULL OR uses <= max_uses),
    CHECK (budget IS NULL OR spent <= budget)
);

-- One customer's uses of one promotion (personal data: erased with them).
CREATE TABLE promotions_customer_uses (
    promotion_id TEXT NOT NULL REFERENCES promotions_promotions (id),
    customer_id  TEXT NOT NULL,
    uses         BIGINT NOT NULL CHECK (uses >= 0),
    PRIMARY KEY (promotion_id, customer_id)
);

CREATE INDEX promotions_customer_uses_customer ON promotions_customer_uses (customer_id);

-- A promotion applied to an order. released_at is set when the unpaid order
-- was cancelled or expired and its use given back; an order holds at most
-- one unreleased redemption per promotion. customer_id is '' for a guest
-- and after the customer's erasure.
CREATE TABLE promotions_redemptions (
    id           TEXT PRIMARY KEY,
    order_ref    TEXT NOT NULL,
    promotion_id TEXT NOT NULL REFERENCES promotions_promotions (id),
    version      BIGINT NOT NULL,
    code         TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount >= 0),
    currency     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    released_at  BIGINT
);

CREATE UNIQUE INDEX promotions_redemptions_live ON promotions_redemptions (order_ref, promotion_id) WHERE released_at IS NULL;
CREATE INDEX promotions_redemptions_order ON promotions_redemptions (order_ref);
CREATE INDEX promotions_redemptions_customer ON promotions_redemptions (customer_id);
