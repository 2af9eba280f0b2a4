-- The rates module: the shipping table and the tax table as versioned
-- documents. The current table is the one of the highest version; older
-- versions are kept (orders record the versions they were priced with).

CREATE TABLE rates_shipping_tables (
    version    BIGINT PRIMARY KEY CHECK (version >= 1),
    currency   TEXT NOT NULL,
    doc        TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE rates_tax_tables (
    version    BIGINT PRIMARY KEY CHECK (version >= 1),
    doc        TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
