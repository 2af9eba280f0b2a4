-- A delivery knows whether its endpoint is fifo (kept in step when staff
-- change the endpoint), so that the per-aggregate index, which only the
-- fifo check reads, holds only fifo endpoints' undelivered rows: a
-- delivery to any other endpoint writes one index entry fewer, and its
-- settling removes one fewer.
ALTER TABLE webhooks_deliveries ADD COLUMN fifo INTEGER NOT NULL DEFAULT 0 CHECK (fifo IN (0, 1));
UPDATE webhooks_deliveries SET fifo = 1 WHERE endpoint_id IN (SELECT id FROM webhooks_endpoints WHERE fifo = 1);
DROP INDEX webhooks_deliveries_aggregate;
CREATE INDEX webhooks_deliveries_aggregate ON webhooks_deliveries (endpoint_id, aggregate_type, aggregate_id, sequence)
	WHERE fifo = 1 AND status IN ('pending', 'delivering');
