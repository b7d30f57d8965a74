//! Rate limits of routes: per user (per client IP when anonymous) and, for the
//! bot groups, the group's ceiling across everyone, on the coordination backend.
//! Registration counts per client IP. Admins are exempt. Every limited response
//! carries `X-RateLimit-*`.
//! See docs/http-api.md, Rate limits.

use blitz_worker::Response;

use super::reply;
use crate::auth::Identity;
use crate::config::{Rate, RateLimits};
use crate::coord::{Backend, Check, Decision, Group, Room, Subject};
use crate::metrics;

fn rate(limits: &RateLimits, group: Group) -> &Rate {
    match group {
        Group::Start => &limits.start,
        Group::Stop => &limits.stop,
        Group::Recover => &limits.recover,
        Group::Register => &limits.register,
        _ => &limits.status,
    }
}

fn check<'a>(group: Group, subject: Subject<'a>, rate: &Rate) -> Check<'a> {
    Check {
        group,
        subject,
        max: rate.count,
        window_ms: rate.period.as_millis() as u64,
    }
}

/// The outcome for one request.
pub enum Verdict {
    /// Not limited (admin): no headers.
    Exempt,
    /// Admitted: these headers go on the response.
    Allowed { limit: u32, room: Room },
    /// Over a limit: the whole answer.
    Refused(Response),
}

/// Admits or refuses one request of `group`.
pub fn admit(
    backend: &dyn Backend,
    limits: &RateLimits,
    group: Group,
    identity: &Identity,
    client_ip: &str,
) -> Verdict {
    if identity.is_admin() {
        return Verdict::Exempt;
    }
    let ip = crate::coord::ip_key(client_ip);
    let subject = match identity.user_id() {
        Some(uid) => Subject::User(uid),
        None => Subject::Ip(&ip),
    };
    let checks = [
        check(group, subject, rate(limits, group)),
        check(group, Subject::All, &limits.global),
    ];
    let checks = if group.has_ceiling() {
        &checks[..]
    } else {
        &checks[..1]
    };
    match backend.admit(checks) {
        Ok(Decision::Allowed { rooms, .. }) => Verdict::Allowed {
            limit: checks[0].max,
            room: rooms[0],
        },
        Ok(Decision::Denied { index, retry_ms }) => {
            metrics::rate_limited(group.name());
            // Round up: a client that waits `Retry-After` seconds finds room.
            let retry_s = retry_ms.div_ceil(1000).max(1);
            let body = serde_json::json!({"error": "Rate limit exceeded", "retry_after": retry_s});
            let room = Room {
                remaining: 0,
                reset_ms: retry_ms,
            };
            let resp = reply::json(429, &body).header("Retry-After", retry_s.to_string());
            Verdict::Refused(headers(resp, checks[index].max, room))
        }
        // Only if even the local tables fail: serve rather than refuse everyone.
        Err(_) => Verdict::Exempt,
    }
}

/// Adds `X-RateLimit-Limit/Remaining/Reset` (seconds until the oldest request in
/// the window leaves it, that is until `Remaining` grows).
pub fn headers(resp: Response, limit: u32, room: Room) -> Response {
    resp.header("X-RateLimit-Limit", limit.to_string())
        .header("X-RateLimit-Remaining", room.remaining.to_string())
        .header(
            "X-RateLimit-Reset",
            room.reset_ms.div_ceil(1000).to_string(),
        )
}
