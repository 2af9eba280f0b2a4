-- The outbox: every domain event, appended in the transaction that changed
-- state, relayed to the bus, kept after publication for the retention period.
CREATE TABLE outbox (
    id             BIGSERIAL PRIMARY KEY,
    event_id       TEXT    NOT NULL UNIQUE,
    type           TEXT    NOT NULL,
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    sequence       BIGINT  NOT NULL,
    occurred_at    BIGINT  NOT NULL,
    data           TEXT    NOT NULL,
    published_at   BIGINT
);
-- What the relay reads: unpublished rows in id order.
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
-- What re-publishing the tail and pruning read.
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- The last sequence given to each aggregate; never pruned.
CREATE TABLE outbox_sequences (
    aggregate_type TEXT   NOT NULL,
    aggregate_id   TEXT   NOT NULL,
    last_sequence  BIGINT NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- Whether the relay that ran last stopped cleanly (one row, name 'relay').
CREATE TABLE outbox_relay_state (
    name       TEXT    PRIMARY KEY,
    owner      TEXT    NOT NULL,
    running    INTEGER NOT NULL,
    started_at BIGINT  NOT NULL,
    stopped_at BIGINT
);
