-- Hosts are peers (ARCHITECTURE §11, CONTRACT C18): the instances of a cluster and
-- which one drives each user's bots. Used on PostgreSQL only; the tables exist on
-- SQLite too so both schemas stay one (a single host needs no lease).

-- One row per instance (INSTANCE_NAME), written by its bot runner every third of
-- BOT_LEASE_SECONDS. An instance is live while seen_at_ms is recent.
CREATE TABLE cluster_instances (
    name           TEXT    PRIMARY KEY,
    started_at_ms  BIGINT  NOT NULL,
    seen_at_ms     BIGINT  NOT NULL,
    -- The bots this instance's runner holds (running or wanted), as of seen_at_ms.
    bots_owned     BIGINT  NOT NULL DEFAULT 0
);

-- Who drives a user's bots: per user, not per bot, since the user's paper account
-- lives in its driver's memory and an exchange account has one private stream.
-- epoch grows by one at each change of holder (the fencing token); a lease whose
-- expires_at_ms has passed (database clock) may be taken by another instance.
CREATE TABLE user_leases (
    user_id        BIGINT  PRIMARY KEY REFERENCES "user" (id) ON DELETE CASCADE,
    instance       TEXT    NOT NULL,
    epoch          BIGINT  NOT NULL,
    expires_at_ms  BIGINT  NOT NULL
);
CREATE INDEX user_leases_instance ON user_leases (instance);
