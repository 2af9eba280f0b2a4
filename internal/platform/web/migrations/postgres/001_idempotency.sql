-- Idempotency records: the first recorded answer to a caller's key, written
-- in the transaction of the request's effect. created_at is unix microseconds.
CREATE TABLE idempotency_keys (
    scope        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    content_type TEXT    NOT NULL,
    body         BYTEA   NOT NULL,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
