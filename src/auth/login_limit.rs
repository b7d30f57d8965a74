//! Failed-login limiting: at most 5 failed attempts per minute per (e-mail, client
//! IP) pair and 20 per minute per client IP, on the coordination backend, so every
//! worker and, with Redis, every instance counts together.
//! See docs/http-api.md, Accounts.
//!
//! The e-mail is counted only together with the address it was tried from: wrong
//! passwords sent from elsewhere must never lock the owner out of an address that
//! did not fail. Guessing one account from many addresses is bounded by each
//! address's own window.
//!
//! Each attempt takes a place in both windows before the password is checked, so
//! parallel guesses cannot slip past the count; an attempt with the right password
//! gives its places back and clears the pair's window (the IP's earlier failures
//! stay, so one good account cannot launder guesses against others).

use crate::coord::{Backend, Check, Decision, Group, Subject, Ticket};

/// Failed attempts per (e-mail, client IP) pair in a window.
pub const PAIR_LIMIT: u32 = 5;
/// Failed attempts per client IP in a window, over all e-mails.
pub const IP_LIMIT: u32 = 20;
pub const WINDOW_MS: u64 = 60_000;

/// One attempt's places in the two windows.
pub struct Attempt<'a> {
    checks: [Check<'a>; 2],
    ticket: Option<Ticket>,
}

fn checks<'a>(email: &'a str, ip: &'a str) -> [Check<'a>; 2] {
    let check = |group, subject, max| Check {
        group,
        subject,
        max,
        window_ms: WINDOW_MS,
    };
    [
        check(Group::LoginPair, Subject::EmailIp(email, ip), PAIR_LIMIT),
        check(Group::LoginIp, Subject::Ip(ip), IP_LIMIT),
    ]
}

/// Starts an attempt, or returns the seconds until one is allowed.
pub fn begin<'a>(limiter: &dyn Backend, email: &'a str, ip: &'a str) -> Result<Attempt<'a>, u64> {
    let checks = checks(email, ip);
    let ticket = admit(limiter, &checks)?;
    Ok(Attempt { checks, ticket })
}

/// A place in every window of `checks`: the admission's ticket (`None` if the
/// backend failed), or the seconds until one is allowed.
fn admit(limiter: &dyn Backend, checks: &[Check<'_>]) -> Result<Option<Ticket>, u64> {
    match limiter.admit(checks) {
        Ok(Decision::Allowed { ticket, .. }) => Ok(Some(ticket)),
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
        Err(_) => Ok(None),
    }
}

/// Wrong second-factor codes per account in `CODE_WINDOW_MS`, from every address
/// together. Whoever has the password can win a login ticket from each address
/// they hold, so the per-address windows alone do not bound the guesses at one
/// account's codes; this does (at worst it also holds up the owner's code step
/// for a while, which only someone with the password can cause).
pub const CODE_LIMIT: u32 = 10;
pub const CODE_WINDOW_MS: u64 = 15 * 60_000;

/// One second-factor code's place in its account's window.
pub struct CodeAttempt {
    check: Check<'static>,
    ticket: Option<Ticket>,
}

/// Starts a code attempt for `user_id`, or returns the seconds until one is
/// allowed.
pub fn begin_code(limiter: &dyn Backend, user_id: i64) -> Result<CodeAttempt, u64> {
    let check = Check {
        group: Group::TwoFactorUser,
        subject: Subject::User(user_id),
        max: CODE_LIMIT,
        window_ms: CODE_WINDOW_MS,
    };
    let ticket = admit(limiter, &[check])?;
    Ok(CodeAttempt { check, ticket })
}

impl CodeAttempt {
    /// The code was right: this attempt was no failure. Earlier wrong codes stay
    /// counted, so the owner's login does not hand a guesser a fresh window.
    pub fn right(self, limiter: &dyn Backend) {
        if let Some(t) = &self.ticket {
            let _ = limiter.refund(&[self.check], t);
        }
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
        self.not_failed(limiter);
    }

    /// This attempt was no failure; earlier failures stay counted (a password
    /// checked for a logged-in caller must not wipe out someone else's guesses).
    pub fn not_failed(self, limiter: &dyn Backend) {
        if let Some(t) = &self.ticket {
            let _ = limiter.refund(&self.checks, t);
        }
    }
}
