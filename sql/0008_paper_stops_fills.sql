-- The paper exchange gains conditional stops, a fill history and a persisted epoch
-- (docs/bots.md, Exchanges and Replayed paper prices).

-- paper_orders: `kind` may be 'stop' (a reduce-only conditional market order), whose
-- trigger (mark) price is the new `trigger_price` column. SQLite cannot widen a
-- CHECK in place, so the table is rebuilt with every row, index and key as it was.
CREATE TABLE paper_orders_stops (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    client_id       TEXT    NOT NULL,
    symbol          TEXT    NOT NULL,
    side            TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    kind            TEXT    NOT NULL CHECK (kind IN ('market', 'limit', 'stop')),
    -- Limit price; NULL for market and stop orders.
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
    -- Trigger (mark) price of a stop; NULL for the other kinds.
    trigger_price   TEXT,
    UNIQUE (user_id, client_id)
);
INSERT INTO paper_orders_stops (id, user_id, client_id, symbol, side, kind, price, qty,
    filled_qty, avg_fill_price, fee, reduce_only, position_side, status, created_ms, updated_ms)
SELECT id, user_id, client_id, symbol, side, kind, price, qty,
    filled_qty, avg_fill_price, fee, reduce_only, position_side, status, created_ms, updated_ms
FROM paper_orders;
DROP TABLE paper_orders;
ALTER TABLE paper_orders_stops RENAME TO paper_orders;
CREATE INDEX idx_paper_orders_open ON paper_orders (id)
    WHERE status IN ('open', 'partially_filled');

-- Every fill, whoever's order it was: what `executions` reads (the bots' ledger of
-- fills, a manual close's exit price). The client id is the order's.
CREATE TABLE paper_fills (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    order_id  INTEGER NOT NULL REFERENCES paper_orders (id) ON DELETE CASCADE,
    symbol    TEXT    NOT NULL,
    side      TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    qty       TEXT    NOT NULL,
    price     TEXT    NOT NULL,
    -- USDT paid (positive).
    fee       TEXT    NOT NULL,
    time_ms   INTEGER NOT NULL
);
CREATE INDEX idx_paper_fills_account ON paper_fills (user_id, symbol, time_ms);

-- Orders filled before this release: each filled completely in one go (the paper
-- exchange has no partial fills), so each is exactly one fill, at its last update.
INSERT INTO paper_fills (user_id, order_id, symbol, side, qty, price, fee, time_ms)
SELECT user_id, id, symbol, side, filled_qty, avg_fill_price, fee, updated_ms
FROM paper_orders
WHERE CAST(filled_qty AS REAL) > 0
ORDER BY id;

-- The paper exchange's epoch: when its state was first created (replayed prices
-- count their seconds from it). One row, written by the first start that finds none
-- (a new database, or one made before this release).
CREATE TABLE paper_clock (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    epoch_ms  INTEGER NOT NULL
);
