-- Fewer index writes per delivery (issue #18, the fan-out's writer time):
-- the per-event index and the (endpoint, event) uniqueness become ONE
-- unique index on (event_id, endpoint_id) (the consumer's ON CONFLICT and
-- the sync monitor's per-event lookup both use it); the per-aggregate index
-- only holds undelivered rows (the fifo check is all that reads it). A
-- delivered delivery's successful try is kept in its row (last_status,
-- last_latency_us, last_response, updated_at), not as an attempt row.
-- SQLite cannot drop a table's constraint: the table is rebuilt.
CREATE TABLE webhooks_deliveries_new (
	id              TEXT PRIMARY KEY,
	endpoint_id     TEXT NOT NULL,
	event_id        TEXT NOT NULL,
	event_type      TEXT NOT NULL,
	aggregate_type  TEXT NOT NULL,
	aggregate_id    TEXT NOT NULL,
	sequence        BIGINT NOT NULL,
	envelope        TEXT NOT NULL,
	status          TEXT NOT NULL CHECK (status IN ('pending', 'delivering', 'delivered', 'dead')),
	attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	next_at         BIGINT NOT NULL,
	last_status     INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	created_at      BIGINT NOT NULL,
	updated_at      BIGINT NOT NULL,
	replay_id       TEXT NOT NULL DEFAULT '',
	last_latency_us BIGINT NOT NULL DEFAULT 0 CHECK (last_latency_us >= 0),
	last_response   TEXT NOT NULL DEFAULT '' CHECK (length(last_response) <= 1024)
);
INSERT INTO webhooks_deliveries_new (id, endpoint_id, event_id, event_type, aggregate_type, aggregate_id, sequence,
	envelope, status, attempts, next_at, last_status, last_error, created_at, updated_at, replay_id)
SELECT id, endpoint_id, event_id, event_type, aggregate_type, aggregate_id, sequence,
	envelope, status, attempts, next_at, last_status, last_error, created_at, updated_at, replay_id
FROM webhooks_deliveries;
DROP TABLE webhooks_deliveries;
ALTER TABLE webhooks_deliveries_new RENAME TO webhooks_deliveries;
CREATE UNIQUE INDEX webhooks_deliveries_event ON webhooks_deliveries (event_id, endpoint_id);
CREATE INDEX webhooks_deliveries_due ON webhooks_deliveries (endpoint_id, next_at) WHERE status IN ('pending', 'delivering');
CREATE INDEX webhooks_deliveries_aggregate ON webhooks_deliveries (endpoint_id, aggregate_type, aggregate_id, sequence)
	WHERE status IN ('pending', 'delivering');
CREATE INDEX webhooks_deliveries_endpoint ON webhooks_deliveries (endpoint_id, id);
