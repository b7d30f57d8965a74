-- Exact money (docs/bots.md, Money): prices, quantities, fees, balances, PnL and the
-- configuration's percentages become canonical decimal TEXT ('0.009'), read and
-- written by the binary as decimals. REAL columns would turn '0.009' back into the
-- binary float 0.009000000000000001 (a column's REAL affinity converts any numeric
-- text), so the tables are rebuilt with TEXT columns; every index, constraint and
-- foreign key is recreated as it was.
--
-- Existing REAL values are converted to the decimal they were meant to be: the
-- shortest form with 15 significant digits ('%.15g', which is where binary noise
-- such as 0.30000000000000004 starts), written without an exponent (tiny values
-- with up to 20 decimals, huge ones as integers).
--
-- `user` is the parent of most tables and cannot be dropped and recreated inside
-- this transaction with foreign keys on (the implicit DELETE would cascade), so its
-- two percentages are swapped column by column instead.

-- user.take_profit, user.stop_loss
ALTER TABLE user RENAME COLUMN take_profit TO take_profit_real;
ALTER TABLE user ADD COLUMN take_profit TEXT NOT NULL DEFAULT '5';
UPDATE user SET take_profit = CASE typeof(take_profit_real)
        WHEN 'real' THEN CASE
            WHEN take_profit_real = 0 THEN '0'
            WHEN abs(take_profit_real) >= 1e15 THEN printf('%.0f', take_profit_real)
            WHEN abs(take_profit_real) < 1e-4 THEN rtrim(rtrim(printf('%.20f', take_profit_real), '0'), '.')
            ELSE printf('%.15g', take_profit_real) END
        WHEN 'integer' THEN CAST(take_profit_real AS TEXT)
        ELSE take_profit_real END;
ALTER TABLE user DROP COLUMN take_profit_real;
ALTER TABLE user RENAME COLUMN stop_loss TO stop_loss_real;
ALTER TABLE user ADD COLUMN stop_loss TEXT NOT NULL DEFAULT '0';
UPDATE user SET stop_loss = CASE typeof(stop_loss_real)
        WHEN 'real' THEN CASE
            WHEN stop_loss_real = 0 THEN '0'
            WHEN abs(stop_loss_real) >= 1e15 THEN printf('%.0f', stop_loss_real)
            WHEN abs(stop_loss_real) < 1e-4 THEN rtrim(rtrim(printf('%.20f', stop_loss_real), '0'), '.')
            ELSE printf('%.15g', stop_loss_real) END
        WHEN 'integer' THEN CAST(stop_loss_real AS TEXT)
        ELSE stop_loss_real END;
ALTER TABLE user DROP COLUMN stop_loss_real;

-- trades
CREATE TABLE trades_decimal (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    symbol      TEXT    NOT NULL,
    side        TEXT    NOT NULL,
    size        TEXT    NOT NULL,
    avg_entry   TEXT    NOT NULL,
    exit_price  TEXT    NOT NULL,
    pnl         TEXT    NOT NULL,
    fees        TEXT    NOT NULL,
    cycle       INTEGER NOT NULL,
    opened_at   INTEGER NOT NULL,
    closed_at   INTEGER NOT NULL
);
INSERT INTO trades_decimal (id, user_id, symbol, side, size, avg_entry, exit_price, pnl, fees, cycle, opened_at, closed_at)
SELECT
    id,
    user_id,
    symbol,
    side,
    CASE typeof(size)
        WHEN 'real' THEN CASE
            WHEN size = 0 THEN '0'
            WHEN abs(size) >= 1e15 THEN printf('%.0f', size)
            WHEN abs(size) < 1e-4 THEN rtrim(rtrim(printf('%.20f', size), '0'), '.')
            ELSE printf('%.15g', size) END
        WHEN 'integer' THEN CAST(size AS TEXT)
        ELSE size END,
    CASE typeof(avg_entry)
        WHEN 'real' THEN CASE
            WHEN avg_entry = 0 THEN '0'
            WHEN abs(avg_entry) >= 1e15 THEN printf('%.0f', avg_entry)
            WHEN abs(avg_entry) < 1e-4 THEN rtrim(rtrim(printf('%.20f', avg_entry), '0'), '.')
            ELSE printf('%.15g', avg_entry) END
        WHEN 'integer' THEN CAST(avg_entry AS TEXT)
        ELSE avg_entry END,
    CASE typeof(exit_price)
        WHEN 'real' THEN CASE
            WHEN exit_price = 0 THEN '0'
            WHEN abs(exit_price) >= 1e15 THEN printf('%.0f', exit_price)
            WHEN abs(exit_price) < 1e-4 THEN rtrim(rtrim(printf('%.20f', exit_price), '0'), '.')
            ELSE printf('%.15g', exit_price) END
        WHEN 'integer' THEN CAST(exit_price AS TEXT)
        ELSE exit_price END,
    CASE typeof(pnl)
        WHEN 'real' THEN CASE
            WHEN pnl = 0 THEN '0'
            WHEN abs(pnl) >= 1e15 THEN printf('%.0f', pnl)
            WHEN abs(pnl) < 1e-4 THEN rtrim(rtrim(printf('%.20f', pnl), '0'), '.')
            ELSE printf('%.15g', pnl) END
        WHEN 'integer' THEN CAST(pnl AS TEXT)
        ELSE pnl END,
    CASE typeof(fees)
        WHEN 'real' THEN CASE
            WHEN fees = 0 THEN '0'
            WHEN abs(fees) >= 1e15 THEN printf('%.0f', fees)
            WHEN abs(fees) < 1e-4 THEN rtrim(rtrim(printf('%.20f', fees), '0'), '.')
            ELSE printf('%.15g', fees) END
        WHEN 'integer' THEN CAST(fees AS TEXT)
        ELSE fees END,
    cycle,
    opened_at,
    closed_at
