-- The sync monitor's per-order view finds an event's deliveries by its id.
CREATE INDEX webhooks_deliveries_event ON webhooks_deliveries (event_id);
