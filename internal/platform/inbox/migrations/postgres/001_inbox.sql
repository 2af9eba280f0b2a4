-- Consumers' exactly-once bookkeeping. Every table is keyed by consumer
-- name; a consumer's batch transaction writes its rows together with the
-- handler's effects.

-- Events a consumer has applied: a redelivered event finds its row here.
CREATE TABLE inbox (
    consumer     TEXT   NOT NULL,
    event_id     TEXT   NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);

-- The last sequence a consumer applied (or parked) per aggregate.
CREATE TABLE consumer_positions (
    consumer       TEXT   NOT NULL,
    aggregate_type TEXT   NOT NULL,
    aggregate_id   TEXT   NOT NULL,
    last_sequence  BIGINT NOT NULL,
    PRIMARY KEY (consumer, aggregate_type, aggregate_id)
);

-- Events whose handler failed and that are being retried.
CREATE TABLE consumer_failures (
    consumer        TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    aggregate_type  TEXT    NOT NULL,
    aggregate_id    TEXT    NOT NULL,
    sequence        BIGINT  NOT NULL,
    attempts        INTEGER NOT NULL,
    last_error      TEXT    NOT NULL,
    first_failed_at BIGINT  NOT NULL,
    last_failed_at  BIGINT  NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX consumer_failures_aggregate ON consumer_failures (consumer, aggregate_type, aggregate_id);

-- Events parked after their last attempt, replayable by staff.
CREATE TABLE dead_letters (
    id         BIGSERIAL PRIMARY KEY,
    consumer   TEXT    NOT NULL,
    event_id   TEXT    NOT NULL,
    envelope   TEXT    NOT NULL,
    attempts   INTEGER NOT NULL,
    last_error TEXT    NOT NULL,
    parked_at  BIGINT  NOT NULL,
    UNIQUE (consumer, event_id)
);

-- Per-consumer counters for the sync monitor.
CREATE TABLE consumer_stats (
    consumer          TEXT   PRIMARY KEY,
    processed         BIGINT NOT NULL DEFAULT 0,
    failed            BIGINT NOT NULL DEFAULT 0,
    last_processed_at BIGINT,
    last_occurred_at  BIGINT
);
