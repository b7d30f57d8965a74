-- One-minute buckets of the paper exchange's prices: what the candles of a walked
-- or replayed paper market are built from (docs/http-api.md, Markets). Written by
-- the paper exchange, read by `store::market_cache::paper_minutes`.
CREATE TABLE IF NOT EXISTS paper_candles (
    symbol   TEXT    NOT NULL,
    start_ms INTEGER NOT NULL,
    open     TEXT    NOT NULL,
    high     TEXT    NOT NULL,
    low      TEXT    NOT NULL,
    close    TEXT    NOT NULL,
    PRIMARY KEY (symbol, start_ms)
);
