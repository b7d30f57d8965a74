//! `Coordinator`: the backend the HTTP side uses. With Redis configured it uses
//! Redis until a call fails, then the local tables (logged, counted) until a retry
//! after `RETRY_AFTER` succeeds. Tickets and guards go back to the backend that
//! issued them; a Redis guard that cannot be released expires by itself.
//!
//! The breaker's state is one word in the shared segment, so all workers of the
//! instance switch together: one log line per transition, one worker probing Redis
//! per `RETRY_AFTER` (the others stay on the local tables meanwhile), and the same
//! answer from `/readyz` whichever worker serves it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use blitz_master::clock;

use blitz_master::Scoreboard;
use slog::{info, warn, Logger};

use super::local::LocalBackend;
use super::redis::RedisBackend;
use super::{Backend, Check, CoordError, Decision, GuardToken, Ticket};
use crate::config::Config;
use crate::metrics;

/// Connect, read and write timeout of every Redis call (250 ms: an unreachable Redis
/// delays a request only that long before the local fallback).
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// How long the local tables stand in before Redis is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);

fn retry_ms() -> u64 {
    RETRY_AFTER.as_millis() as u64
}

/// What `/readyz` reports for Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisState {
    Disabled,
    Ok,
    Error,
}

impl RedisState {
    pub fn as_str(self) -> &'static str {
        match self {
            RedisState::Disabled => "disabled",
            RedisState::Ok => "ok",
            RedisState::Error => "error",
        }
    }
}

pub struct Coordinator {
    local: LocalBackend,
    redis: Option<RedisBackend>,
    /// 0 while Redis is up; otherwise when (monotonic ms) to probe it again.
    down_until: &'static AtomicU64,
    log: Logger,
}

impl Coordinator {
    /// The coordinator of one worker (created after fork: no connection yet).
    pub fn new(sb: &Scoreboard, config: &Config, log: &Logger) -> Coordinator {
        let redis = config.redis_url.as_deref().and_then(|url| {
            RedisBackend::new(url, REDIS_TIMEOUT, config.timeout)
                .map_err(|e| warn!(log, "Redis is configured but unusable; using the local tables"; "error" => %e))
                .ok()
        });
        Coordinator {
            local: LocalBackend::new(sb, config.timeout.as_secs()),
            redis,
            down_until: &crate::shm::region(sb).redis_down_until,
            log: log.clone(),
        }
    }

