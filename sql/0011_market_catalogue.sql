-- Public market data cached for every worker (docs/http-api.md, Markets): the
-- exchanges' catalogues and candles, and who may refresh what when.

-- One row per market an exchange lists (USDT-settled perpetuals that trade), as
-- last fetched: replaced whole by one refresh, in one transaction.
CREATE TABLE market_catalogue (
    exchange        TEXT    NOT NULL,   -- bybit | bingx
    symbol          TEXT    NOT NULL,   -- BTC/USDT
    tick_size       TEXT    NOT NULL,
    qty_step        TEXT    NOT NULL,
    min_qty         TEXT    NOT NULL,
    min_notional    TEXT    NOT NULL,
    max_leverage    INTEGER NOT NULL,
    last_price      TEXT,
    funding_rate    TEXT,
    next_funding_at INTEGER,            -- Unix seconds
    PRIMARY KEY (exchange, symbol)
) WITHOUT ROWID;

-- The last 1000 candles of one (exchange, symbol, interval), oldest first, as a JSON
-- array of [t_ms, "open", "high", "low", "close", "volume"].
CREATE TABLE market_candles (
    exchange TEXT NOT NULL,
    symbol   TEXT NOT NULL,
    interval TEXT NOT NULL,
    candles  TEXT NOT NULL,
    PRIMARY KEY (exchange, symbol, interval)
) WITHOUT ROWID;

-- Refresh bookkeeping of each cached item (`catalogue:bybit`,
-- `candles:bybit:BTC/USDT:1m`): when it was last fetched, when a fetch last failed,
-- until when one process holds the claim to fetch it, and when a reader last found
-- it due (`read_ms`: written by the claim, so at most once per period; candles not
-- read for an hour are swept). A process fetches only after winning the claim with
-- one UPDATE, so the whole instance makes at most one request per item per refresh
-- period. Rows exist only for validated items (listed symbols).
CREATE TABLE market_refresh (
    item             TEXT    PRIMARY KEY,
    fetched_ms       INTEGER NOT NULL DEFAULT 0,
    failed_ms        INTEGER NOT NULL DEFAULT 0,
    claimed_until_ms INTEGER NOT NULL DEFAULT 0,
    read_ms          INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
