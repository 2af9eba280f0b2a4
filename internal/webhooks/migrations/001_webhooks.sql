-- webhooks: endpoints staff registered, one delivery row per (endpoint,
-- event) and one row per delivery attempt. Times are unix microseconds.
-- Secrets are kept sealed (AES-256-GCM under a key derived from the server
-- secret), never in plain text. Booleans are 0/1 integers on both engines.
CREATE TABLE webhooks_endpoints (
	id                     TEXT PRIMARY KEY,
	url                    TEXT NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
	events                 TEXT NOT NULL,
	description            TEXT NOT NULL DEFAULT '',
	enabled                INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
	fifo                   INTEGER NOT NULL DEFAULT 0 CHECK (fifo IN (0, 1)),
	disabled_reason        TEXT NOT NULL DEFAULT '',
	secret_sealed          TEXT NOT NULL,
	previous_secret_sealed TEXT,
	previous_secret_until  BIGINT,
	created_by             TEXT NOT NULL,
	created_at             BIGINT NOT NULL,
	updated_at             BIGINT NOT NULL
);

CREATE TABLE webhooks_deliveries (
	id             TEXT PRIMARY KEY,
	endpoint_id    TEXT NOT NULL,
	event_id       TEXT NOT NULL,
	event_type     TEXT NOT NULL,
	aggregate_type TEXT NOT NULL,
	aggregate_id   TEXT NOT NULL,
	sequence       BIGINT NOT NULL,
	envelope       TEXT NOT NULL,
	status         TEXT NOT NULL CHECK (status IN ('pending', 'delivering', 'delivered', 'dead')),
	attempts       INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	next_at        BIGINT NOT NULL,
	last_status    INTEGER NOT NULL DEFAULT 0,
	last_error     TEXT NOT NULL DEFAULT '',
	created_at     BIGINT NOT NULL,
	updated_at     BIGINT NOT NULL,
	UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhooks_deliveries_due ON webhooks_deliveries (endpoint_id, next_at) WHERE status IN ('pending', 'delivering');
CREATE INDEX webhooks_deliveries_aggregate ON webhooks_deliveries (endpoint_id, aggregate_type, aggregate_id, sequence);
CREATE INDEX webhooks_deliveries_endpoint ON webhooks_deliveries (endpoint_id, id);

CREATE TABLE webhooks_attempts (
	id           TEXT PRIMARY KEY,
	delivery_id  TEXT NOT NULL,
	endpoint_id  TEXT NOT NULL,
	attempt      INTEGER NOT NULL CHECK (attempt >= 1),
	attempted_at BIGINT NOT NULL,
	status_code  INTEGER NOT NULL DEFAULT 0,
	latency_us   BIGINT NOT NULL CHECK (latency_us >= 0),
	response     TEXT NOT NULL DEFAULT '' CHECK (length(response) <= 1024),
	error        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhooks_attempts_delivery ON webhooks_attempts (delivery_id, id);
