-- The server secret when MERCATO_SECRET is not set (package secret): one
-- row, created once by the first replica that starts, read by the others.
-- Production sets MERCATO_SECRET instead, so that a copy of the database
-- alone holds nothing that opens what the secret protects.
-- created_at is unix microseconds.
CREATE TABLE server_secret (
    name       TEXT   NOT NULL PRIMARY KEY,
    value      BYTEA  NOT NULL,
    created_at BIGINT NOT NULL
);
