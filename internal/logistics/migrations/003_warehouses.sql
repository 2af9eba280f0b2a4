-- Warehouses that post signed status updates (picked, packed, shipped,
-- stock received or counted at their location). Each signs with a secret
-- kept sealed (AES-256-GCM under a key derived from the server secret,
-- bound to the warehouse code), never in plain text; after a rotation the
-- previous one still verifies until previous_until.
CREATE TABLE logistics_warehouses (
    code                   TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    location               TEXT NOT NULL,
    secret_sealed          TEXT NOT NULL,
    previous_secret_sealed TEXT,
    previous_until         BIGINT,
    created_by             TEXT NOT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);

-- Every update a warehouse got applied, by its id, with the answer it got:
-- a redelivery finds it here for as long as the warehouse exists, after the
-- idempotency record has been pruned.
CREATE TABLE logistics_warehouse_updates (
    warehouse   TEXT NOT NULL,
    update_id   TEXT NOT NULL,
    type        TEXT NOT NULL,
    order_id    TEXT NOT NULL DEFAULT '',
    answer      TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (warehouse, update_id)
);
CREATE INDEX logistics_warehouse_updates_received ON logistics_warehouse_updates (warehouse, received_at);

-- A fulfilment's progress as its warehouse reports it.
ALTER TABLE logistics_fulfilments ADD COLUMN warehouse TEXT NOT NULL DEFAULT '';
ALTER TABLE logistics_fulfilments ADD COLUMN picked_at BIGINT;
ALTER TABLE logistics_fulfilments ADD COLUMN packed_at BIGINT;
