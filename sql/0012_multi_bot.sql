-- Several bots per user (docs/bots.md, Several bots): bots become rows of their own
-- with their configuration, exchange credentials move to exchange accounts that
-- several bots share, and every per-bot table names its bot.
--
-- Invariant of the upgrade: every user gets a default bot whose id is the user's id,
-- carrying the configuration and the runner state the user had. Client order ids
-- are `bz-<bot id>-…` (they were `bz-<user id>-…`), so every live order of a bot
-- that ran before the upgrade is still recognised as that bot's: nothing is orphaned.

-- Exchange accounts: sealed credentials held once for several bots. The sealed
-- values are bound to their owner (`user:<id>:api_key`, src/secrets.rs) exactly as
-- they were on the `user` row, so they are copied as they are. The paper account
-- has no row: each user has one, implicitly.
CREATE TABLE exchange_accounts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    exchange        TEXT    NOT NULL CHECK (exchange IN ('bybit', 'bingx')),
    api_key_enc     TEXT    NOT NULL,
    -- The key's last four characters, so a masked key is listed without decryption.
    api_key_last4   TEXT    NOT NULL,
    api_secret_enc  TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX idx_exchange_accounts_user_id ON exchange_accounts (user_id, id);

-- A user with a complete key pair gets one account, named after the exchange the
-- bot was configured for (Bybit when it was paper: the keys were kept, unused). A
-- key without a secret could never trade and is not carried over.
INSERT INTO exchange_accounts (user_id, name, exchange, api_key_enc, api_key_last4,
    api_secret_enc, created_at)
SELECT id,
    CASE exchange WHEN 'bingx' THEN 'BingX' ELSE 'Bybit' END,
    CASE exchange WHEN 'bingx' THEN 'bingx' ELSE 'bybit' END,
    api_key_enc, COALESCE(api_key_last4, ''), api_secret_enc, created_at
FROM user
WHERE api_key_enc IS NOT NULL AND api_secret_enc IS NOT NULL
ORDER BY id;

