//! Cluster notifications: how a credential revocation, or a change of maintenance
//! or of the banner, made on one instance reaches the caches in every other
//! instance's workers (CONTRACT C18: within 1 s).
//!
//! Within one instance the workers share counters in shared memory
//! (`shm::Region::auth_epoch`, `notice_version`) that a change moves after it
//! committed. Across instances each concern (`Topic`) has a counter in Redis,
//! `blitz:bus:<topic>`: the request that made a change `INCR`s it after the
//! commit, and each worker reads every counter with one `MGET`, at most once per
//! `POLL`, on the first request that needs them. A cache entry made under other
//! counters is not trusted (`auth::cache`, `http::notice`).
//!
//! Why counters polled by the workers, not pub/sub:
//! - Latency: a change holds everywhere within `POLL` (250 ms) plus one round trip
//!   to Redis, well inside the contract's second, whatever the traffic.
//! - Cost: no Redis call on most requests; one `MGET` per worker per 250 ms of
//!   activity, none while a worker is idle. Pub/sub needs a connection held open
//!   for ever by some process and a way from it into the workers: the master must
//!   hold no connection when it forks, and the workers' event loop knows nothing of
//!   Redis.
//! - Nothing is lost: a counter read late still shows that something changed,
//!   where a message published while a subscriber reconnects is gone. A Redis that
//!   restarted empty reads as counters at 0: a change like any other.
//!
//! Fail safe: while Redis does not answer, or rests after a failure (`breaker`),
//! the view is `Unknown` and the caches trust nothing: every request reads its
//! credentials and the notice from the database, and the instance keeps serving.
//! A change is published even while Redis rests (changes are rare; each attempt
//! costs at most the 250 ms timeout). An instance whose `INCR` failed cannot tell
//! the others; their entries still expire after the caches' own `MAX_AGE` (1 s),
//! which bounds staleness even then.
//! Without Redis (`REDIS_URL` unset: one host) the view is `Alone` and only the
//! shared-memory counters count, as before. The commands that change credentials
//! outside the server (`blitz user set-password`, `reset-2fa`) publish too when
//! their environment names Redis (`publish_to`).

use std::time::{Duration, Instant};

use super::breaker::REDIS_TIMEOUT;
use super::redis::RedisBackend;
use super::{CoordError, Coordinator};

/// How long a worker trusts the counters it read (the latency bound above).
pub const POLL: Duration = Duration::from_millis(250);

/// The metrics label of the bus's Redis calls (`metrics::redis_error`).
const OP: &str = "bus";

/// A concern whose changes every instance must see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// Sessions and API tokens (a revocation, a password or role change).
    Credentials,
    /// Maintenance mode and the banner.
    Notice,
}

impl Topic {
    const ALL: [Topic; 2] = [Topic::Credentials, Topic::Notice];

    fn key(self) -> &'static str {
        match self {
            Topic::Credentials => "blitz:bus:credentials",
            Topic::Notice => "blitz:bus:notice",
        }
    }
}

/// What a worker knows of the cluster's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum View {
    /// No Redis: one host, whose own shared counters say everything.
    #[default]
    Alone,
    /// The counters, by `Topic` order, as read at most `POLL` ago.
    Known([u64; 2]),
    /// Redis did not answer: no cached entry can be trusted.
    Unknown,
}

impl View {
    /// The generation of `topic` to stamp a cache entry with; `None` when no
    /// entry may be trusted (nor made).
    pub fn generation(self, topic: Topic) -> Option<u64> {
        match self {
            View::Alone => Some(0),
            View::Known(counters) => Some(counters[topic as usize]),
            View::Unknown => None,
        }
    }
}

/// One worker's reading of the counters.
#[derive(Debug, Default)]
pub struct Bus {
    view: View,
    read_at: Option<Instant>,
}

impl Bus {
    pub fn new() -> Bus {
        Bus::default()
    }

    /// The counters as read at most `POLL` ago (read now when older).
    pub fn view(&mut self, coord: &Coordinator) -> View {
        if self.read_at.is_none_or(|at| at.elapsed() >= POLL) {
            self.view = read(coord);
            self.read_at = Some(Instant::now());
        }
        self.view
    }
}

fn read(coord: &Coordinator) -> View {
    let keys = Topic::ALL.map(Topic::key);
    match coord.on_redis(OP, |redis| redis.counters(&keys)) {
        None => View::Alone,
        Some(Ok(counters)) => counters.try_into().map_or(View::Unknown, View::Known),
        Some(Err(_)) => View::Unknown,
    }
}

/// Tells every instance that `topic` changed; call after the change committed.
/// Tried even while Redis rests after a failure: changes are rare and must not be
/// skipped. A failure is logged and counted by the breaker; the other instances
/// then see the change when their cache entries expire.
pub fn publish(coord: &Coordinator, topic: Topic) {
    let _ = coord.on_redis_now(OP, |redis| redis.bump(topic.key()));
}

/// `publish` from a process without a `Coordinator` (the CLI): one connection to
/// `url`, one `INCR`, each bounded by the usual 250 ms timeout.
pub fn publish_to(url: &str, topic: Topic) -> Result<(), CoordError> {
    RedisBackend::new(url, REDIS_TIMEOUT, REDIS_TIMEOUT)?.bump(topic.key())
}

#[cfg(test)]
mod tests {
    use super::{Topic, View};

    #[test]
    fn a_view_stamps_by_topic_and_trusts_nothing_when_unknown() {
        let known = View::Known([3, 7]);
        assert_eq!(known.generation(Topic::Credentials), Some(3));
        assert_eq!(known.generation(Topic::Notice), Some(7));
        assert_eq!(View::Alone.generation(Topic::Notice), Some(0));
        assert_eq!(View::Unknown.generation(Topic::Credentials), None);
    }
}
