-- The event's envelope once per event instead of once per delivery (issue
-- #18, the fan-out's writes): an event selected by N endpoints is one
-- webhooks_events row and N delivery rows without the envelope. The row is
-- kept while any delivery of the event is, and pruned after the last one
-- (webhooks.prune). customer_id is the customer the envelope's data names
-- ('' for none), so that an erasure finds the copies it must anonymise;
-- only the rows naming one are in its index.
CREATE TABLE webhooks_events (
	event_id    TEXT PRIMARY KEY,
	customer_id TEXT NOT NULL DEFAULT '',
	envelope    TEXT NOT NULL,
	created_at  BIGINT NOT NULL
);
CREATE INDEX webhooks_events_customer ON webhooks_events (customer_id) WHERE customer_id <> '';
INSERT INTO webhooks_events (event_id, customer_id, envelope, created_at)
SELECT event_id, COALESCE(MIN(envelope)::jsonb -> 'data' ->> 'customer_id', ''), MIN(envelope), MAX(created_at)
FROM webhooks_deliveries GROUP BY event_id;
ALTER TABLE webhooks_deliveries DROP COLUMN envelope;
