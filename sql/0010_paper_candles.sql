-- One-minute buckets of the paper exchange's prices (docs/bots.md, Candles): what
-- the candles of a walked or replayed paper market are built from. Written by the
-- paper exchange, read by `store::candles`.
CREATE TABLE IF NOT EXISTS paper_candles (
    symbol   TEXT    NOT NULL,
    start_ms INTEGER NOT NULL,
    open     TEXT    NOT NULL,
    high     TEXT    NOT NULL,
    low      TEXT    NOT NULL,
    close    TEXT    NOT NULL,
    PRIMARY KEY (symbol, start_ms)
);
