-- Accounts, sessions, API tokens, mail, settings and the bot tables.
-- Timestamps are Unix seconds (UTC) unless the column name says `_ms`.

-- The table is called `user` so that operators' familiar
-- `EXPLAIN QUERY PLAN SELECT * FROM user WHERE email = ?` works as written.
-- `email` is unique through idx_users_email (not an inline UNIQUE, whose automatic
-- index the planner could prefer) and always stored lower-case.
CREATE TABLE user (
    id                    INTEGER PRIMARY KEY,
    email                 TEXT    NOT NULL,
    password_hash         TEXT    NOT NULL,
    is_admin              INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    disabled              INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    verified_at           INTEGER,
    -- SHA-256 (hex) of the single-use verification token; NULL once used.
    verification_token    TEXT,
    verification_expires  INTEGER,
    created_at            INTEGER NOT NULL,
    -- Bot configuration (docs/bots.md). New users get a working paper configuration.
    exchange              TEXT    NOT NULL DEFAULT 'paper',
    symbol                TEXT    NOT NULL DEFAULT 'BTC/USDT',
    side                  TEXT    NOT NULL DEFAULT 'long',
    leverage              INTEGER NOT NULL DEFAULT 10,
    take_profit           REAL    NOT NULL DEFAULT 5,
    stop_loss             REAL    NOT NULL DEFAULT 0,
    rounds                INTEGER NOT NULL DEFAULT 3,
    -- JSON array of {"amount": USDT margin, "gap": percent from the previous leg}.
    grids                 TEXT    NOT NULL
        DEFAULT '[{"amount":10,"gap":0},{"amount":20,"gap":1},{"amount":40,"gap":2}]',
    repeat                INTEGER NOT NULL DEFAULT 1 CHECK (repeat IN (0, 1)),
    -- Secrets are sealed with the instance key (never plaintext); the key's last four
    -- characters are kept apart so listing a masked key needs no decryption.
    api_key_enc           TEXT,
    api_key_last4         TEXT,
    api_secret_enc        TEXT,
    telegram_chat_id      TEXT,
    telegram_token_enc    TEXT
);
CREATE UNIQUE INDEX idx_users_email ON user (email);
CREATE INDEX idx_users_verification_token ON user (verification_token);

-- Browser sessions: only the SHA-256 of the cookie value is stored.
CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT    NOT NULL UNIQUE,
    csrf_token  TEXT    NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX idx_sessions_user_id ON sessions (user_id);

-- API bearer tokens: shown once, stored as SHA-256.
CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    token_hash    TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    user_id       INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX idx_api_tokens_user_id ON api_tokens (user_id);

CREATE TABLE password_resets (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT    NOT NULL UNIQUE,
    user_id     INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);

-- Failed logins, one row per failure and key ("email:…" or "ip:…"), for the
-- per-e-mail and per-IP login limit shared by every worker.
CREATE TABLE login_failures (
    id     INTEGER PRIMARY KEY,
    key    TEXT    NOT NULL,
    at_ms  INTEGER NOT NULL
);
CREATE INDEX idx_login_failures_key ON login_failures (key, at_ms);
CREATE INDEX idx_login_failures_at ON login_failures (at_ms);

-- Outgoing mail, committed with the change that caused it; the mailer process
-- delivers it and retries failures, so a mail outage loses nothing.
CREATE TABLE mail_queue (
    id               INTEGER PRIMARY KEY,
    recipient        TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    sent_at          INTEGER,
    last_error       TEXT
);
CREATE INDEX idx_mail_queue_pending ON mail_queue (sent_at, next_attempt_at);

-- Instance-wide settings (maintenance, banner), one row per key.
CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value       TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- One bot per user: what the user asked for and what the runner reports.
CREATE TABLE user_bots (
    user_id        INTEGER PRIMARY KEY REFERENCES user (id) ON DELETE CASCADE,
    desired_state  TEXT    NOT NULL DEFAULT 'stopped',
    status         TEXT    NOT NULL DEFAULT 'stopped',
    cycle          INTEGER NOT NULL DEFAULT 0,
    started_at     INTEGER,
    heartbeat_at   INTEGER,
    last_error     TEXT,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX idx_user_bots_status ON user_bots (status);

CREATE TABLE bot_events (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    data        TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX idx_bot_events_user_id ON bot_events (user_id, id);

-- Closed cycles with PnL net of fees.
CREATE TABLE trades (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    symbol      TEXT    NOT NULL,
    side        TEXT    NOT NULL,
    size        REAL    NOT NULL,
    avg_entry   REAL    NOT NULL,
    exit_price  REAL    NOT NULL,
    pnl         REAL    NOT NULL,
    fees        REAL    NOT NULL,
    cycle       INTEGER NOT NULL,
    opened_at   INTEGER NOT NULL,
    closed_at   INTEGER NOT NULL
);
CREATE INDEX idx_trades_user_id ON trades (user_id, closed_at);
