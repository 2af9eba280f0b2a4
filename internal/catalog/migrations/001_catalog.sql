-- The catalog: categories (a tree), products, their variants (SKU unique
-- across the shop), categories and channels. Shared by both engines.
CREATE TABLE catalog_categories (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    parent_id  TEXT REFERENCES catalog_categories (id),
    version    BIGINT NOT NULL CHECK (version >= 1),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK (parent_id IS NULL OR parent_id <> id)
);
CREATE INDEX catalog_categories_parent ON catalog_categories (parent_id);

CREATE TABLE catalog_products (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('draft', 'active', 'archived')),
    tax_class   TEXT NOT NULL,
    currency    TEXT NOT NULL CHECK (length(currency) = 3),
    price_min   BIGINT NOT NULL CHECK (price_min >= 0),
    price_max   BIGINT NOT NULL CHECK (price_max >= price_min),
    media       TEXT NOT NULL,
    version     BIGINT NOT NULL CHECK (version >= 1),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX catalog_products_status ON catalog_products (status, id);

CREATE TABLE catalog_variants (
    id                TEXT PRIMARY KEY,
    product_id        TEXT NOT NULL REFERENCES catalog_products (id),
    sku               TEXT NOT NULL,
    title             TEXT NOT NULL,
    price_amount      BIGINT NOT NULL CHECK (price_amount >= 0),
    compare_at_amount BIGINT CHECK (compare_at_amount IS NULL OR compare_at_amount >= 0),
    weight_grams      BIGINT NOT NULL CHECK (weight_grams >= 0),
    attributes        TEXT NOT NULL,
    position          INTEGER NOT NULL
);
-- The unique index decides a SKU's owner, also under racing creates.
CREATE UNIQUE INDEX catalog_variants_sku ON catalog_variants (sku);
CREATE INDEX catalog_variants_product ON catalog_variants (product_id, position);

CREATE TABLE catalog_product_categories (
    product_id  TEXT NOT NULL REFERENCES catalog_products (id),
    category_id TEXT NOT NULL REFERENCES catalog_categories (id),
    PRIMARY KEY (product_id, category_id)
);
CREATE INDEX catalog_product_categories_category ON catalog_product_categories (category_id);

CREATE TABLE catalog_product_channels (
    product_id TEXT NOT NULL REFERENCES catalog_products (id),
    channel    TEXT NOT NULL,
    PRIMARY KEY (product_id, channel)
);
CREATE INDEX catalog_product_channels_channel ON catalog_product_channels (channel);
