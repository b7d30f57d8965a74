-- Two-factor login with TOTP (docs/http-api.md, Two-factor login).

-- One row per user who started enrolment. Secrets are sealed with the instance key
-- (never plaintext) and bound to the user. `pending_enc` is the secret of the last
-- setup, waiting for its first code; `secret_enc` is the active one.
CREATE TABLE two_factor (
    user_id      INTEGER PRIMARY KEY REFERENCES user (id) ON DELETE CASCADE,
    secret_enc   TEXT,
    pending_enc  TEXT,
    enabled_at   INTEGER,
    -- The newest 30-second step whose code was accepted: a code of this step or an
    -- earlier one is refused, so a code seen over someone's shoulder is spent.
    last_step    INTEGER,
    updated_at   INTEGER NOT NULL,
    CHECK ((secret_enc IS NULL) = (enabled_at IS NULL))
);

-- Single-use recovery codes: SHA-256 of user id and code, never the code.
CREATE TABLE two_factor_recovery (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    code_hash  TEXT    NOT NULL,
    used_at    INTEGER
);
CREATE INDEX idx_two_factor_recovery_user_id ON two_factor_recovery (user_id);

-- The step between a right password and the code: short-lived, single-use,
-- stored as SHA-256, and spent after a few wrong codes.
CREATE TABLE login_tickets (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT    NOT NULL UNIQUE,
    user_id     INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    failures    INTEGER NOT NULL DEFAULT 0,
    used_at     INTEGER
);
CREATE INDEX idx_login_tickets_user_id ON login_tickets (user_id);
