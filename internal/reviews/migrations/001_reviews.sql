-- reviews: customers' product reviews and each product's rating. One text
-- for both engines. Times are unix microseconds; booleans 0/1.
CREATE TABLE reviews_reviews (
    id                TEXT PRIMARY KEY,            -- UUIDv7
    product_id        TEXT NOT NULL,
    customer_id       TEXT NOT NULL,               -- the author (accounts user id); no name is copied
    rating            INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title             TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 120),
    body              TEXT NOT NULL CHECK (length(body) <= 5000),
    verified_purchase INTEGER NOT NULL CHECK (verified_purchase IN (0, 1)),
    status            TEXT NOT NULL CHECK (status IN ('visible', 'hidden')),
    hidden_reason     TEXT NOT NULL DEFAULT '' CHECK (length(hidden_reason) <= 500),
    moderated_by      TEXT NOT NULL DEFAULT '',    -- the staff member who last hid or restored it
    moderated_at      BIGINT NOT NULL DEFAULT 0,   -- 0: never moderated
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    CHECK ((status = 'hidden') = (hidden_reason <> ''))
);
-- One review per customer per product: this index decides racing duplicates.
CREATE UNIQUE INDEX reviews_reviews_author ON reviews_reviews (product_id, customer_id);
-- A product's reviews of one status, newest first (the public list).
CREATE INDEX reviews_reviews_product ON reviews_reviews (product_id, status, created_at, id);
-- Every product's reviews, newest first, by status (the staff list).
CREATE INDEX reviews_reviews_status ON reviews_reviews (status, created_at, id);
CREATE INDEX reviews_reviews_created ON reviews_reviews (created_at, id);
-- A customer's reviews (export, erasure).
CREATE INDEX reviews_reviews_customer ON reviews_reviews (customer_id);

-- Each product's rating over its visible reviews, kept in the unit of every
-- change by one conditional statement. A product without visible reviews
-- may have a row with count 0.
CREATE TABLE reviews_ratings (
    product_id TEXT PRIMARY KEY,
    count      BIGINT NOT NULL CHECK (count >= 0),
    sum        BIGINT NOT NULL CHECK (sum >= count AND sum <= 5 * count),
    updated_at BIGINT NOT NULL
);
