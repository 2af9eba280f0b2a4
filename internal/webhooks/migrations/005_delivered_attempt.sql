-- A delivered delivery's successful try moves from its attempt row into the
-- delivery row (004): the last attempt of each delivered delivery.
UPDATE webhooks_deliveries SET
	last_latency_us = COALESCE((SELECT a.latency_us FROM webhooks_attempts a
		WHERE a.delivery_id = webhooks_deliveries.id ORDER BY a.id DESC LIMIT 1), 0),
	last_response = COALESCE((SELECT a.response FROM webhooks_attempts a
		WHERE a.delivery_id = webhooks_deliveries.id ORDER BY a.id DESC LIMIT 1), '')
WHERE status = 'delivered';
DELETE FROM webhooks_attempts WHERE id IN (SELECT MAX(a.id) FROM webhooks_attempts a
	JOIN webhooks_deliveries d ON d.id = a.delivery_id WHERE d.status = 'delivered' GROUP BY a.delivery_id);
