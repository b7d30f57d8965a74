-- The built-in paper exchange: simulated markets, balances, leverage, orders
-- and hedge-mode positions, written through on every change so that a restart of
-- the bot runner resumes exactly where it stopped.
-- Timestamps are Unix milliseconds; amounts are USDT, quantities base-asset units.
-- See docs/bots.md, Exchanges.

-- One row per symbol that ever was asked for. `step_no` counts random-walk steps, so
-- a restart continues the same seeded price sequence; `updated_ms` is the time the
-- last step stands for (the walk catches up from there).
CREATE TABLE paper_markets (
    symbol      TEXT    PRIMARY KEY,
    price       REAL    NOT NULL CHECK (price > 0),
    step_no     INTEGER NOT NULL DEFAULT 0,
    updated_ms  INTEGER NOT NULL
);

-- Wallet balance, created with the starting balance on a user's first order.
CREATE TABLE paper_accounts (
    user_id  INTEGER PRIMARY KEY REFERENCES user (id) ON DELETE CASCADE,
    balance  REAL    NOT NULL
);

-- Leverage per symbol; a missing row means the default (10).
CREATE TABLE paper_leverage (
    user_id   INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    symbol    TEXT    NOT NULL,
    leverage  INTEGER NOT NULL CHECK (leverage BETWEEN 1 AND 125),
    PRIMARY KEY (user_id, symbol)
);

-- Every order ever accepted: client ids stay unique per account forever, which is
-- what makes the bots' deterministic ids (docs/bots.md, Client order ids) safe to retry.
CREATE TABLE paper_orders (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    client_id       TEXT    NOT NULL,
    symbol          TEXT    NOT NULL,
    side            TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    kind            TEXT    NOT NULL CHECK (kind IN ('market', 'limit')),
    -- Limit price; NULL for market orders.
    price           REAL,
    qty             REAL    NOT NULL,
    filled_qty      REAL    NOT NULL DEFAULT 0,
    avg_fill_price  REAL    NOT NULL DEFAULT 0,
    fee             REAL    NOT NULL DEFAULT 0,
    reduce_only     INTEGER NOT NULL CHECK (reduce_only IN (0, 1)),
    position_side   TEXT    NOT NULL CHECK (position_side IN ('long', 'short')),
    status          TEXT    NOT NULL
        CHECK (status IN ('open', 'partially_filled', 'filled', 'cancelled', 'rejected')),
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    UNIQUE (user_id, client_id)
);
-- Startup loads only the resting orders; closed ones accumulate, so keep the open
-- ones in a small partial index instead of scanning the whole history.
CREATE INDEX idx_paper_orders_open ON paper_orders (id)
    WHERE status IN ('open', 'partially_filled');

-- Hedge-mode positions, one per direction; a flat position has no row.
CREATE TABLE paper_positions (
    user_id    INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    symbol     TEXT    NOT NULL,
    side       TEXT    NOT NULL CHECK (side IN ('long', 'short')),
    size       REAL    NOT NULL CHECK (size > 0),
    avg_entry  REAL    NOT NULL,
    PRIMARY KEY (user_id, symbol, side)
);
