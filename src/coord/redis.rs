//! The Redis backend: one Lua script per operation, so each is atomic across
//! every instance that shares the server.
//!
//! Windows are sorted sets of admission times (the server's clock, `TIME`, so
//! instances with drifting clocks agree); guards are `SET NX PX` with the owner's
//! token and a compare-and-delete release, expiring after `--timeout` so a dead
//! owner's guard goes away. Every call is bounded by the connect/read/write timeout
//! (≤ 250 ms); an error drops the connection, and the `breaker` decides what next.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use super::{Backend, Check, CoordError, Decision, GuardToken, Room, Ticket, MAX_CHECKS};

/// `KEYS` = the windows; `ARGV` = member, then (max, window_ms) per key.
/// Returns `{0, index, retry_ms}` when key `index` (1-based) is full, else
/// `{1, remaining1, reset1, remaining2, reset2, ...}`.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do
  local max = tonumber(ARGV[2 * i])
  local win = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - win)
  if redis.call('ZCARD', KEYS[i]) >= max then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    return {0, i, tonumber(oldest[2]) + win - now}
  end
end
local out = {1}
for i = 1, #KEYS do
  local max = tonumber(ARGV[2 * i])
  local win = tonumber(ARGV[2 * i + 1])
  redis.call('ZADD', KEYS[i], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], win)
  local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  out[2 * i] = max - redis.call('ZCARD', KEYS[i])
  out[2 * i + 1] = tonumber(oldest[2]) + win - now
end
return out
";

/// Deletes the guard only if this owner still holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// An admission: the member it added to each window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisTicket {
    member: String,
}

/// A held guard: its key and this holder's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisGuard {
    key: String,
    owner: String,
}

pub struct RedisBackend {
    client: redis::Client,
    /// Sent by us after connecting, under the read/write timeouts: the crate would
    /// send them inside its connect, where only what is left of the connect
    /// timeout bounds them.
    auth: Option<(Option<String>, String)>,
    db: i64,
    timeout: Duration,
    guard_ttl_ms: u64,
    conn: RefCell<Option<redis::Connection>>,
    admit: redis::Script,
    release: redis::Script,
    /// Makes members and guard tokens unique across processes and instances.
    nonce: String,
    counter: Cell<u64>,
}

/// An I/O error that is neither a timeout nor a dropped connection, which redis
/// says to retry at once: chiefly a call interrupted by a signal (EINTR).
fn interrupted(e: &redis::RedisError) -> bool {
    e.is_io_error()
        && !e.is_timeout()
        && !e.is_connection_dropped()
        && matches!(e.retry_method(), redis::RetryMethod::RetryImmediately)
}

fn redis_err(e: redis::RedisError) -> CoordError {
    CoordError::Redis(e.to_string())
}

fn key(check: &Check<'_>) -> String {
    format!("blitz:rl:{}:{}", check.group.name(), check.subject)
}

