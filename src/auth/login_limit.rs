//! Failed-login limiting: at most 5 failed attempts per minute per e-mail and
//! per client IP, on the coordination backend, so every worker and, with Redis,
//! every instance counts together.
//!
//! Each attempt takes a place in both windows before the password is checked, so
//! parallel guesses cannot slip past the count; an attempt with the right password
//! gives its places back and clears the e-mail's window (the IP's earlier failures
//! stay, so one good account cannot launder guesses against others).

use crate::coord::{Backend, Check, Decision, Group, Subject, Ticket};

pub const LIMIT: u32 = 5;
pub const WINDOW_MS: u64 = 60_000;

/// One attempt's places in the two windows.
pub struct Attempt<'a> {
    checks: [Check<'a>; 2],
    ticket: Option<Ticket>,
}

fn checks<'a>(email: &'a str, ip: &'a str) -> [Check<'a>; 2] {
    let check = |group, subject| Check {
        group,
        subject,
        max: LIMIT,
        window_ms: WINDOW_MS,
    };
    [
        check(Group::LoginEmail, Subject::Email(email)),
        check(Group::LoginIp, Subject::Ip(ip)),
    ]
}

/// Starts an attempt, or returns the seconds until one is allowed.
pub fn begin<'a>(limiter: &dyn Backend, email: &'a str, ip: &'a str) -> Result<Attempt<'a>, u64> {
    let checks = checks(email, ip);
    match limiter.admit(&checks) {
        Ok(Decision::Allowed { ticket, .. }) => Ok(Attempt {
            checks,
            ticket: Some(ticket),
        }),
        // Round up: a client that waits `Retry-After` seconds must find room.
        Ok(Decision::Denied { index, retry_ms }) => {
            // The refused window's group, so login lock-outs show in
            // `blitz_rate_limit_rejections_total` like every other limit.
            if let Some(check) = checks.get(index) {
                crate::metrics::rate_limited(check.group.name());
            }
            Err(retry_ms.div_ceil(1000).max(1))
        }
        // Only reachable if even the local tables fail; do not lock everyone out.
        Err(_) => Ok(Attempt {
            checks,
            ticket: None,
        }),
    }
}

impl Attempt<'_> {
    /// The password was right: this attempt was no failure.
    pub fn succeeded(self, limiter: &dyn Backend) {
        if let Some(t) = &self.ticket {
            let _ = limiter.refund(&self.checks, t);
        }
        let _ = limiter.clear(&self.checks[0]);
    }

    /// The password was right but a second factor is still due: this attempt was
    /// no failure, yet earlier failures stay counted (wrong codes add to them).
    pub fn first_factor_passed(self, limiter: &dyn Backend) {
        if let Some(t) = &self.ticket {
            let _ = limiter.refund(&self.checks, t);
        }
    }
}
