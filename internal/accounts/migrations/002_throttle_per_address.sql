-- accounts: login throttle per account and client address (client '*' is
-- the account's all-addresses counter); mail tokens get a purpose so that
-- one table holds password-reset and unlock tokens. Throttle rows are
-- short-lived counters: the old per-account ones are dropped.
DROP TABLE accounts_login_throttle;
CREATE TABLE accounts_login_throttle (
    email           TEXT NOT NULL,            -- normalised e-mail, known or not
    client          TEXT NOT NULL,            -- client address, or '*'
    failures        INTEGER NOT NULL,
    last_failure_at BIGINT NOT NULL,
    locked_until    BIGINT NOT NULL,
    known_until     BIGINT NOT NULL DEFAULT 0, -- a login succeeded from client
    PRIMARY KEY (email, client)
);
ALTER TABLE accounts_password_resets ADD COLUMN purpose TEXT NOT NULL DEFAULT 'password_reset';
