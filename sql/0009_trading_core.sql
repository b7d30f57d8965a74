-- The trading core (docs/bots.md, Ledger, Stops and closes, Configuration).

-- Every fill the bot observed on one of its orders, written when first seen: the
-- cycle's position, average entry and PnL are computed from these rows, so a cycle
-- of any length closes right after the exchange forgot its orders. `seq` numbers
-- the fills seen on one client id (a resting order fills in parts).
CREATE TABLE bot_fills (
    id                INTEGER PRIMARY KEY,
    user_id           INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
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
    UNIQUE (user_id, client_id, seq)
);
CREATE INDEX idx_bot_fills_cycle ON bot_fills (user_id, cycle);

-- Funding settlements read from the exchange while a cycle's position was open.
CREATE TABLE bot_funding (
    user_id     INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    cycle       INTEGER NOT NULL,
    exchange_id TEXT    NOT NULL,
    amount      TEXT    NOT NULL,
    time_ms     INTEGER NOT NULL,
    PRIMARY KEY (user_id, exchange_id)
);
CREATE INDEX idx_bot_funding_cycle ON bot_funding (user_id, cycle);

-- The exchange's id of each placed order (BingX keeps no client id on stops).
ALTER TABLE bot_orders ADD COLUMN exchange_id TEXT;

ALTER TABLE trades ADD COLUMN close_reason TEXT;
ALTER TABLE trades ADD COLUMN funding TEXT NOT NULL DEFAULT '0';

-- The new configuration fields, and a change made while the bot runs (the JSON of
-- the whole configuration to apply at the start of the next cycle).
ALTER TABLE user ADD COLUMN after_stop_loss TEXT NOT NULL DEFAULT 'stop';
ALTER TABLE user ADD COLUMN cooldown INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user ADD COLUMN max_active_legs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user ADD COLUMN trailing_take_profit TEXT NOT NULL DEFAULT '0';
ALTER TABLE user ADD COLUMN pending_config TEXT;

-- Placement state that must survive a restart: the ladder's re-placement round,
-- the trailing closes, the best price a trailing take-profit has seen, and the end
-- of a cooldown (Unix seconds).
ALTER TABLE user_bots ADD COLUMN leg_round INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_bots ADD COLUMN tr_n INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_bots ADD COLUMN trail_best TEXT;
ALTER TABLE user_bots ADD COLUMN next_entry_at INTEGER;
-- What GET /api/bot/status shows besides the position snapshot.
ALTER TABLE user_bots ADD COLUMN take_profit_price TEXT;
ALTER TABLE user_bots ADD COLUMN stop_loss_price TEXT;
ALTER TABLE user_bots ADD COLUMN stop_on_exchange INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_bots ADD COLUMN after_cycle INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_bots ADD COLUMN stop_reason TEXT;
