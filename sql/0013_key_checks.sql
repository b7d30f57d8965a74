-- Key checks and egress proxies of exchange accounts (docs/bots.md, API keys and
-- Proxies; CONTRACT C16).
--
-- What the exchange said about the account's key when it was last saved. All NULL
-- for an account saved before key checks existed: it was never checked, and the
-- API says so (`"key": null`) rather than inventing permissions.
ALTER TABLE exchange_accounts ADD COLUMN key_trade INTEGER CHECK (key_trade IN (0, 1));
ALTER TABLE exchange_accounts ADD COLUMN key_read_only INTEGER CHECK (key_read_only IN (0, 1));
-- Unix seconds; NULL: the key does not expire.
ALTER TABLE exchange_accounts ADD COLUMN key_expires_at INTEGER;
-- JSON array of addresses; NULL: the key works from any address.
ALTER TABLE exchange_accounts ADD COLUMN key_ip_whitelist TEXT;
-- Unix seconds of the check; NULL: never checked.
ALTER TABLE exchange_accounts ADD COLUMN key_checked_at INTEGER;

-- The egress proxy, sealed like the keys (context `user:<id>:proxy`); NULL: direct.
ALTER TABLE exchange_accounts ADD COLUMN proxy_enc TEXT;
-- The same proxy without its credentials (`socks5://host:port`), for listing
-- without opening the sealed value.
ALTER TABLE exchange_accounts ADD COLUMN proxy_shown TEXT;
