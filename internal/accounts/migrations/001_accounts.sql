-- accounts: users, tokens, addresses, MFA recovery codes, password resets,
-- per-account login throttle. Times are unix microseconds; booleans 0/1.
CREATE TABLE accounts_users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,            -- normalised (trimmed, lower-case)
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,            -- argon2id PHC string; '' when erased
    roles         TEXT NOT NULL,            -- space-separated, sorted
    disabled      INTEGER NOT NULL DEFAULT 0,
    mfa_secret    TEXT NOT NULL DEFAULT '', -- active TOTP secret (base32)
    mfa_pending   TEXT NOT NULL DEFAULT '', -- enrolled, not yet verified
    mfa_last_step BIGINT NOT NULL DEFAULT 0, -- TOTP step last accepted (no replay)
    erased_at     BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_users_email ON accounts_users (email);

CREATE TABLE accounts_tokens (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,               -- hex SHA-256 of the bearer token
    user_id    TEXT REFERENCES accounts_users (id),
    channel    TEXT NOT NULL DEFAULT '',    -- channel code of a channel token
    scope      TEXT NOT NULL,               -- full | mfa_setup | channel
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,             -- 0: never
    revoked_at BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX accounts_tokens_hash ON accounts_tokens (token_hash);
CREATE INDEX accounts_tokens_user ON accounts_tokens (user_id);

CREATE TABLE accounts_addresses (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES accounts_users (id),
    name        TEXT NOT NULL,
    line1       TEXT NOT NULL,
    line2       TEXT NOT NULL DEFAULT '',
    city        TEXT NOT NULL,
    region      TEXT NOT NULL,
    postal_code TEXT NOT NULL,
    country     TEXT NOT NULL,
    phone       TEXT NOT NULL DEFAULT '',
    is_default  INTEGER NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX accounts_addresses_user ON accounts_addresses (user_id);
CREATE UNIQUE INDEX accounts_addresses_default ON accounts_addresses (user_id) WHERE is_default = 1;

CREATE TABLE accounts_recovery_codes (
    user_id   TEXT NOT NULL REFERENCES accounts_users (id),
    code_hash TEXT NOT NULL,
    used_at   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE accounts_password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES accounts_users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX accounts_password_resets_user ON accounts_password_resets (user_id);

-- Failed logins per normalised e-mail (known or not, so that throttling
-- reveals nothing about which addresses have accounts).
CREATE TABLE accounts_login_throttle (
    email          TEXT PRIMARY KEY,
    failures       INTEGER NOT NULL,
    last_failure_at BIGINT NOT NULL,
    locked_until   BIGINT NOT NULL
);
