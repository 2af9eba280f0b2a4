-- Idempotency records (package idem). Nothing here opens without the server
-- secret AND the request's own idempotency key: key_id and scope_id are
-- HMACs under the server secret, fingerprint an HMAC keyed by both, and
-- record the answer sealed with AES-256-GCM under a key derived from both.
-- created_at is unix microseconds.
CREATE TABLE idempotency_records (
    key_id      BYTEA NOT NULL PRIMARY KEY,
    scope_id    BYTEA NOT NULL,
    fingerprint BYTEA NOT NULL,
    record      BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX idempotency_records_scope ON idempotency_records (scope_id);
CREATE INDEX idempotency_records_created_at ON idempotency_records (created_at);
