-- The audit log of staff actions. Append-only: the triggers refuse every
-- UPDATE and DELETE (the package offers neither).
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,      -- UUIDv7
    actor_id    TEXT NOT NULL,         -- user id, or "system"
    action      TEXT NOT NULL,         -- e.g. user.mfa_enabled
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    ip          TEXT NOT NULL,
    before_json TEXT,                  -- NULL: no before state
    after_json  TEXT,
    created_at  BIGINT NOT NULL,       -- unix microseconds (the transaction's Now)
    request_id  TEXT NOT NULL
);

-- Newest first, overall and per filter; id breaks ties in created_at.
CREATE INDEX audit_log_created ON audit_log (created_at, id);
CREATE INDEX audit_log_actor ON audit_log (actor_id, created_at, id);
CREATE INDEX audit_log_action ON audit_log (action, created_at, id);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, created_at, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
