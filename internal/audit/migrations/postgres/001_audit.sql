-- The audit log of staff actions. Append-only: the triggers refuse every
-- UPDATE, DELETE and TRUNCATE (the package offers none of them).
CREATE TABLE audit_log (
    id          TEXT COLLATE "C" PRIMARY KEY, -- UUIDv7; byte order, so ties in created_at page by id
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

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
