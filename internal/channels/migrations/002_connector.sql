-- The connector (a webhooks-module connector id) that carries the status
-- of the channel's orders back to it; '' for none.
ALTER TABLE channels_channels ADD COLUMN connector_id TEXT NOT NULL DEFAULT '';
