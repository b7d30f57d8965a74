-- Every client order id a bot sent to an exchange, written before the request.
-- Real exchanges forget old orders (Bybit lists closed ones for days, BingX finds
-- client ids for hours), so "not found" is trusted only for a recent submission;
-- an id sent long ago is never placed again.
CREATE TABLE IF NOT EXISTS bot_orders (
    user_id INTEGER NOT NULL REFERENCES user(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    submitted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) WITHOUT ROWID;
