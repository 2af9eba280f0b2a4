-- Fewer index writes per delivery (issue #18, the fan-out's writer time):
-- the per-event index and the (endpoint, event) uniqueness become ONE
-- unique index on (event_id, endpoint_id) (the consumer's ON CONFLICT and
-- the sync monitor's per-event lookup both use it); the per-aggregate index
-- only holds undelivered rows (the fifo check is all that reads it). A
-- delivered delivery's successful try is kept in its row (last_status,
-- last_latency_us, last_response, updated_at), not as an attempt row.
DROP INDEX webhooks_deliveries_event;
CREATE UNIQUE INDEX webhooks_deliveries_event ON webhooks_deliveries (event_id, endpoint_id);
ALTER TABLE webhooks_deliveries DROP CONSTRAINT webhooks_deliveries_endpoint_id_event_id_key;
DROP INDEX webhooks_deliveries_aggregate;
CREATE INDEX webhooks_deliveries_aggregate ON webhooks_deliveries (endpoint_id, aggregate_type, aggregate_id, sequence)
	WHERE status IN ('pending', 'delivering');
ALTER TABLE webhooks_deliveries ADD COLUMN last_latency_us BIGINT NOT NULL DEFAULT 0 CHECK (last_latency_us >= 0);
ALTER TABLE webhooks_deliveries ADD COLUMN last_response TEXT NOT NULL DEFAULT '' CHECK (length(last_response) <= 1024);
