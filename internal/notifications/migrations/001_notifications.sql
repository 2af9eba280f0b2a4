-- notifications: every e-mail the module decided to send (customer mail on
-- order events, staff alerts), with its delivery state, and the customers'
-- notification preferences. Times are unix microseconds. One message per
-- triggering event (event_id UNIQUE), so a redelivered event adds nothing.
-- The rendered subject and bodies are kept until the message is sent or
-- failed, because the sender runs outside the consumer's transaction.
CREATE TABLE notifications_messages (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL UNIQUE,
    customer_id     TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    ref             TEXT NOT NULL,
    locale          TEXT NOT NULL CHECK (locale IN ('en', 'zh-CN')),
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'skipped')),
    attempts        BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      TEXT NOT NULL DEFAULT '',
    next_attempt_at BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    CHECK (status <> 'sent' OR sent_at IS NOT NULL)
);
CREATE INDEX notifications_messages_due ON notifications_messages (status, next_attempt_at);
CREATE INDEX notifications_messages_customer ON notifications_messages (customer_id, created_at);
CREATE INDEX notifications_messages_ref ON notifications_messages (kind, ref, created_at);

CREATE TABLE notifications_preferences (
    customer_id TEXT PRIMARY KEY,
    locale      TEXT NOT NULL CHECK (locale IN ('en', 'zh-CN')),
    marketing   BIGINT NOT NULL CHECK (marketing IN (0, 1)),
    updated_at  BIGINT NOT NULL
);