impl RedisBackend {
    /// A backend for `url`; it connects on first use (after fork).
    pub fn new(
        url: &str,
        timeout: Duration,
        guard_ttl: Duration,
    ) -> Result<RedisBackend, CoordError> {
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| CoordError::Redis(e.to_string()))?;
        use redis::IntoConnectionInfo;
        let info = url.into_connection_info().map_err(redis_err)?;
        let from_url = info.redis_settings();
        let auth = from_url
            .password()
            .map(|p| (from_url.username().map(str::to_owned), p.to_owned()));
        let db = from_url.db();
        // The crate's own handshake keeps only the protocol: no AUTH or SELECT
        // (ours follow, see `handshake`) and no CLIENT SETINFO.
        let settings = redis::RedisConnectionInfo::default()
            .set_protocol(from_url.protocol())
            .set_skip_set_lib_name();
        let info = info.set_redis_settings(settings);
        Ok(RedisBackend {
            client: redis::Client::open(info).map_err(redis_err)?,
            auth,
            db,
            timeout,
            guard_ttl_ms: guard_ttl.as_millis().max(1) as u64,
            conn: RefCell::new(None),
            admit: redis::Script::new(ADMIT),
            release: redis::Script::new(RELEASE),
            nonce: format!("{:016x}", u64::from_le_bytes(raw)),
            counter: Cell::new(0),
        })
    }

    fn unique(&self) -> String {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        format!("{}:{}:{n}", self.nonce, std::process::id())
    }

    /// Runs `f` on the connection, connecting first if needed; an error drops the
    /// connection so that the next call starts afresh. A kept connection found
    /// dropped (the server restarted since) is replaced and `f` tried once more:
    /// nothing reached the old server's successor, so nothing runs twice.
    ///
    /// A call interrupted by a signal (a socket with a timeout is not restarted
    /// after a signal handler, whatever `SA_RESTART` says: `signal(7)`) is tried
    /// once more on a new connection. The first may have run: a rate limit then
    /// counts one request twice (the safe side), and `acquire_guard` recognises
    /// its own token.
    fn with<T>(
        &self,
        f: impl Fn(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, CoordError> {
        let mut slot = self.conn.borrow_mut();
        let kept = slot.is_some();
        let out = match slot.as_mut() {
            Some(conn) => f(conn),
            None => self.connect().and_then(|c| f(slot.insert(c))),
        };
        let out = match out {
            Err(e) if (kept && e.is_connection_dropped()) || interrupted(&e) => {
                *slot = None;
                self.connect().and_then(|c| f(slot.insert(c)))
            }
            other => other,
        };
        if out.is_err() {
            *slot = None;
        }
        out.map_err(redis_err)
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let mut conn = self.client.get_connection_with_timeout(self.timeout)?;
        conn.set_read_timeout(Some(self.timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        self.handshake(&mut conn)?;
        Ok(conn)
    }

    /// `AUTH` and `SELECT` from the URL, now that the timeouts apply.
    fn handshake(&self, conn: &mut redis::Connection) -> redis::RedisResult<()> {
        if let Some((user, password)) = &self.auth {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = user {
                auth.arg(user);
            }
            auth.arg(password).query::<()>(conn)?;
        }
        if self.db != 0 {
            redis::cmd("SELECT").arg(self.db).query::<()>(conn)?;
        }
        Ok(())
    }

    /// The counters at `keys` (`coord::bus`), 0 for a key that does not exist.
    pub fn counters(&self, keys: &[&str]) -> Result<Vec<u64>, CoordError> {
        let found: Vec<Option<u64>> = self.with(|c| redis::cmd("MGET").arg(keys).query(c))?;
        if found.len() != keys.len() {
            return Err(CoordError::Reply(format!("{found:?}")));
        }
        Ok(found.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Moves the counter at `key` on (`coord::bus`).
    pub fn bump(&self, key: &str) -> Result<(), CoordError> {
        self.with(|c| redis::cmd("INCR").arg(key).query::<u64>(c))
            .map(drop)
    }

    /// `PING`: is the server answering now?
    pub fn ping(&self) -> Result<(), CoordError> {
        self.with(|c| redis::cmd("PING").query::<String>(c))
            .map(drop)
    }
}

fn decode(reply: &[i64], n: usize, member: String) -> Result<Decision, CoordError> {
    let bad = || CoordError::Reply(format!("{reply:?}"));
    match reply {
        [0, index, retry] => Ok(Decision::Denied {
            index: usize::try_from(*index - 1).map_err(|_| bad())?,
            retry_ms: (*retry).max(1) as u64,
        }),
        [1, rest @ ..] if rest.len() == 2 * n => {
            let mut rooms = [Room::default(); MAX_CHECKS];
            for (room, pair) in rooms.iter_mut().zip(rest.chunks(2)) {
                *room = Room {
                    remaining: u32::try_from(pair[0].max(0)).map_err(|_| bad())?,
                    reset_ms: pair[1].max(0) as u64,
                };
            }
            Ok(Decision::Allowed {
                rooms,
                ticket: Ticket::Redis(RedisTicket { member }),
            })
        }
        _ => Err(bad()),
    }
}

impl Backend for RedisBackend {
    fn admit(&self, checks: &[Check<'_>]) -> Result<Decision, CoordError> {
        let checks = &checks[..checks.len().min(MAX_CHECKS)];
        let member = self.unique();
        let reply: Vec<i64> = self.with(|c| {
            let mut inv = self.admit.prepare_invoke();
            inv.arg(&member);
            for check in checks {
                inv.key(key(check)).arg(check.max).arg(check.window_ms);
            }
            inv.invoke(c)
        })?;
        decode(&reply, checks.len(), member)
    }

    fn refund(&self, checks: &[Check<'_>], ticket: &Ticket) -> Result<(), CoordError> {
        let Ticket::Redis(t) = ticket else {
            return Ok(());
        };
        self.with(|c| {
            let mut pipe = redis::pipe();
            for check in checks {
                pipe.cmd("ZREM").arg(key(check)).arg(&t.member).ignore();
            }
            pipe.query::<()>(c)
        })
    }

    fn clear(&self, check: &Check<'_>) -> Result<(), CoordError> {
        self.with(|c| redis::cmd("DEL").arg(key(check)).query::<()>(c))
    }

    fn acquire_guard(&self, uid: i64) -> Result<Option<GuardToken>, CoordError> {
        let guard = RedisGuard {
            key: format!("blitz:guard:{uid}"),
            owner: self.unique(),
        };
        let set: Option<String> = self.with(|c| {
            redis::cmd("SET")
                .arg(&guard.key)
                .arg(&guard.owner)
                .arg("NX")
                .arg("PX")
                .arg(self.guard_ttl_ms)
                .query(c)
        })?;
        // Refused: held by another, or by this very call when a first try that
        // was interrupted had set it (`with`).
        let ours = match set {
            Some(_) => true,
            None => {
                let holder: Option<String> =
                    self.with(|c| redis::cmd("GET").arg(&guard.key).query(c))?;
                holder.as_deref() == Some(guard.owner.as_str())
            }
        };
        Ok(ours.then_some(GuardToken::Redis(guard)))
    }

    fn release_guard(&self, token: &GuardToken) -> Result<(), CoordError> {
        let GuardToken::Redis(g) = token else {
            return Ok(());
        };
        self.with(|c| {
            self.release
                .key(&g.key)
                .arg(&g.owner)
                .invoke::<i64>(c)
                .map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind};

    #[test]
    fn only_a_call_interrupted_by_a_signal_counts_as_interrupted() {
        let redis = |k| redis::RedisError::from(Error::from(k));
        assert!(super::interrupted(&redis(ErrorKind::Interrupted)));
        assert!(!super::interrupted(&redis(ErrorKind::ConnectionReset)));
        assert!(!super::interrupted(&redis(ErrorKind::TimedOut)));
    }
}