-- user_bots: one row per bot, its configuration (moved from `user`) and the
-- runner's state. AUTOINCREMENT: a bot id is in its client order ids, so the id of
-- a deleted bot is never given again.
CREATE TABLE user_bots_multi (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id               INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    name                  TEXT    NOT NULL,
    -- The configuration (docs/bots.md, Configuration). No defaults here: a new
    -- bot's come from the binary (`BotConfig::default`), the one place they are said.
    exchange              TEXT    NOT NULL CHECK (exchange IN ('paper', 'bybit', 'bingx')),
    -- NULL for paper (the user's paper account). Not cascaded: an account in use
    -- is not deleted.
    exchange_account_id   INTEGER REFERENCES exchange_accounts (id),
    symbol                TEXT    NOT NULL,
    side                  TEXT    NOT NULL,
    leverage              INTEGER NOT NULL,
    take_profit           TEXT    NOT NULL,
    stop_loss             TEXT    NOT NULL,
    rounds                INTEGER NOT NULL,
    -- JSON array of {"amount": USDT margin, "gap": percent from the previous leg}.
    grids                 TEXT    NOT NULL,
    repeat                INTEGER NOT NULL CHECK (repeat IN (0, 1)),
    after_stop_loss       TEXT    NOT NULL,
    cooldown              INTEGER NOT NULL,
    max_active_legs       INTEGER NOT NULL,
    trailing_take_profit  TEXT    NOT NULL,
    -- The whole configuration (JSON) to apply at the start of the next cycle.
    pending_config        TEXT,
    created_at            INTEGER NOT NULL,
    -- The runner's state (docs/bots.md, Runner).
    desired_state         TEXT    NOT NULL DEFAULT 'stopped',
    status                TEXT    NOT NULL DEFAULT 'stopped',
    cycle                 INTEGER NOT NULL DEFAULT 1,
    started_at            INTEGER,
    heartbeat_at          INTEGER,
    last_error            TEXT,
    updated_at            INTEGER NOT NULL,
    tp_n                  INTEGER NOT NULL DEFAULT 0,
    sl_n                  INTEGER NOT NULL DEFAULT 0,
    cycle_exchange        TEXT,
    cycle_symbol          TEXT,
    cycle_side            TEXT,
    -- The exchange account the cycle trades on (NULL on paper): a position stays on
    -- the account it was opened on, whatever account the bot is linked to later.
    cycle_account_id      INTEGER,
    cycle_opened_at       INTEGER,
    position_size         TEXT    NOT NULL DEFAULT '0',
    position_avg          TEXT    NOT NULL DEFAULT '0',
    open_orders           INTEGER NOT NULL DEFAULT 0,
    leg_round             INTEGER NOT NULL DEFAULT 0,
    tr_n                  INTEGER NOT NULL DEFAULT 0,
    trail_best            TEXT,
    next_entry_at         INTEGER,
    take_profit_price     TEXT,
    stop_loss_price       TEXT,
    stop_on_exchange      INTEGER NOT NULL DEFAULT 0,
    after_cycle           INTEGER NOT NULL DEFAULT 0,
    stop_reason           TEXT
);

-- Every user's default bot: id = user id, their configuration, and their runner
-- state (a user who never started a bot had no row: stopped, cycle 1).
INSERT INTO user_bots_multi (id, user_id, name, exchange, exchange_account_id, symbol, side,
    leverage, take_profit, stop_loss, rounds, grids, repeat, after_stop_loss, cooldown,
    max_active_legs, trailing_take_profit, pending_config, created_at,
    desired_state, status, cycle, started_at, heartbeat_at, last_error, updated_at,
    tp_n, sl_n, cycle_exchange, cycle_symbol, cycle_side, cycle_account_id, cycle_opened_at,
    position_size, position_avg, open_orders, leg_round, tr_n, trail_best, next_entry_at,
    take_profit_price, stop_loss_price, stop_on_exchange, after_cycle, stop_reason)
SELECT u.id, u.id, 'Default', u.exchange,
    (SELECT a.id FROM exchange_accounts a
     WHERE a.user_id = u.id AND a.exchange = u.exchange),
    u.symbol, u.side, u.leverage, u.take_profit, u.stop_loss, u.rounds, u.grids, u.repeat,
    u.after_stop_loss, u.cooldown, u.max_active_legs, u.trailing_take_profit,
    u.pending_config, u.created_at,
    COALESCE(b.desired_state, 'stopped'), COALESCE(b.status, 'stopped'),
    CASE WHEN b.user_id IS NULL THEN 1 ELSE b.cycle END,
    b.started_at, b.heartbeat_at, b.last_error, COALESCE(b.updated_at, u.created_at),
    COALESCE(b.tp_n, 0), COALESCE(b.sl_n, 0), b.cycle_exchange, b.cycle_symbol,
    b.cycle_side,
    -- The user's only key pair was the one every real-exchange cycle traded with.
    (SELECT a.id FROM exchange_accounts a
     WHERE a.user_id = u.id AND a.exchange = b.cycle_exchange),
    b.cycle_opened_at, COALESCE(b.position_size, '0'),
    COALESCE(b.position_avg, '0'), COALESCE(b.open_orders, 0), COALESCE(b.leg_round, 0),
    COALESCE(b.tr_n, 0), b.trail_best, b.next_entry_at, b.take_profit_price,
    b.stop_loss_price, COALESCE(b.stop_on_exchange, 0), COALESCE(b.after_cycle, 0),
    b.stop_reason
FROM user u LEFT JOIN user_bots b ON b.user_id = u.id
ORDER BY u.id;
DROP TABLE user_bots;
ALTER TABLE user_bots_multi RENAME TO user_bots;
CREATE INDEX idx_user_bots_user_id ON user_bots (user_id, id);
CREATE INDEX idx_user_bots_status ON user_bots (status);
CREATE INDEX idx_user_bots_account ON user_bots (exchange_account_id)
    WHERE exchange_account_id IS NOT NULL;

-- trades: a closed cycle names its bot; a deleted bot's trades stay in the user's
-- history (bot_id NULL). A cycle is recorded once per bot.
CREATE TABLE trades_multi (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    bot_id        INTEGER REFERENCES user_bots (id) ON DELETE SET NULL,
    symbol        TEXT    NOT NULL,
    side          TEXT    NOT NULL,
    size          TEXT    NOT NULL,
    avg_entry     TEXT    NOT NULL,
    exit_price    TEXT    NOT NULL,
    pnl           TEXT    NOT NULL,
    fees          TEXT    NOT NULL,
    cycle         INTEGER NOT NULL,
    opened_at     INTEGER NOT NULL,
    closed_at     INTEGER NOT NULL,
    close_reason  TEXT,
    funding       TEXT    NOT NULL DEFAULT '0'
);
INSERT INTO trades_multi (id, user_id, bot_id, symbol, side, size, avg_entry, exit_price,
    pnl, fees, cycle, opened_at, closed_at, close_reason, funding)
SELECT id, user_id, user_id, symbol, side, size, avg_entry, exit_price, pnl, fees, cycle,
    opened_at, closed_at, close_reason, funding
FROM trades;
DROP TABLE trades;
ALTER TABLE trades_multi RENAME TO trades;
CREATE INDEX idx_trades_user_id ON trades (user_id, closed_at);
CREATE UNIQUE INDEX idx_trades_bot_cycle ON trades (bot_id, cycle);

-- bot_events
CREATE TABLE bot_events_multi (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    bot_id      INTEGER NOT NULL REFERENCES user_bots (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    data        TEXT,
    created_at  INTEGER NOT NULL
);
INSERT INTO bot_events_multi (id, user_id, bot_id, kind, message, data, created_at)
SELECT id, user_id, user_id, kind, message, data, created_at FROM bot_events;
DROP TABLE bot_events;
ALTER TABLE bot_events_multi RENAME TO bot_events;
CREATE INDEX idx_bot_events_user_id ON bot_events (user_id, id);
CREATE INDEX idx_bot_events_bot_id ON bot_events (bot_id, id);

-- bot_fills: client ids name the bot, so (bot, client id, seq) is the fill's key.
CREATE TABLE bot_fills_multi (
    id                INTEGER PRIMARY KEY,
    user_id           INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    bot_id            INTEGER NOT NULL REFERENCES user_bots (id) ON DELETE CASCADE,
    cycle             INTEGER NOT NULL,
    client_id         TEXT    NOT NULL,
    exchange_order_id TEXT    NOT NULL,
    -- entry | leg | take_profit | trailing_take_profit | stop_loss | close | outside | liquidation
    purpose           TEXT    NOT NULL,
    leg               INTEGER,
    side              TEXT    NOT NULL,
    qty               TEXT    NOT NULL,
    price             TEXT    NOT NULL,
    fee               TEXT    NOT NULL,
    time_ms           INTEGER NOT NULL,
    seq               INTEGER NOT NULL,
    UNIQUE (bot_id, client_id, seq)
);
INSERT INTO bot_fills_multi (id, user_id, bot_id, cycle, client_id, exchange_order_id,
    purpose, leg, side, qty, price, fee, time_ms, seq)
SELECT id, user_id, user_id, cycle, client_id, exchange_order_id, purpose, leg, side, qty,
    price, fee, time_ms, seq
FROM bot_fills;
DROP TABLE bot_fills;
ALTER TABLE bot_fills_multi RENAME TO bot_fills;
CREATE INDEX idx_bot_fills_cycle ON bot_fills (bot_id, cycle);

-- bot_funding: a settlement keeps its key (the exchange's id is unique per account).
CREATE TABLE bot_funding_multi (
    user_id     INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    bot_id      INTEGER NOT NULL REFERENCES user_bots (id) ON DELETE CASCADE,
    cycle       INTEGER NOT NULL,
    exchange_id TEXT    NOT NULL,
    amount      TEXT    NOT NULL,
    time_ms     INTEGER NOT NULL,
    PRIMARY KEY (user_id, exchange_id)
);
INSERT INTO bot_funding_multi (user_id, bot_id, cycle, exchange_id, amount, time_ms)
SELECT user_id, user_id, cycle, exchange_id, amount, time_ms FROM bot_funding;
DROP TABLE bot_funding;
ALTER TABLE bot_funding_multi RENAME TO bot_funding;
CREATE INDEX idx_bot_funding_cycle ON bot_funding (bot_id, cycle);

-- bot_orders: keyed per user as before (client ids name the bot, so they stay
-- unique per user); the exchange id of an untagged order is looked up across the
-- user's bots, so a sibling bot's order is told from a foreign one.
CREATE TABLE bot_orders_multi (
    user_id      INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    bot_id       INTEGER NOT NULL REFERENCES user_bots (id) ON DELETE CASCADE,
    client_id    TEXT    NOT NULL,
    submitted_at INTEGER NOT NULL,
    exchange_id  TEXT,
    PRIMARY KEY (user_id, client_id)
) WITHOUT ROWID;
INSERT INTO bot_orders_multi (user_id, bot_id, client_id, submitted_at, exchange_id)
SELECT user_id, user_id, client_id, submitted_at, exchange_id FROM bot_orders;
DROP TABLE bot_orders;
ALTER TABLE bot_orders_multi RENAME TO bot_orders;
CREATE INDEX idx_bot_orders_bot_id ON bot_orders (bot_id, client_id);

-- The configuration and the exchange credentials left `user`; the Telegram chat
-- and token stay (notifications are the user's, for all their bots).
ALTER TABLE user DROP COLUMN exchange;
ALTER TABLE user DROP COLUMN symbol;
ALTER TABLE user DROP COLUMN side;
ALTER TABLE user DROP COLUMN leverage;
ALTER TABLE user DROP COLUMN take_profit;
ALTER TABLE user DROP COLUMN stop_loss;
ALTER TABLE user DROP COLUMN rounds;
ALTER TABLE user DROP COLUMN grids;
ALTER TABLE user DROP COLUMN repeat;
ALTER TABLE user DROP COLUMN after_stop_loss;
ALTER TABLE user DROP COLUMN cooldown;
ALTER TABLE user DROP COLUMN max_active_legs;
ALTER TABLE user DROP COLUMN trailing_take_profit;
ALTER TABLE user DROP COLUMN pending_config;
ALTER TABLE user DROP COLUMN api_key_enc;
ALTER TABLE user DROP COLUMN api_key_last4;
ALTER TABLE user DROP COLUMN api_secret_enc;