FROM trades;
DROP TABLE trades;
ALTER TABLE trades_decimal RENAME TO trades;
CREATE INDEX idx_trades_user_id ON trades (user_id, closed_at);
CREATE UNIQUE INDEX idx_trades_user_cycle ON trades (user_id, cycle);

-- user_bots
CREATE TABLE user_bots_decimal (
    user_id          INTEGER PRIMARY KEY REFERENCES user (id) ON DELETE CASCADE,
    desired_state    TEXT    NOT NULL DEFAULT 'stopped',
    status           TEXT    NOT NULL DEFAULT 'stopped',
    cycle            INTEGER NOT NULL DEFAULT 0,
    started_at       INTEGER,
    heartbeat_at     INTEGER,
    last_error       TEXT,
    updated_at       INTEGER NOT NULL,
    tp_n             INTEGER NOT NULL DEFAULT 0,
    sl_n             INTEGER NOT NULL DEFAULT 0,
    cycle_exchange   TEXT,
    cycle_symbol     TEXT,
    cycle_side       TEXT,
    cycle_opened_at  INTEGER,
    position_size    TEXT    NOT NULL DEFAULT '0',
    position_avg     TEXT    NOT NULL DEFAULT '0',
    open_orders      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO user_bots_decimal (user_id, desired_state, status, cycle, started_at, heartbeat_at, last_error, updated_at, tp_n, sl_n, cycle_exchange, cycle_symbol, cycle_side, cycle_opened_at, position_size, position_avg, open_orders)
SELECT
    user_id,
    desired_state,
    status,
    cycle,
    started_at,
    heartbeat_at,
    last_error,
    updated_at,
    tp_n,
    sl_n,
    cycle_exchange,
    cycle_symbol,
    cycle_side,
    cycle_opened_at,
    CASE typeof(position_size)
        WHEN 'real' THEN CASE
            WHEN position_size = 0 THEN '0'
            WHEN abs(position_size) >= 1e15 THEN printf('%.0f', position_size)
            WHEN abs(position_size) < 1e-4 THEN rtrim(rtrim(printf('%.20f', position_size), '0'), '.')
            ELSE printf('%.15g', position_size) END
        WHEN 'integer' THEN CAST(position_size AS TEXT)
        ELSE position_size END,
    CASE typeof(position_avg)
        WHEN 'real' THEN CASE
            WHEN position_avg = 0 THEN '0'
            WHEN abs(position_avg) >= 1e15 THEN printf('%.0f', position_avg)
            WHEN abs(position_avg) < 1e-4 THEN rtrim(rtrim(printf('%.20f', position_avg), '0'), '.')
            ELSE printf('%.15g', position_avg) END
        WHEN 'integer' THEN CAST(position_avg AS TEXT)
        ELSE position_avg END,
    open_orders
FROM user_bots;
DROP TABLE user_bots;
ALTER TABLE user_bots_decimal RENAME TO user_bots;
CREATE INDEX idx_user_bots_status ON user_bots (status);

-- market_prices
CREATE TABLE market_prices_decimal (
    exchange    TEXT    NOT NULL,
    symbol      TEXT    NOT NULL,
    price       TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (exchange, symbol)
);
INSERT INTO market_prices_decimal (exchange, symbol, price, updated_at)
SELECT
    exchange,
    symbol,
    CASE typeof(price)
        WHEN 'real' THEN CASE
            WHEN price = 0 THEN '0'
            WHEN abs(price) >= 1e15 THEN printf('%.0f', price)
            WHEN abs(price) < 1e-4 THEN rtrim(rtrim(printf('%.20f', price), '0'), '.')
            ELSE printf('%.15g', price) END
        WHEN 'integer' THEN CAST(price AS TEXT)
        ELSE price END,
    updated_at
FROM market_prices;
DROP TABLE market_prices;
ALTER TABLE market_prices_decimal RENAME TO market_prices;

-- paper_markets
CREATE TABLE paper_markets_decimal (
    symbol      TEXT    PRIMARY KEY,
    price       TEXT    NOT NULL CHECK (CAST(price AS REAL) > 0),
    step_no     INTEGER NOT NULL DEFAULT 0,
    updated_ms  INTEGER NOT NULL
);
INSERT INTO paper_markets_decimal (symbol, price, step_no, updated_ms)
SELECT
    symbol,
    CASE typeof(price)
        WHEN 'real' THEN CASE
            WHEN price = 0 THEN '0'
            WHEN abs(price) >= 1e15 THEN printf('%.0f', price)
            WHEN abs(price) < 1e-4 THEN rtrim(rtrim(printf('%.20f', price), '0'), '.')
            ELSE printf('%.15g', price) END
        WHEN 'integer' THEN CAST(price AS TEXT)
        ELSE price END,
    step_no,
    updated_ms
FROM paper_markets;
DROP TABLE paper_markets;
ALTER TABLE paper_markets_decimal RENAME TO paper_markets;

-- paper_accounts
CREATE TABLE paper_accounts_decimal (
    user_id  INTEGER PRIMARY KEY REFERENCES user (id) ON DELETE CASCADE,
    balance  TEXT    NOT NULL
);
INSERT INTO paper_accounts_decimal (user_id, balance)
SELECT
    user_id,
    CASE typeof(balance)
        WHEN 'real' THEN CASE
            WHEN balance = 0 THEN '0'
            WHEN abs(balance) >= 1e15 THEN printf('%.0f', balance)
            WHEN abs(balance) < 1e-4 THEN rtrim(rtrim(printf('%.20f', balance), '0'), '.')
            ELSE printf('%.15g', balance) END
        WHEN 'integer' THEN CAST(balance AS TEXT)
        ELSE balance END
FROM paper_accounts;
DROP TABLE paper_accounts;
ALTER TABLE paper_accounts_decimal RENAME TO paper_accounts;

-- paper_orders
CREATE TABLE paper_orders_decimal (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    client_id       TEXT    NOT NULL,
    symbol          TEXT    NOT NULL,
    side            TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    kind            TEXT    NOT NULL CHECK (kind IN ('market', 'limit')),
    -- Limit price; NULL for market orders.
    price           TEXT,
    qty             TEXT    NOT NULL,
    filled_qty      TEXT    NOT NULL DEFAULT '0',
    avg_fill_price  TEXT    NOT NULL DEFAULT '0',
    fee             TEXT    NOT NULL DEFAULT '0',
    reduce_only     INTEGER NOT NULL CHECK (reduce_only IN (0, 1)),
    position_side   TEXT    NOT NULL CHECK (position_side IN ('long', 'short')),
    status          TEXT    NOT NULL
        CHECK (status IN ('open', 'partially_filled', 'filled', 'cancelled', 'rejected')),
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    UNIQUE (user_id, client_id)
);
INSERT INTO paper_orders_decimal (id, user_id, client_id, symbol, side, kind, price, qty, filled_qty, avg_fill_price, fee, reduce_only, position_side, status, created_ms, updated_ms)
SELECT
    id,
    user_id,
    client_id,
    symbol,
    side,
    kind,
    CASE typeof(price)
        WHEN 'real' THEN CASE
            WHEN price = 0 THEN '0'
            WHEN abs(price) >= 1e15 THEN printf('%.0f', price)
            WHEN abs(price) < 1e-4 THEN rtrim(rtrim(printf('%.20f', price), '0'), '.')
            ELSE printf('%.15g', price) END
        WHEN 'integer' THEN CAST(price AS TEXT)
        ELSE price END,
    CASE typeof(qty)
        WHEN 'real' THEN CASE
            WHEN qty = 0 THEN '0'
            WHEN abs(qty) >= 1e15 THEN printf('%.0f', qty)
            WHEN abs(qty) < 1e-4 THEN rtrim(rtrim(printf('%.20f', qty), '0'), '.')
            ELSE printf('%.15g', qty) END
        WHEN 'integer' THEN CAST(qty AS TEXT)
        ELSE qty END,
    CASE typeof(filled_qty)
        WHEN 'real' THEN CASE
            WHEN filled_qty = 0 THEN '0'
            WHEN abs(filled_qty) >= 1e15 THEN printf('%.0f', filled_qty)
            WHEN abs(filled_qty) < 1e-4 THEN rtrim(rtrim(printf('%.20f', filled_qty), '0'), '.')
            ELSE printf('%.15g', filled_qty) END
        WHEN 'integer' THEN CAST(filled_qty AS TEXT)
        ELSE filled_qty END,
    CASE typeof(avg_fill_price)
        WHEN 'real' THEN CASE
            WHEN avg_fill_price = 0 THEN '0'
            WHEN abs(avg_fill_price) >= 1e15 THEN printf('%.0f', avg_fill_price)
            WHEN abs(avg_fill_price) < 1e-4 THEN rtrim(rtrim(printf('%.20f', avg_fill_price), '0'), '.')
            ELSE printf('%.15g', avg_fill_price) END
        WHEN 'integer' THEN CAST(avg_fill_price AS TEXT)
        ELSE avg_fill_price END,
    CASE typeof(fee)
        WHEN 'real' THEN CASE
            WHEN fee = 0 THEN '0'
            WHEN abs(fee) >= 1e15 THEN printf('%.0f', fee)
            WHEN abs(fee) < 1e-4 THEN rtrim(rtrim(printf('%.20f', fee), '0'), '.')
            ELSE printf('%.15g', fee) END
        WHEN 'integer' THEN CAST(fee AS TEXT)
        ELSE fee END,
    reduce_only,
    position_side,
    status,
    created_ms,
    updated_ms
FROM paper_orders;
DROP TABLE paper_orders;
ALTER TABLE paper_orders_decimal RENAME TO paper_orders;
CREATE INDEX idx_paper_orders_open ON paper_orders (id)
    WHERE status IN ('open', 'partially_filled');

-- paper_positions
CREATE TABLE paper_positions_decimal (
    user_id    INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    symbol     TEXT    NOT NULL,
    side       TEXT    NOT NULL CHECK (side IN ('long', 'short')),
    size       TEXT    NOT NULL CHECK (CAST(size AS REAL) > 0),
    avg_entry  TEXT    NOT NULL,
    PRIMARY KEY (user_id, symbol, side)
);
INSERT INTO paper_positions_decimal (user_id, symbol, side, size, avg_entry)
SELECT
    user_id,
    symbol,
    side,
    CASE typeof(size)
        WHEN 'real' THEN CASE
            WHEN size = 0 THEN '0'
            WHEN abs(size) >= 1e15 THEN printf('%.0f', size)
            WHEN abs(size) < 1e-4 THEN rtrim(rtrim(printf('%.20f', size), '0'), '.')
            ELSE printf('%.15g', size) END
        WHEN 'integer' THEN CAST(size AS TEXT)
        ELSE size END,
    CASE typeof(avg_entry)
        WHEN 'real' THEN CASE
            WHEN avg_entry = 0 THEN '0'
            WHEN abs(avg_entry) >= 1e15 THEN printf('%.0f', avg_entry)
            WHEN abs(avg_entry) < 1e-4 THEN rtrim(rtrim(printf('%.20f', avg_entry), '0'), '.')
            ELSE printf('%.15g', avg_entry) END
        WHEN 'integer' THEN CAST(avg_entry AS TEXT)
        ELSE avg_entry END
FROM paper_positions;
DROP TABLE paper_positions;
ALTER TABLE paper_positions_decimal RENAME TO paper_positions;
