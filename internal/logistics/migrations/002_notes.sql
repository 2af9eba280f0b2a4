-- Staff notes on an order (customer service), oldest first.
CREATE TABLE logistics_order_notes (
    id         TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL,
    author_id  TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX logistics_order_notes_order ON logistics_order_notes (order_id, created_at);
