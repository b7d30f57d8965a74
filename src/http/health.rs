//! Health endpoints (docs/http-api.md, Health): `/healthz` (no I/O), `/livez`, `/readyz`.

use crate::coord::breaker::RedisState;
use blitz_master::{clock, Scoreboard, SlotState};
use blitz_worker::Response;
use serde_json::json;

use super::reply;
use crate::log::SecondClock;
use crate::runner::stats::RunnerStats;
use crate::store::{cluster, Db};

/// The bot runner's heartbeat may be this old before the instance is unready.
const RUNNER_STALE_MS: u64 = 10_000;

/// Pre-renders the constant parts of `/healthz` so the hot path only splices in the
/// cached timestamp.
pub struct Health {
    healthz_head: String,
    clock: SecondClock,
    /// On PostgreSQL: this instance's name and the lease time in ms (C18).
    cluster: Option<(String, i64)>,
}

impl Health {
    pub fn new(version: &str) -> Health {
        let version = serde_json::to_string(version).unwrap_or_else(|_| "\"unknown\"".into());
        Health {
            healthz_head: format!("{{\"status\":\"ok\",\"version\":{version},\"timestamp\":\""),
            clock: SecondClock::default(),
            cluster: None,
        }
    }

    /// A cluster member: `/readyz` reports the cluster (C18).
    pub fn in_cluster(mut self, instance: &str, lease_seconds: u64) -> Health {
        self.cluster = Some((instance.to_string(), lease_seconds as i64 * 1000));
        self
    }

    /// `{"status","instances","bots_owned"}`: the instances seen within the lease,
    /// and the bots this one holds, as its runner last wrote them. Informational:
    /// the runner's own check is `bot_manager`.
    fn cluster(&self, db: &mut Db) -> Option<serde_json::Value> {
        let (name, lease_ms) = self.cluster.as_ref()?;
        let seen = db.conn().and_then(|conn| {
            let now = cluster::db_now_ms(&conn)?;
            cluster::live_instances(&conn, now - lease_ms)
        });
        Some(match seen {
            Ok(live) => {
                let me = live.iter().find(|i| &i.name == name);
                json!({
                    "status": if me.is_some() { "ok" } else { "error" },
                    "instances": live.len(),
                    "bots_owned": me.map_or(0, |i| i.bots_owned),
                })
            }
            Err(e) => json!({"status": "error", "error": e.to_string()}),
        })
    }

    pub fn healthz(&mut self) -> Response {
        let ts = self.clock.rfc3339();
        let mut body = String::with_capacity(self.healthz_head.len() + 64);
        body.push_str(&self.healthz_head);
        body.push_str(ts);
        body.push_str("\",\"service\":\"blitz-test-server\"}");
        reply::raw_json(200, body.into_bytes())
    }

    pub fn livez(&mut self) -> Response {
        let ts = self.clock.rfc3339();
        reply::raw_json(
            200,
            format!("{{\"status\":\"ok\",\"timestamp\":\"{ts}\"}}").into_bytes(),
        )
    }

    /// Database reachable, bot runner alive and agreeing with the database; Redis is
    /// not configured yet.
    /// Redis is reported but never makes the instance unready: limits and
    /// guards fall back to the local tables.
    pub fn readyz(&mut self, db: &mut Db, sb: &Scoreboard, redis: RedisState) -> Response {
        let database = match db.ping() {
            Ok(()) => json!({"status": "ok"}),
            Err(e) => json!({"status": "error", "error": e.to_string()}),
        };
        let runner = sb.slot(Scoreboard::singleton_slot(0));
        let age_ms = clock::now_ms().saturating_sub(runner.heartbeat_ms());
        let alive =
            runner.state() != SlotState::Free && runner.pid() != 0 && age_ms <= RUNNER_STALE_MS;
        // The runner compares its running bots with the database every few seconds
        // under the same lock as its state changes, and publishes both counts.
        let (running, db_running, checked_ms) = RunnerStats::of(sb).read();
        let check_age_ms = clock::now_ms().saturating_sub(checked_ms);
        let consistent =
            checked_ms != 0 && check_age_ms <= RUNNER_STALE_MS && running == db_running;
        // After a binary upgrade the new runner waits for the old one, which still
        // runs the bots: this instance is ready to serve meanwhile.
        let standby = checked_ms == 0
            && clock::now_ms().saturating_sub(RunnerStats::of(sb).standby_ms()) <= RUNNER_STALE_MS;
        let alive = alive && (consistent || standby);
        let mut bot_manager = json!({
            "status": if alive { "ok" } else { "error" },
            "running_bots": running,
            "heartbeat_age_s": (age_ms as f64 / 100.0).round() / 10.0,
        });
        if standby {
            bot_manager["standby"] =
                json!("the previous master's bot runner runs the bots until it stops");
        }
        if checked_ms != 0 && running != db_running {
            bot_manager["error"] = json!(format!(
                "the bot runner runs {running} bots, the database says {db_running}"
            ));
        }
        let stopping = sb.stopping();
        let ok = database["status"] == "ok" && alive && !stopping;
        let mut body = json!({
            "status": if ok { "ok" } else { "error" },
            "timestamp": self.clock.rfc3339(),
            "checks": {
                "database": database,
                "bot_manager": bot_manager,
                "redis": {"status": redis.as_str()},
            },
        });
        if let Some(cluster) = self.cluster(db) {
            body["checks"]["cluster"] = cluster;
        }
        if stopping {
            body["message"] = json!("shutting down");
        }
        reply::json(if ok { 200 } else { 503 }, &body)
    }
}
