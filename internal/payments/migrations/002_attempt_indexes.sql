-- Attempts are read by their intent (an order's payment with its attempts,
-- the 3-D Secure confirm, the data export): an index on intent_id, so that
-- those reads do not scan every attempt ever made.
CREATE INDEX payments_attempts_intent ON payments_attempts (intent_id);

-- Reconciliation looks for the attempts still pending (status = 'pending'
-- AND created_at <= cutoff): a partial index holds those alone. An attempt
-- leaves it once at its outcome, where the (status, created_at) index was
-- rewritten (a delete and an insert) at every status change and kept every
-- settled attempt.
DROP INDEX payments_attempts_pending;
CREATE INDEX payments_attempts_pending ON payments_attempts (created_at) WHERE status = 'pending';
