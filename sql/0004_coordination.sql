-- Failed logins are counted by the coordination backend (shared memory or Redis)
-- since rate limits moved there; the table that held them is no longer used.
DROP INDEX IF EXISTS idx_login_failures_key;
DROP INDEX IF EXISTS idx_login_failures_at;
DROP TABLE IF EXISTS login_failures;