    /// Redis, unless it is absent or down; once the rest is over, one worker (the
    /// one that pushes the next retry out) probes it.
    fn remote(&self) -> Option<&RedisBackend> {
        let redis = self.redis.as_ref()?;
        let until = self.down_until.load(Ordering::Acquire);
        if until == 0 {
            return Some(redis);
        }
        let now = clock::now_ms();
        let probe = now >= until
            && self
                .down_until
                .compare_exchange(until, now + retry_ms(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok();
        probe.then_some(redis)
    }

    fn failed(&self, op: &str, e: &CoordError) {
        metrics::redis_error(op);
        metrics::error(metrics::ErrorKind::Redis);
        let was = self
            .down_until
            .swap(clock::now_ms() + retry_ms(), Ordering::AcqRel);
        if was == 0 {
            warn!(self.log, "Redis unreachable; coordinating through the local tables"; "op" => op, "error" => %e);
            metrics::redis_fallback();
        }
    }

    fn succeeded(&self) {
        if self.down_until.swap(0, Ordering::AcqRel) != 0 {
            info!(
                self.log,
                "Redis reachable again; coordinating through Redis"
            );
        }
    }

    /// Runs `op` on Redis when it is up, else (or when it fails now) on the local
    /// tables.
    fn route<T>(
        &self,
        op: &str,
        f: impl Fn(&dyn Backend) -> Result<T, CoordError>,
    ) -> Result<T, CoordError> {
        if let Some(redis) = self.remote() {
            match f(redis) {
                Ok(v) => {
                    self.succeeded();
                    return Ok(v);
                }
                Err(e) => self.failed(op, &e),
            }
        }
        f(&self.local)
    }

    /// Runs `f` on Redis for the cluster notifications (`coord::bus`): `None`
    /// without Redis; an error while Redis rests after a failure or fails now
    /// (counted and logged like any other Redis failure).
    pub fn on_redis<T>(
        &self,
        op: &str,
        f: impl Fn(&RedisBackend) -> Result<T, CoordError>,
    ) -> Option<Result<T, CoordError>> {
        self.redis.as_ref()?;
        let Some(redis) = self.remote() else {
            return Some(Err(CoordError::Redis("down, retried shortly".into())));
        };
        Some(self.attempt(op, redis, f))
    }

    /// Like `on_redis`, but tries Redis even while it rests after a failure: for
    /// rare calls that must not be skipped (at most `REDIS_TIMEOUT` lost).
    pub fn on_redis_now<T>(
        &self,
        op: &str,
        f: impl Fn(&RedisBackend) -> Result<T, CoordError>,
    ) -> Option<Result<T, CoordError>> {
        let redis = self.redis.as_ref()?;
        Some(self.attempt(op, redis, f))
    }

    fn attempt<T>(
        &self,
        op: &str,
        redis: &RedisBackend,
        f: impl Fn(&RedisBackend) -> Result<T, CoordError>,
    ) -> Result<T, CoordError> {
        let out = f(redis);
        match &out {
            Ok(_) => self.succeeded(),
            Err(e) => self.failed(op, e),
        }
        out
    }

    /// Redis's state for `/readyz`: a live `PING` when it is up or due for a
    /// probe; `error` while it rests after a failure.
    pub fn redis_state(&self) -> RedisState {
        if self.redis.is_none() {
            return RedisState::Disabled;
        }
        let Some(redis) = self.remote() else {
            return RedisState::Error;
        };
        match redis.ping() {
            Ok(()) => {
                self.succeeded();
                RedisState::Ok
            }
            Err(e) => {
                self.failed("ping", &e);
                RedisState::Error
            }
        }
    }
}

impl Backend for Coordinator {
    fn admit(&self, checks: &[Check<'_>]) -> Result<Decision, CoordError> {
        self.route("admit", |b| b.admit(checks))
    }

    fn refund(&self, checks: &[Check<'_>], ticket: &Ticket) -> Result<(), CoordError> {
        match (ticket, &self.redis) {
            (Ticket::Redis(_), Some(redis)) => redis.refund(checks, ticket),
            _ => self.local.refund(checks, ticket),
        }
    }

    fn clear(&self, check: &Check<'_>) -> Result<(), CoordError> {
        self.route("clear", |b| b.clear(check))
    }

    /// The instance's own guard always, and Redis's too when it is up: workers
    /// that fall back mid-operation still see the operation in progress.
    fn acquire_guard(&self, uid: i64) -> Result<Option<GuardToken>, CoordError> {
        let Some(local) = self.local.acquire_guard(uid)? else {
            return Ok(None);
        };
        let GuardToken::Local(held) = local.clone() else {
            return Ok(Some(local));
        };
        let Some(redis) = self.remote() else {
            return Ok(Some(local));
        };
        match redis.acquire_guard(uid) {
            Ok(Some(GuardToken::Redis(g))) => {
                self.succeeded();
                Ok(Some(GuardToken::Both(held, g)))
            }
            Ok(_) => {
                self.succeeded();
                self.local.release_guard(&local)?;
                Ok(None)
            }
            Err(e) => {
                self.failed("guard", &e);
                Ok(Some(local))
            }
        }
    }

    fn release_guard(&self, token: &GuardToken) -> Result<(), CoordError> {
        match (token, &self.redis) {
            (GuardToken::Both(held, g), Some(redis)) => {
                self.local.release_guard(&GuardToken::Local(held.clone()))?;
                redis.release_guard(&GuardToken::Redis(g.clone()))
            }
            (GuardToken::Both(held, _), None) => {
                self.local.release_guard(&GuardToken::Local(held.clone()))
            }
            (GuardToken::Redis(_), Some(redis)) => redis.release_guard(token),
            _ => self.local.release_guard(token),
        }
    }
}
