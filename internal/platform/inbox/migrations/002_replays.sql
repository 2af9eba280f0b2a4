-- Replays of retained outbox events to one consumer (staff's "since a
-- point in time"): the window of outbox ids a replay covers, how far it
-- got, and who asked. At most one replay runs per consumer.
CREATE TABLE consumer_replays (
    id           TEXT    PRIMARY KEY,
    consumer     TEXT    NOT NULL,
    since        BIGINT  NOT NULL,
    until_id     BIGINT  NOT NULL,
    cursor_id    BIGINT  NOT NULL,
    queued       BIGINT  NOT NULL,
    replayed     BIGINT  NOT NULL DEFAULT 0,
    status       TEXT    NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',
    requested_by TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    finished_at  BIGINT
);
CREATE UNIQUE INDEX consumer_replays_running ON consumer_replays (consumer) WHERE status = 'running';
CREATE INDEX consumer_replays_created ON consumer_replays (created_at, id);
