//! Cross-process coordination: rate limits and the per-user operation guard,
//! behind one trait with two backends; and, across instances, the notifications
//! that keep the workers' caches true (`bus`).
//! See docs/operations.md, Coordination.
//!
//! - `local` keeps its tables in the master's shared segment: correct across every
//!   worker of one instance, and unaffected by worker recycling.
//! - `redis` runs one Lua script per operation: correct across instances.
//!
//! `Coordinator` is what the HTTP side holds: Redis when configured and reachable,
//! otherwise the local tables (`breaker`).
//!
//! Rate limits are an exact sliding window: a request is admitted when fewer than
//! `max` requests were admitted for that key in the last `window_ms`, so `N/minute`
//! allows a burst of N and never more than N in any 60 s. (GCRA with a burst of N
//! would let almost 2N through in some 60 s windows.)

pub mod breaker;
pub mod bus;
pub mod guards;
pub mod local;
pub mod redis;
pub mod window;

use std::fmt;

pub use breaker::Coordinator;

/// The limited bot groups, the failed-login limits, registration and wrong
/// second-factor codes. The local backend has one table per group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Start,
    Stop,
    Recover,
    Status,
    /// Failed logins per (e-mail, client IP) pair.
    LoginPair,
    /// Failed logins per client IP, whatever the e-mail.
    LoginIp,
    /// Registrations per client IP.
    Register,
    /// Wrong second-factor codes per account, from every address together.
    TwoFactorUser,
}

impl Group {
    pub const ALL: [Group; 8] = [
        Group::Start,
        Group::Stop,
        Group::Recover,
        Group::Status,
        Group::LoginPair,
        Group::LoginIp,
        Group::Register,
        Group::TwoFactorUser,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Group::Start => "start",
            Group::Stop => "stop",
            Group::Recover => "recover",
            Group::Status => "status",
            Group::LoginPair => "login_email_ip",
            Group::LoginIp => "login_ip",
            Group::Register => "register",
            Group::TwoFactorUser => "two_factor_user",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the group also has a ceiling across all callers
    /// (`RATE_LIMITS_GLOBAL`): the bot groups only.
    pub fn has_ceiling(self) -> bool {
        matches!(
            self,
            Group::Start | Group::Stop | Group::Recover | Group::Status
        )
    }
}

/// The key of a client address: an IPv6 address counts by its /64 (one
/// subscriber's allocation, so one client cannot spread over 2^64 keys); IPv4 and
/// anything else as given.
pub fn ip_key(ip: &str) -> std::borrow::Cow<'_, str> {
    match ip.parse::<std::net::Ipv6Addr>() {
        Ok(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]).into()
        }
        _ => ip.into(),
    }
}

/// Whom a limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject<'a> {
    User(i64),
    Ip(&'a str),
    /// One e-mail tried from one client address.
    EmailIp(&'a str, &'a str),
    /// Everyone together: the global ceiling of the group.
    All,
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(id) => write!(f, "u:{id}"),
            Subject::Ip(ip) => write!(f, "ip:{ip}"),
            Subject::EmailIp(e, ip) => write!(f, "email:{e}|ip:{ip}"),
            Subject::All => f.write_str("all"),
        }
    }
}

/// One limit to pass: at most `max` admissions per `window_ms` for (group, subject).
#[derive(Clone, Copy, Debug)]
pub struct Check<'a> {
    pub group: Group,
    pub subject: Subject<'a>,
    pub max: u32,
    pub window_ms: u64,
}

/// The most checks one admission takes (a subject and its group's ceiling).
pub const MAX_CHECKS: usize = 2;

/// What is left of one check's window after an admission.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Room {
    /// Admissions still possible now.
    pub remaining: u32,
    /// Milliseconds until the oldest admission in the window leaves it.
    pub reset_ms: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Every check passed and each recorded this request.
    Allowed {
        rooms: [Room; MAX_CHECKS],
        ticket: Ticket,
    },
    /// `checks[index]` is full (nothing was recorded): one admission leaves its
    /// window in `retry_ms`.
    Denied { index: usize, retry_ms: u64 },
}

/// Identifies an admission so that it can be given back (`refund`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ticket {
    Local(local::LocalTicket),
    Redis(redis::RedisTicket),
}

/// A held per-user guard; give it back with `release_guard`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuardToken {
    Local(guards::Held),
    Redis(redis::RedisGuard),
    /// Redis's guard and the instance's own (`breaker` takes both, so that a fall
    /// back to the local table mid-operation still sees it).
    Both(guards::Held, redis::RedisGuard),
}

#[cfg(test)]
mod tests {
    #[test]
    fn ipv6_counts_by_its_64() {
        assert_eq!(super::ip_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(super::ip_key("2001:db8:1:2:ffff::9"), "2001:db8:1:2::/64");
        assert_eq!(super::ip_key("10.0.0.1"), "10.0.0.1");
        assert_eq!(super::ip_key("::ffff:10.0.0.1"), "::ffff:10.0.0.1");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    #[error("redis: {0}")]
    Redis(String),
    #[error("redis returned an unexpected reply: {0}")]
    Reply(String),
}

/// One coordination backend. Every call is atomic across the processes that
/// share the backend.
pub trait Backend {
    /// Admits a request if every check has room, recording it in each; otherwise
    /// records nothing.
    fn admit(&self, checks: &[Check<'_>]) -> Result<Decision, CoordError>;
    /// Gives an admission back (a successful login does not count as a failure).
    fn refund(&self, checks: &[Check<'_>], ticket: &Ticket) -> Result<(), CoordError>;
    /// Forgets every admission of one check's key.
    fn clear(&self, check: &Check<'_>) -> Result<(), CoordError>;
    /// Takes `uid`'s operation guard, or `None` while someone else holds it.
    fn acquire_guard(&self, uid: i64) -> Result<Option<GuardToken>, CoordError>;
    fn release_guard(&self, token: &GuardToken) -> Result<(), CoordError>;
}
