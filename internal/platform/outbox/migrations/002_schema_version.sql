-- The payload's schema version (event.Envelope.SchemaVersion); rows written
-- before it existed are version 1.
ALTER TABLE outbox ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 1;
