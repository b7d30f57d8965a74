-- The bot runner's bookkeeping (docs/bots.md): what the strategy needs to find its orders
-- again after a restart, and the last position it saw (for GET /api/bot/status).
ALTER TABLE user_bots ADD COLUMN tp_n INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_bots ADD COLUMN sl_n INTEGER NOT NULL DEFAULT 0;
-- The market of the unfinished cycle: a start on another symbol or side opens a new
-- cycle instead of adopting orders that belong to the old one.
ALTER TABLE user_bots ADD COLUMN cycle_exchange TEXT;
ALTER TABLE user_bots ADD COLUMN cycle_symbol TEXT;
ALTER TABLE user_bots ADD COLUMN cycle_side TEXT;
ALTER TABLE user_bots ADD COLUMN cycle_opened_at INTEGER;
ALTER TABLE user_bots ADD COLUMN position_size REAL NOT NULL DEFAULT 0;
ALTER TABLE user_bots ADD COLUMN position_avg REAL NOT NULL DEFAULT 0;
ALTER TABLE user_bots ADD COLUMN open_orders INTEGER NOT NULL DEFAULT 0;

-- A cycle is recorded once, however often a restarted runner sees it close.
CREATE UNIQUE INDEX idx_trades_user_cycle ON trades (user_id, cycle);

-- Last prices of the markets bots trade, written by the runner once per tick, so
-- status reads show unrealised PnL without asking the runner.
CREATE TABLE market_prices (
    exchange    TEXT    NOT NULL,
    symbol      TEXT    NOT NULL,
    price       REAL    NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (exchange, symbol)
);
