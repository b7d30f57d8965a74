//! Metric hooks of the bot operations (C4.2 `bot_starts_total`, `bot_stops_total`,
//! `bot_recovers_total` `{user_id,status}`, `active_bots_total`) and of the per-user
//! guard (conflicts). The call sites are
//! final; the shared-memory metric cells that store them belong to the multiprocess
//! metrics module, which replaces these bodies.

/// A start, stop or recover finished with `status` (the API's status word).
pub fn bot_operation(op: &str, user_id: i64, status: &str) {
    let _ = (op, user_id, status);
}

/// The number of bots the runner is running.
pub fn active_bots(count: u64) {
    let _ = count;
}

/// A start/stop/recover refused because another one of the same user was running.
pub fn guard_conflict() {}

/// A request of `group` refused by a rate limit (C6.1).
pub fn rate_limited(group: &str) {
    let _ = group;
}

/// A rate-limit table of `group` had no free cell near a new key: that key went
/// unlimited for one request (its group's ceiling still applied).
pub fn limit_table_full(group: &str) {
    let _ = group;
}

/// A Redis call failed (`op`: admit, clear, guard, ping).
pub fn redis_error(op: &str) {
    let _ = op;
}

/// Coordination fell back from Redis to the local tables.
pub fn redis_fallback() {}
