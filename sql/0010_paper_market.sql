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

-- A fill that closed a position by liquidation (at its bankruptcy price).
ALTER TABLE paper_fills ADD COLUMN liquidation INTEGER NOT NULL DEFAULT 0
    CHECK (liquidation IN (0, 1));

-- Every funding settlement of a position: amount received (+) or paid (−) in USDT
-- at the rate of the 8-hour boundary `time_ms` (paper clock).
CREATE TABLE paper_funding (
    id        INTEGER PRIMARY KEY,
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
