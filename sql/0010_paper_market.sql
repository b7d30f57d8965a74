-- The paper exchange as a market (docs/bots.md, Paper exchange): recorded prices
-- for candles, liquidation fills and funding settlements.

-- One-minute OHLC per paper market, written as its price moves (walk, replay or
-- live) and pruned after a week; what `exchange=paper` candles are read from.
-- Money as TEXT like every other amount.
CREATE TABLE paper_candles (
    symbol    TEXT    NOT NULL,
    start_ms  INTEGER NOT NULL,
    open      TEXT    NOT NULL,
    high      TEXT    NOT NULL,
    low       TEXT    NOT NULL,
    close     TEXT    NOT NULL,
    PRIMARY KEY (symbol, start_ms)
);

-- paper_fills rebuilt with AUTOINCREMENT: an account's reset deletes its fills,
-- and a fill id (the bots' execution id) used again after that would be taken for
-- one the bot already recorded. `liquidation` marks a fill that closed a position
-- by liquidation (at its bankruptcy price).
CREATE TABLE paper_fills_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    order_id    INTEGER NOT NULL REFERENCES paper_orders (id) ON DELETE CASCADE,
    symbol      TEXT    NOT NULL,
    side        TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    qty         TEXT    NOT NULL,
    price       TEXT    NOT NULL,
    -- USDT paid (positive).
    fee         TEXT    NOT NULL,
    time_ms     INTEGER NOT NULL,
    liquidation INTEGER NOT NULL DEFAULT 0 CHECK (liquidation IN (0, 1))
);
INSERT INTO paper_fills_new (id, user_id, order_id, symbol, side, qty, price, fee, time_ms)
SELECT id, user_id, order_id, symbol, side, qty, price, fee, time_ms FROM paper_fills;
DROP TABLE paper_fills;
ALTER TABLE paper_fills_new RENAME TO paper_fills;
CREATE INDEX idx_paper_fills_account ON paper_fills (user_id, symbol, time_ms);

-- The highest order id ever given: the book numbers orders itself, and after a
-- reset deleted the newest orders their ids must not be given again.
ALTER TABLE paper_clock ADD COLUMN last_order_id INTEGER NOT NULL DEFAULT 0;

-- Every funding settlement of a position: amount received (+) or paid (−) in USDT
-- at the rate of the 8-hour boundary `time_ms` (paper clock). AUTOINCREMENT: the
-- id is the bots' key of a payment, never to be used again after a reset.
CREATE TABLE paper_funding (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    symbol    TEXT    NOT NULL,
    side      TEXT    NOT NULL CHECK (side IN ('long', 'short')),
    amount    TEXT    NOT NULL,
    rate      TEXT    NOT NULL,
    time_ms   INTEGER NOT NULL
);
CREATE INDEX idx_paper_funding_account ON paper_funding (user_id, symbol, time_ms);

-- The last funding boundary settled (paper clock, Unix ms); NULL until the first
-- start of this release, which settles nothing before it.
ALTER TABLE paper_clock ADD COLUMN funded_ms INTEGER;
