-- A payment intent per order: what is owed (amount), what the provider
-- captured and what was refunded of it, in minor units of currency.
-- refunded never exceeds captured (CHECK; refunds are conditional writes).
-- customer_id is NULL for a guest's order and once the customer is erased.
CREATE TABLE payments_intents (
    id           TEXT    PRIMARY KEY,
    order_id     TEXT    NOT NULL UNIQUE,
    customer_id  TEXT,
    provider     TEXT    NOT NULL,
    provider_ref TEXT,
    currency     TEXT    NOT NULL,
    amount       BIGINT  NOT NULL CHECK (amount > 0),
    captured     BIGINT  NOT NULL DEFAULT 0 CHECK (captured >= 0 AND captured <= amount),
    refunded     BIGINT  NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= captured),
    status       TEXT    NOT NULL CHECK (status IN ('requires_action', 'authorized', 'captured', 'failed',
        'refunded', 'partially_refunded')),
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX payments_intents_customer ON payments_intents (customer_id) WHERE customer_id IS NOT NULL;

-- Attempts: one per pay request. An attempt is written (pending) in its own
-- unit BEFORE the provider is called, under the provider idempotency key it
-- sends, so that a crash between the provider's capture and our commit
-- leaves a pending attempt for payments.reconcile to settle.
CREATE TABLE payments_attempts (
    id           TEXT    PRIMARY KEY,
    intent_id    TEXT    NOT NULL REFERENCES payments_intents (id),
    provider_key TEXT    NOT NULL UNIQUE,
    token        TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'requires_action', 'captured', 'failed', 'voided')),
    provider_ref TEXT,
    failure      TEXT,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX payments_attempts_pending ON payments_attempts (status, created_at);
CREATE INDEX payments_attempts_ref ON payments_attempts (provider_ref) WHERE provider_ref IS NOT NULL;

-- Refunds of an intent's capture. A refund is reserved first (pending: its
-- amount added to the intent's refunded by a conditional UPDATE, so that
-- racing refunds never exceed captured), then sent to the provider under
-- provider_key, then marked succeeded with the provider's reference.
CREATE TABLE payments_refunds (
    id           TEXT    PRIMARY KEY,
    intent_id    TEXT    NOT NULL REFERENCES payments_intents (id),
    provider_key TEXT    NOT NULL UNIQUE,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'succeeded')),
    amount       BIGINT  NOT NULL CHECK (amount > 0),
    reason       TEXT    NOT NULL,
    provider_ref TEXT,
    actor_id     TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX payments_refunds_intent ON payments_refunds (intent_id);

-- What payments.reconcile found and could not fix safely; the sync monitor
-- lists the open ones.
CREATE TABLE payments_issues (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('paid_without_capture', 'capture_without_order', 'unsettled_attempt')),
    order_id   TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    found_at   BIGINT  NOT NULL,
    UNIQUE (kind, order_id)
);
