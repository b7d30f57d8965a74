//! Failed-login limiting (C4.6): at most 5 failures per minute per e-mail and per
//! client IP. The window lives in the database, so every worker (and every restart)
//! sees the same counts; only failures write.

use rusqlite::Connection;

use crate::store::{login_failures, StoreError};

pub const LIMIT: u32 = 5;
pub const WINDOW_MS: i64 = 60_000;

pub struct Keys {
    email: String,
    ip: String,
}

impl Keys {
    pub fn new(email: &str, ip: &str) -> Keys {
        Keys {
            email: format!("email:{email}"),
            ip: format!("ip:{ip}"),
        }
    }
}

/// `Ok(None)` when an attempt is allowed, `Ok(Some(seconds))` when the e-mail or the
/// IP already has `LIMIT` failures in the last minute: the wait until one ages out.
pub fn blocked(conn: &Connection, keys: &Keys, now_ms: i64) -> Result<Option<u64>, StoreError> {
    let since = now_ms - WINDOW_MS;
    let mut wait_ms = 0;
    for key in [&keys.email, &keys.ip] {
        let (count, oldest) = login_failures::recent(conn, key, since, LIMIT)?;
        if count >= LIMIT {
            let frees_at = oldest.unwrap_or(now_ms) + WINDOW_MS;
            wait_ms = wait_ms.max(frees_at - now_ms);
        }
    }
    // Round up: a client that waits `Retry-After` seconds must find the window open.
    Ok((wait_ms > 0).then(|| (wait_ms as u64).div_ceil(1000).max(1)))
}

pub fn record_failure(conn: &Connection, keys: &Keys, now_ms: i64) -> Result<(), StoreError> {
    login_failures::record(conn, &[&keys.email, &keys.ip], now_ms, now_ms - WINDOW_MS)
}

/// After a successful login the account's own count starts again; the IP's does not,
/// so one good account cannot launder guesses against others.
pub fn clear_email(conn: &Connection, keys: &Keys) -> Result<(), StoreError> {
    login_failures::clear(conn, &keys.email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_per_minute_per_key() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrate::migrate(&mut c).unwrap();
        let k = Keys::new("a@x.io", "10.0.0.1");
        for i in 0..5 {
            assert_eq!(blocked(&c, &k, 1_000 + i).unwrap(), None);
            record_failure(&c, &k, 1_000 + i).unwrap();
        }
        assert_eq!(blocked(&c, &k, 2_000).unwrap(), Some(59));
        // Another e-mail from the same IP is blocked too; another IP for it is not.
        assert!(blocked(&c, &Keys::new("b@x.io", "10.0.0.1"), 2_000)
            .unwrap()
            .is_some());
        assert!(blocked(&c, &Keys::new("b@x.io", "10.0.0.2"), 2_000)
            .unwrap()
            .is_none());
        // The oldest failure ages out after exactly one window.
        assert!(blocked(&c, &k, 60_999).unwrap().is_some());
        assert_eq!(blocked(&c, &k, 61_001).unwrap(), None);
    }
}
