-- Each paper account keeps the last funding boundary settled for it (docs/bots.md,
-- Paper exchange). One clock for the whole exchange was right on one host; in a
-- cluster each instance funds only the accounts it holds, so an account adopted
-- from an instance that died before a boundary must still be settled for it, and
-- one settled by its previous holder must not be settled again.
ALTER TABLE paper_accounts ADD COLUMN funded_ms BIGINT;
UPDATE paper_accounts SET funded_ms = (SELECT funded_ms FROM paper_clock WHERE id = 1);
