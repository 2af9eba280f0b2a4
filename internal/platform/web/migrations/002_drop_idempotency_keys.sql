-- The idempotency records moved to package idem (idempotency_records), where
-- nothing is kept in plain text. This table held answers (bearer tokens,
-- recovery codes) and unsalted body digests in the clear: its keys are
-- short-lived, so it is dropped rather than converted.
DROP TABLE idempotency_keys;
