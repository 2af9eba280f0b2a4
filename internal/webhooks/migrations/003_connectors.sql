-- Connectors (issue #18): an endpoint of another kind than 'webhook' — an
-- http_json POST of a mapped body or a file_drop into rotated files — that
-- shares the deliveries, attempts, retries, dead letters and monitor of
-- webhooks. config is the kind's settings as JSON (the mapping template,
-- the file name and format, the rotation); headers_sealed the http_json
-- connector's static headers, sealed like the secret (they may carry
-- credentials). A file_drop connector's url is 'file:<name>'.
ALTER TABLE webhooks_endpoints ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook'
	CHECK (kind IN ('webhook', 'http_json', 'file_drop'));
ALTER TABLE webhooks_endpoints ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks_endpoints ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
ALTER TABLE webhooks_endpoints ADD COLUMN headers_sealed TEXT NOT NULL DEFAULT '';
-- The sales channels whose orders' events the endpoint receives; '[]' is
-- every event its filters select.
ALTER TABLE webhooks_endpoints ADD COLUMN channels TEXT NOT NULL DEFAULT '[]';
-- Two file_drop connectors never share a directory.
CREATE UNIQUE INDEX webhooks_endpoints_file ON webhooks_endpoints (url) WHERE kind = 'file_drop';

-- The channel of every order not placed on the web shop, learnt from its
-- order.placed event, so that an endpoint can select by channel the events
-- of an order that do not name it (order.paid, order.shipped, …).
CREATE TABLE webhooks_order_channels (
	order_id   TEXT PRIMARY KEY,
	channel    TEXT NOT NULL,
	created_at BIGINT NOT NULL
);

-- Replays of the retained outbox to one endpoint since a point in time,
-- for the audit and the answer; deliveries a replay re-recorded name it.
CREATE TABLE webhooks_replays (
	id           TEXT PRIMARY KEY,
	endpoint_id  TEXT NOT NULL,
	since        BIGINT NOT NULL,
	scanned      INTEGER NOT NULL,
	recorded     INTEGER NOT NULL,
	requested_by TEXT NOT NULL,
	created_at   BIGINT NOT NULL
);
ALTER TABLE webhooks_deliveries ADD COLUMN replay_id TEXT NOT NULL DEFAULT '';
